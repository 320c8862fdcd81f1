"""The scenarios: the 3.1.4 summary's tables, what it left out, and the thread-count sweep.

Every scenario function takes a :class:`harness.LoopSpec` and the mode's parameters, makes a
fresh loop, runs one measurement and closes the loop. It returns its metrics as plain floats
(times in µs unless the key says otherwise). Callbacks do nothing (``noop``) unless a scenario
says what they do, so that every loop runs the same Python code per callback.

How a scenario knows that everything ran: producers push their callbacks in order and then one
``done`` callback each. ``call_soon_threadsafe`` keeps one thread's callbacks in order on every
loop, so when the loop has run the last producer's ``done``, it has run everything. (The
conformance suite checks that ordering; ``--smoke`` runs here also count every callback.)
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import random
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from harness import (
    LoopSpec,
    Metric,
    Params,
    RunResult,
    Scenario,
    procfs,  # benchmarks/procfs.py, the one /proc reader
    quantile,
    run_forever,
    run_until_complete,
)

pc = time.perf_counter_ns


def noop() -> None:
    """The callback of the throughput scenarios: the cheapest Python function there is."""


class Counter:
    """A callback that counts its calls (used where the count is the measurement)."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> None:
        self.n += 1


def _us(ns: float) -> float:
    return ns / 1e3


def _counters(loop: asyncio.AbstractEventLoop, spec: LoopSpec) -> RunResult:
    """A PyLoop phase's queue counters as metrics (µs); nothing for a peer."""
    if not spec.is_phase:
        return {}
    st = loop._queue_stats()  # type: ignore[attr-defined]
    pushes = st["pushes"]
    contended = st["contended_pushes"]
    return {
        "hold_p50_us": _us(st["hold_p50_ns"]),
        "hold_p99_us": _us(st["hold_p99_ns"]),
        "hold_max_us": _us(st["hold_max_ns"]),
        "contended_pushes": float(contended),
        "contended_pct": 100.0 * contended / pushes if pushes else 0.0,
        "wait_mean_us": _us(st["push_wait_ns"] / contended) if contended else 0.0,
        "wait_max_us": _us(st["push_wait_max_ns"]),
    }


COUNTER_METRICS = (
    Metric("hold_p50_us", "queue lock hold p50", "us", sign="nonneg", phases_only=True),
    Metric("hold_p99_us", "queue lock hold p99", "us", sign="nonneg", phases_only=True),
    Metric("hold_max_us", "queue lock hold max", "us", sign="nonneg", phases_only=True),
    Metric("contended_pushes", "contended pushes", "count", sign="nonneg", phases_only=True),
    Metric("contended_pct", "contended pushes", "%", sign="nonneg", phases_only=True),
    Metric("wait_mean_us", "mean wait of a contended push", "us", sign="nonneg", phases_only=True),
    Metric("wait_max_us", "max wait of a push", "us", sign="nonneg", phases_only=True),
)


# ---------------------------------------------------------------------------------------------
# producers on other threads


class CrossThread:
    """``producers`` threads each push ``per_producer`` callbacks with ``call_soon_threadsafe``
    to a running loop, then one ``done`` callback.

    The threads are started before the loop runs and wait on an event; the loop's first
    callback notes the start time and sets it, so thread start-up is never timed. The last
    ``done`` notes the end time and stops the loop. With ``time_each`` every push is timed on
    its own (the clock reads are outside the timed call). ``pause_every``/``pause_s`` make a
    producer sleep after every that many pushes. ``before_go`` runs on the loop thread just
    before the producers are released."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        producers: int,
        per_producer: int,
        callback: Callable[[], Any] = noop,
        *,
        time_each: bool = False,
        pause_every: int = 0,
        pause_s: float = 0.0,
        before_go: Callable[[], Any] | None = None,
        explicit_context: bool = False,
    ) -> None:
        self.loop = loop
        # With explicit_context each producer passes one Context of its own as context=:
        # no loop copies the caller's context then (the same work on every loop).
        self.explicit_context = explicit_context
        self.producers = producers
        self.per_producer = per_producer
        self.callback = callback
        self.time_each = time_each
        self.pause_every = pause_every
        self.pause_s = pause_s
        self.before_go = before_go
        self.go = threading.Event()
        self.finished = 0
        self.t_start = 0
        self.t_end = 0
        self.first_push: list[int] = [0] * producers
        self.last_push: list[int] = [0] * producers
        self.durations: list[list[int]] = [[] for _ in range(producers)]
        self.errors: list[BaseException] = []
        self.cpu_ns = 0

    def _start(self) -> None:
        if self.before_go is not None:
            self.before_go()
        self.t_start = pc()
        self.go.set()

    def _done(self) -> None:
        self.finished += 1
        if self.finished == self.producers:
            self.t_end = pc()
            self.loop.stop()

    def _produce(self, i: int) -> None:
        try:
            push = self.loop.call_soon_threadsafe
            cb = self.callback
            n = self.per_producer
            every = self.pause_every
            self.go.wait()
            if self.time_each:
                durs = [0] * n
                first = pc()
                for k in range(n):
                    t0 = pc()
                    push(cb)
                    durs[k] = pc() - t0
                    if every and (k + 1) % every == 0:
                        time.sleep(self.pause_s)
                last = pc()
                self.durations[i] = durs
            elif every:
                first = pc()
                for k in range(n):
                    push(cb)
                    if (k + 1) % every == 0:
                        time.sleep(self.pause_s)
                last = pc()
            elif self.explicit_context:
                ctx = contextvars.Context()
                first = pc()
                for _ in range(n):
                    push(cb, context=ctx)
                last = pc()
            else:
                first = pc()
                for _ in range(n):
                    push(cb)
                last = pc()
            self.first_push[i] = first
            self.last_push[i] = last
            push(self._done)
        except BaseException as exc:  # reported by run(), never lost in a thread
            self.errors.append(exc)
            self.loop.call_soon_threadsafe(self.loop.stop)

    def run(self) -> CrossThread:
        threads = [
            threading.Thread(target=self._produce, args=(i,), daemon=True)
            for i in range(self.producers)
        ]
        for t in threads:
            t.start()
        self.loop.call_soon(self._start)
        cpu0 = time.process_time_ns()
        try:
            run_forever(self.loop)
            # CPU time of the whole process (loop and producers) for the run: unlike the wall
            # time, it does not grow while a thread waits to be scheduled or for the GIL.
            self.cpu_ns = time.process_time_ns() - cpu0
        finally:
            self.go.set()
            for t in threads:
                t.join()
        if self.errors:
            raise self.errors[0]
        return self

    @property
    def total(self) -> int:
        return self.producers * self.per_producer

    @property
    def elapsed_ns(self) -> int:
        """From the producers' release to the last callback run."""
        return self.t_end - self.t_start

    @property
    def push_span_ns(self) -> int:
        """From the first push's start to the last push's end, over all producers."""
        return max(self.last_push) - min(self.first_push)

    def all_durations(self) -> list[int]:
        return [d for per in self.durations for d in per]


def _fresh(spec: LoopSpec) -> asyncio.AbstractEventLoop:
    return spec.new()


def _check_count(counter: Counter | None, expected: int, what: str) -> None:
    if counter is not None and counter.n != expected:
        raise AssertionError(f"{what}: {counter.n} callbacks ran, expected {expected}")


def _callback(params: Params) -> tuple[Callable[[], Any], Counter | None]:
    """The throughput scenarios' callback: ``noop``, or a counter when ``verify`` is set."""
    if params.get("verify"):
        c = Counter()
        return c, c
    return noop, None


# ---------------------------------------------------------------------------------------------
# single thread


def run_single(spec: LoopSpec, p: Params, gc_off: bool = False) -> RunResult:
    n = p["callbacks"]
    cb, counter = _callback(p)
    loop = _fresh(spec)
    try:
        call_soon = loop.call_soon
        if gc_off:
            gc.disable()
        try:
            t0 = pc()
            for _ in range(n):
                call_soon(cb)
            call_soon(loop.stop)
            t1 = pc()
            loop.run_forever()
            t2 = pc()
        finally:
            if gc_off:
                gc.enable()
    finally:
        loop.close()
    _check_count(counter, n, "single")
    return {
        "us_per_callback": _us((t2 - t0) / n),
        "callbacks_per_s": n * 1e9 / (t2 - t0),
        "schedule_us": _us((t1 - t0) / n),
        "drain_us": _us((t2 - t1) / n),
    }


def run_chained(spec: LoopSpec, p: Params) -> RunResult:
    n = p["callbacks"]
    loop = _fresh(spec)
    left = n

    def step() -> None:
        nonlocal left
        left -= 1
        if left:
            call_soon(step)
        else:
            loop.stop()

    try:
        call_soon = loop.call_soon
        call_soon(step)
        t0 = pc()
        run_forever(loop)
        t1 = pc()
    finally:
        loop.close()
    if left:
        raise AssertionError(f"chained: {left} steps did not run")
    return {"us_per_callback": _us((t1 - t0) / n), "callbacks_per_s": n * 1e9 / (t1 - t0)}


# ---------------------------------------------------------------------------------------------
# the summary's multi-thread tables


def run_registration(spec: LoopSpec, p: Params) -> RunResult:
    cb, counter = _callback(p)
    loop = _fresh(spec)
    try:
        r = CrossThread(loop, p["producers"], p["per_producer"], cb, time_each=True).run()
    finally:
        loop.close()
    _check_count(counter, r.total, "registration")
    durs = r.all_durations()
    return {
        "pushes_per_s": r.total * 1e9 / r.push_span_ns,
        "push_mean_us": _us(statistics.fmean(durs)),
        "push_max_us": _us(max(durs)),
        "callbacks_per_s": r.total * 1e9 / r.elapsed_ns,
    }


def run_contention(spec: LoopSpec, p: Params, explicit_context: bool = False) -> RunResult:
    cb, counter = _callback(p)
    loop = _fresh(spec)
    try:
        r = CrossThread(
            loop, p["producers"], p["per_producer"], cb, explicit_context=explicit_context
        ).run()
        stats = _counters(loop, spec)
    finally:
        loop.close()
    _check_count(counter, r.total, "contention")
    return {
        "callbacks_per_s": r.total * 1e9 / r.elapsed_ns,
        "total_ms": r.elapsed_ns / 1e6,
        "cpu_us_per_callback": _us(r.cpu_ns / r.total),
        **stats,
    }


def run_contention_explicit_context(spec: LoopSpec, p: Params) -> RunResult:
    return run_contention(spec, p, explicit_context=True)


def run_latency(spec: LoopSpec, p: Params) -> RunResult:
    cb, counter = _callback(p)
    loop = _fresh(spec)
    try:
        r = CrossThread(loop, p["producers"], p["per_producer"], cb, time_each=True).run()
    finally:
        loop.close()
    _check_count(counter, r.total, "latency")
    durs = sorted(_us(d) for d in r.all_durations())
    return {
        "mean_us": statistics.fmean(durs),
        "p50_us": quantile(durs, 0.50),
        "p95_us": quantile(durs, 0.95),
        "p99_us": quantile(durs, 0.99),
        "max_us": durs[-1],
        "_samples": durs,
    }


def run_mixed(spec: LoopSpec, p: Params) -> RunResult:
    cb, counter = _callback(p)
    loop = _fresh(spec)
    try:
        r = CrossThread(loop, p["writers"], p["per_writer"], cb).run()
    finally:
        loop.close()
    _check_count(counter, r.total, "mixed")
    return {
        # "ops" as the summary counted them: a push and a run are one op each.
        "ops_per_s": 2 * r.total * 1e9 / r.elapsed_ns,
        "callbacks_per_s": r.total * 1e9 / r.elapsed_ns,
        "total_ms": r.elapsed_ns / 1e6,
        "cpu_us_per_callback": _us(r.cpu_ns / r.total),
    }


# ---------------------------------------------------------------------------------------------
# what the summary left out


def run_wakeup(spec: LoopSpec, p: Params) -> RunResult:
    """The loop idles with nothing to do and no timer; another thread sleeps 2-3 ms, notes the
    time and pushes one callback, which notes how long it took to run. Also how long the push
    itself took (the woken loop may take the producer's core, or wait for a lock the producer
    holds), and how many times the two threads left a core per wake-up (/proc)."""
    samples = p["samples"]
    loop = _fresh(spec)
    lat: list[int] = []
    pushes: list[int] = []
    switches: dict[str, int] = {}
    ran = threading.Event()
    go = threading.Event()
    errors: list[BaseException] = []

    def arrived(t0: int) -> None:
        lat.append(pc() - t0)
        ran.set()

    def waker() -> None:
        try:
            rnd = random.Random(1234)
            push = loop.call_soon_threadsafe
            go.wait()
            before = procfs.thread_context_switches()
            for _ in range(samples):
                time.sleep(rnd.uniform(0.002, 0.003))
                ran.clear()
                t0 = pc()
                push(arrived, t0)
                pushes.append(pc() - t0)
                if not ran.wait(5.0):
                    raise TimeoutError("a wake-up callback did not run within 5 s")
            after = procfs.thread_context_switches()
            if before is not None and after is not None:
                switches["waker"] = after - before
        except BaseException as exc:
            errors.append(exc)
        finally:
            loop.call_soon_threadsafe(loop.stop)

    def started() -> None:
        switches["loop_before"] = procfs.thread_context_switches() or 0
        go.set()

    t = threading.Thread(target=waker, daemon=True)
    t.start()
    try:
        loop.call_soon(started)
        run_forever(loop)
        loop_after = procfs.thread_context_switches()
    finally:
        go.set()
        t.join()
        loop.close()
    if errors:
        raise errors[0]
    us = sorted(_us(x) for x in lat)
    result: RunResult = {
        "p50_us": quantile(us, 0.5),
        "p99_us": quantile(us, 0.99),
        "mean_us": statistics.fmean(us),
        "max_us": us[-1],
        "push_p50_us": quantile(sorted(_us(x) for x in pushes), 0.5),
    }
    if loop_after is not None and "waker" in switches:
        # The waker's sleep, its wait for the callback and the loop's own sleep are three
        # of them; the rest is waiting for a lock or the GIL, or being preempted.
        loop_switches = loop_after - switches["loop_before"]
        result["switches_per_wake"] = (loop_switches + switches["waker"]) / samples
    return result


def run_timers(spec: LoopSpec, p: Params) -> RunResult:
    """Two runs, each on a fresh loop, both scheduling from a callback of the running loop:
    ``n`` timers all due at once (the cost of the timer path), then ``n`` timers spread over
    ``spread_ms`` (how late each fires after its deadline; negative: early)."""
    n = p["timers"]

    # 1. n x call_later(0): scheduling, then running them all.
    loop = _fresh(spec)
    fired = 0
    marks: dict[str, int] = {}

    def tick() -> None:
        nonlocal fired
        fired += 1
        if fired == n:
            marks["end"] = pc()
            loop.stop()

    def schedule_zero() -> None:
        later = loop.call_later
        marks["t0"] = pc()
        for _ in range(n):
            later(0, tick)
        marks["t1"] = pc()

    try:
        loop.call_soon(schedule_zero)
        run_forever(loop)
    finally:
        loop.close()

    # 2. n timers at random delays in [0, spread): lateness against a perf_counter deadline.
    rnd = random.Random(42)
    delays = [rnd.uniform(0, p["spread_ms"] / 1e3) for _ in range(n)]
    loop = _fresh(spec)
    late: list[int] = []

    def due(deadline: int) -> None:
        late.append(pc() - deadline)
        if len(late) == n:
            loop.stop()

    def schedule_spread() -> None:
        later = loop.call_later
        for d in delays:
            later(d, due, pc() + int(d * 1e9))

    try:
        loop.call_soon(schedule_spread)
        run_forever(loop)
    finally:
        loop.close()
    late_us = sorted(_us(x) for x in late)
    return {
        "schedule_us": _us((marks["t1"] - marks["t0"]) / n),
        "us_per_timer": _us((marks["end"] - marks["t0"]) / n),
        "late_p50_us": quantile(late_us, 0.5),
        "late_p99_us": quantile(late_us, 0.99),
        "late_max_us": late_us[-1],
    }


def run_pingpong(spec: LoopSpec, p: Params) -> RunResult:
    """Two tasks hand a Future back and forth: one round trip is two Future completions and two
    task wake-ups."""
    n = p["round_trips"]
    loop = _fresh(spec)
    box: list[Any] = [None, None]  # [future A waits on, future B waits on]

    async def ponger() -> None:
        # n + 1 futures: the last iteration completes the pinger's n-th, then waits forever.
        for _ in range(n + 1):
            fb = loop.create_future()
            box[1] = fb
            if box[0] is not None:
                box[0].set_result(None)
            await fb

    async def pinger() -> int:
        await asyncio.sleep(0)  # let the ponger register its first future
        t0 = pc()
        for _ in range(n):
            fa = loop.create_future()
            box[0] = fa
            box[1].set_result(None)
            await fa
        return pc() - t0

    async def main() -> int:
        pong = asyncio.ensure_future(ponger())
        took = await pinger()
        # The ponger's last future is never completed: end it.
        pong.cancel()
        try:
            await pong
        except asyncio.CancelledError:
            pass
        return took

    try:
        took = run_until_complete(loop, main())
    finally:
        loop.close()
    return {"us_per_round_trip": _us(took / n), "round_trips_per_s": n * 1e9 / took}


def run_future_roundtrip(spec: LoopSpec, p: Params) -> RunResult:
    """One task, ``n`` times: ``create_future()``, ``call_soon(fut.set_result, None)``,
    ``await fut``: a future made, completed by a callback, and awaited."""
    n = p["round_trips"]
    loop = _fresh(spec)

    async def main() -> int:
        t0 = pc()
        for _ in range(n):
            fut = loop.create_future()
            loop.call_soon(fut.set_result, None)
            await fut
        return pc() - t0

    try:
        took = run_until_complete(loop, main())
    finally:
        loop.close()
    return {"us_per_round_trip": _us(took / n), "round_trips_per_s": n * 1e9 / took}


def run_gather(spec: LoopSpec, p: Params) -> RunResult:
    """``gather`` of ``n`` coroutines that each yield once (``await asyncio.sleep(0)``):
    creating them, wrapping each in a task, two steps each, and collecting the results."""
    n = p["coroutines"]
    loop = _fresh(spec)

    async def leaf(i: int) -> int:
        await asyncio.sleep(0)
        return i

    async def main() -> tuple[int, int]:
        t0 = pc()
        res = await asyncio.gather(*[leaf(i) for i in range(n)])
        took = pc() - t0
        return took, len(res)

    try:
        took, count = run_until_complete(loop, main())
    finally:
        loop.close()
    if count != n:
        raise AssertionError(f"gather returned {count} results, expected {n}")
    return {"us_per_coroutine": _us(took / n), "coroutines_per_s": n * 1e9 / took}


def run_fairness(spec: LoopSpec, p: Params) -> RunResult:
    """Producers flood the loop with ``call_soon_threadsafe`` while a callback on the loop thread
    keeps rescheduling itself with ``call_soon``. How often does it still run?"""
    flood = Counter()
    seen: list[int] = []  # the flood count each time the loop-thread callback ran
    loop = _fresh(spec)

    def spin() -> None:
        seen.append(flood.n)
        call_soon(spin)

    try:
        call_soon = loop.call_soon
        r = CrossThread(
            loop, p["producers"], p["per_producer"], flood, before_go=lambda: call_soon(spin)
        ).run()
    finally:
        loop.close()
    total = r.total
    _check_count(flood, total, "fairness")
    during = [c for c in seen if 0 < c < total]
    marks = [0, *during, total]
    gaps = [b - a for a, b in zip(marks, marks[1:], strict=False)]
    return {
        "spins_per_1000": 1000.0 * len(during) / total,
        "max_gap": float(max(gaps)),
        "flood_per_s": total * 1e9 / r.elapsed_ns,
    }


def make_slow(work_us: float) -> Callable[[], None]:
    """A callback that keeps the CPU (and the GIL) busy for ``work_us`` microseconds."""
    work_ns = int(work_us * 1000)

    def slow() -> None:
        end = pc() + work_ns
        while pc() < end:
            pass

    return slow


def run_slow(spec: LoopSpec, p: Params) -> RunResult:
    """Lock hold and wait: producers push slow callbacks, pausing now and then, so that the
    loop is often running a batch while a producer arrives. Phases 3.1.1-3.1.3 hold the queue
    lock while running a batch; a producer that finds it held waits (without the GIL)."""
    loop = _fresh(spec)
    try:
        r = CrossThread(
            loop,
            p["producers"],
            p["per_producer"],
            make_slow(p["work_us"]),
            time_each=True,
            pause_every=p["pause_every"],
            pause_s=p["pause_ms"] / 1e3,
        ).run()
        stats = _counters(loop, spec)
    finally:
        loop.close()
    durs = sorted(_us(d) for d in r.all_durations())
    return {
        "push_mean_us": statistics.fmean(durs),
        "push_p99_us": quantile(durs, 0.99),
        "push_p999_us": quantile(durs, 0.999),
        "push_max_us": durs[-1],
        "total_ms": r.elapsed_ns / 1e6,
        **stats,
    }


def run_single_gc_off(spec: LoopSpec, p: Params) -> RunResult:
    return run_single(spec, p, gc_off=True)


# ---------------------------------------------------------------------------------------------
# the thread-count sweep


SWEEP = (1, 2, 4, 8, 16)


def run_scaling(spec: LoopSpec, p: Params) -> RunResult:
    """The same total of callbacks split over 1, 2, 4, 8 and 16 producers (strong scaling,
    Amdahl's setting), each count on a fresh loop."""
    out: RunResult = {}
    total = p["total"]
    cb, counter = _callback(p)
    for n in SWEEP:
        if counter is not None:
            counter.n = 0
        loop = _fresh(spec)
        try:
            r = CrossThread(loop, n, total // n, cb).run()
            stats = _counters(loop, spec)
        finally:
            loop.close()
        _check_count(counter, r.total, f"scaling {n}")
        out[f"cb_per_s_{n}"] = r.total * 1e9 / r.elapsed_ns
        out[f"cpu_us_{n}"] = _us(r.cpu_ns / r.total)
        if stats:
            out[f"contended_pct_{n}"] = stats["contended_pct"]
    return out


# ---------------------------------------------------------------------------------------------
# the declarations


def _sizes(full: Params, quick: Params, smoke: Params) -> dict[str, Params]:
    return {"full": full, "quick": quick, "smoke": {**smoke, "verify": True}}


SINGLE_METRICS = (
    Metric("us_per_callback", "per callback, scheduled and run", "us"),
    Metric("callbacks_per_s", "callbacks/s", "1/s", better="higher"),
    Metric("schedule_us", "call_soon alone, per callback", "us"),
    Metric("drain_us", "run_forever alone (drain), per callback", "us"),
)
SINGLE_SIZES = _sizes({"callbacks": 50_000}, {"callbacks": 20_000}, {"callbacks": 2_000})

#: What both contention scenarios (with and without context=) report, at which sizes.
CONTENTION_METRICS = (
    Metric("callbacks_per_s", "callbacks/s", "1/s", better="higher"),
    Metric("total_ms", "time to process all", "ms"),
    Metric("cpu_us_per_callback", "CPU time per callback (all threads)", "us"),
    *COUNTER_METRICS,
)
CONTENTION_SIZES = _sizes(
    {"producers": 10, "per_producer": 5_000},
    {"producers": 10, "per_producer": 2_000},
    {"producers": 4, "per_producer": 500},
)


EVENT_LOOP: list[Scenario] = [
    Scenario(
        key="single",
        title="Single thread: 50k callbacks",
        group="event_loop",
        description="One thread schedules the callbacks with call_soon before the loop runs, "
        "then runs the loop until a final call_soon(loop.stop). In PyLoop, call_soon from the "
        "loop's own thread (or before it runs) goes to the loop-local lane, not to the phase's "
        "queue: every phase does the same work here.",
        metrics=SINGLE_METRICS,
        headline="us_per_callback",
        params=SINGLE_SIZES,
        run=run_single,
        inner={"full": 3, "quick": 2, "smoke": 1},
    ),
    Scenario(
        key="single_gc_off",
        title="Single thread, GC off",
        group="event_loop",
        description="The single-thread scenario with the cyclic GC disabled while it runs.",
        metrics=SINGLE_METRICS,
        headline="us_per_callback",
        params=SINGLE_SIZES,
        run=run_single_gc_off,
        inner={"full": 3, "quick": 2, "smoke": 1},
    ),
    Scenario(
        key="chained",
        title="Chained call_soon",
        group="event_loop",
        description="Each callback schedules the next with call_soon: one callback per loop "
        "turn, so this is the cost of a turn.",
        metrics=(
            Metric("us_per_callback", "per callback (one turn each)", "us"),
            Metric("callbacks_per_s", "callbacks/s", "1/s", better="higher"),
        ),
        headline="us_per_callback",
        params=SINGLE_SIZES,
        run=run_chained,
        inner={"full": 2, "quick": 1, "smoke": 1},
    ),
    Scenario(
        key="registration",
        title="Concurrent registration: 10 threads x 1,000",
        group="event_loop",
        description="10 producer threads each time 1,000 call_soon_threadsafe calls, one by "
        "one, while the loop runs them. Throughput is pushes over the span from the first "
        "push's start to the last push's end.",
        metrics=(
            Metric("pushes_per_s", "registrations/s", "1/s", better="higher"),
            Metric("push_mean_us", "mean registration", "us"),
            Metric("push_max_us", "max registration", "us"),
            Metric("callbacks_per_s", "callbacks run/s", "1/s", better="higher"),
        ),
        headline="pushes_per_s",
        params=_sizes(
            {"producers": 10, "per_producer": 1_000},
            {"producers": 10, "per_producer": 1_000},
            {"producers": 4, "per_producer": 200},
        ),
        run=run_registration,
        multithread=True,
        inner={"full": 5, "quick": 3, "smoke": 1},
    ),
    Scenario(
        key="contention",
        title="High contention: 10 threads x 5,000",
        group="event_loop",
        description="10 producer threads push 5,000 call_soon_threadsafe each as fast as they "
        "can; time from their release to the last callback run. PyLoop's queue counters are "
        "read after the run.",
        metrics=CONTENTION_METRICS,
        headline="callbacks_per_s",
        params=CONTENTION_SIZES,
        run=run_contention,
        multithread=True,
        inner={"full": 3, "quick": 1, "smoke": 1},
    ),
    Scenario(
        key="contention_explicit_context",
        title="High contention, context= given: 10 threads x 5,000",
        group="event_loop",
        description="As the high-contention scenario, but each producer passes a Context of "
        "its own as context=, so no loop copies the caller's context: the copy asyncio's "
        "semantics require (and rloop skips for call_soon_threadsafe) is left out for every "
        "loop, and what remains is the same work on each.",
        metrics=CONTENTION_METRICS,
        headline="callbacks_per_s",
        params=CONTENTION_SIZES,
        run=run_contention_explicit_context,
        multithread=True,
        inner={"full": 3, "quick": 1, "smoke": 1},
    ),
    Scenario(
        key="latency",
        title="Registration latency: 5 threads x 1,000 samples",
        group="event_loop",
        description="5 producer threads time each of their 1,000 call_soon_threadsafe calls "
        "while the loop runs them: the distribution of one registration's duration, pooled "
        "over the threads (the summary's 'lock latency').",
        metrics=(
            Metric("mean_us", "mean", "us"),
            Metric("p50_us", "p50", "us"),
            Metric("p95_us", "p95", "us"),
            Metric("p99_us", "p99", "us"),
            Metric("max_us", "max", "us"),
        ),
        headline="p99_us",
        params=_sizes(
            {"producers": 5, "per_producer": 1_000},
            {"producers": 5, "per_producer": 1_000},
            {"producers": 2, "per_producer": 200},
        ),
        run=run_latency,
        multithread=True,
    ),
    Scenario(
        key="mixed",
        title="Mixed: 10 writers + the loop reading, 20,000 each",
        group="event_loop",
        description="10 writer threads push 20,000 callbacks each while the loop (the reader) "
        "runs them. 'ops' counts a push and a run as one op each, as the summary did.",
        metrics=(
            Metric("ops_per_s", "ops/s (push + run)", "1/s", better="higher"),
            Metric("callbacks_per_s", "callbacks/s", "1/s", better="higher"),
            Metric("total_ms", "time to process all", "ms"),
            Metric("cpu_us_per_callback", "CPU time per callback (all threads)", "us"),
        ),
        headline="ops_per_s",
        params=_sizes(
            {"writers": 10, "per_writer": 20_000},
            {"writers": 10, "per_writer": 3_000},
            {"writers": 4, "per_writer": 500},
        ),
        run=run_mixed,
        multithread=True,
    ),
    Scenario(
        key="wakeup",
        title="Wake-up latency of an idle loop",
        group="event_loop",
        description="The loop idles (nothing ready, no timer). Another thread sleeps 2-3 ms, "
        "reads the clock and pushes one callback with call_soon_threadsafe; the callback reads "
        "the clock again. Push to run, one sample at a time.",
        metrics=(
            Metric("p50_us", "p50", "us"),
            Metric("p99_us", "p99", "us"),
            Metric("mean_us", "mean", "us"),
            Metric("max_us", "max", "us"),
            Metric("push_p50_us", "the call_soon_threadsafe that woke it: p50", "us"),
            Metric("switches_per_wake", "context switches per wake-up, both threads", "count"),
        ),
        headline="p50_us",
        params=_sizes({"samples": 200}, {"samples": 40}, {"samples": 8}),
        run=run_wakeup,
        multithread=True,
    ),
    Scenario(
        key="timers",
        title="5,000 call_later timers",
        group="event_loop",
        description="From a running callback: 5,000 call_later(0) (schedule them, then run them "
        "all), and on a fresh loop 5,000 timers at random delays up to 50 ms, each noting how "
        "late it fired after its deadline (negative: early; uvloop rounds delays to whole ms).",
        metrics=(
            Metric("us_per_timer", "per timer, scheduled and fired", "us"),
            Metric("schedule_us", "call_later alone", "us"),
            Metric("late_p50_us", "lateness p50", "us", sign="any"),
            Metric("late_p99_us", "lateness p99", "us", sign="any"),
            Metric("late_max_us", "lateness max", "us", sign="any"),
        ),
        headline="us_per_timer",
        params=_sizes(
            {"timers": 5_000, "spread_ms": 50},
            {"timers": 2_000, "spread_ms": 20},
            {"timers": 300, "spread_ms": 5},
        ),
        run=run_timers,
    ),
    Scenario(
        key="pingpong",
        title="Future ping-pong between two tasks",
        group="event_loop",
        description="Two tasks complete a Future for each other in turn; a round trip is two "
        "Future completions and two task wake-ups.",
        metrics=(
            Metric("us_per_round_trip", "per round trip", "us"),
            Metric("round_trips_per_s", "round trips/s", "1/s", better="higher"),
        ),
        headline="us_per_round_trip",
        params=_sizes({"round_trips": 10_000}, {"round_trips": 3_000}, {"round_trips": 300}),
        run=run_pingpong,
        inner={"full": 2, "quick": 1, "smoke": 1},
    ),
    Scenario(
        key="future_roundtrip",
        title="A future made, completed by a callback, and awaited",
        group="event_loop",
        description="One task: create_future(), call_soon(fut.set_result, None), await fut.",
        metrics=(
            Metric("us_per_round_trip", "per round trip", "us"),
            Metric("round_trips_per_s", "round trips/s", "1/s", better="higher"),
        ),
        headline="us_per_round_trip",
        params=_sizes({"round_trips": 20_000}, {"round_trips": 5_000}, {"round_trips": 300}),
        run=run_future_roundtrip,
        inner={"full": 2, "quick": 1, "smoke": 1},
    ),
    Scenario(
        key="gather",
        title="gather of 10k coroutines",
        group="event_loop",
        description="asyncio.gather of 10,000 coroutines that each await asyncio.sleep(0) once: "
        "task creation, two steps per task, result collection.",
        metrics=(
            Metric("us_per_coroutine", "per coroutine", "us"),
            Metric("coroutines_per_s", "coroutines/s", "1/s", better="higher"),
        ),
        headline="us_per_coroutine",
        params=_sizes({"coroutines": 10_000}, {"coroutines": 4_000}, {"coroutines": 300}),
        run=run_gather,
        inner={"full": 2, "quick": 1, "smoke": 1},
    ),
    Scenario(
        key="fairness",
        title="Fairness under a cross-thread flood",
        group="event_loop",
        description="4 producer threads push 25,000 counting callbacks each; meanwhile a "
        "callback on the loop thread reschedules itself with call_soon. How many times it runs "
        "per 1,000 flood callbacks, and the most flood callbacks run between two of its runs.",
        metrics=(
            # No direction: once no callback waits long, running the loop-thread callback
            # more often is not better, and a sparse flood (producers taking turns for the
            # GIL) lets it run thousands of times per 1,000.
            Metric(
                "spins_per_1000",
                "loop-thread runs per 1,000 flood callbacks",
                "count",
                better="",
                sign="nonneg",
            ),
            Metric("max_gap", "most flood callbacks between two loop-thread runs", "count"),
            Metric("flood_per_s", "flood callbacks/s", "1/s", better="higher"),
        ),
        headline="max_gap",
        params={
            "full": {"producers": 4, "per_producer": 25_000},
            "quick": {"producers": 4, "per_producer": 5_000},
            "smoke": {"producers": 2, "per_producer": 1_000},
        },
        run=run_fairness,
        multithread=True,
    ),
    Scenario(
        key="slow",
        title="Lock hold and wait: slow callbacks",
        group="event_loop",
        description="8 producer threads push 800 callbacks each that keep the CPU (and the GIL) "
        "busy for 50 µs, pausing 0.2 ms after every 50 pushes, each push timed. A batch of 128 "
        "such callbacks lasts longer than the interpreter's 5 ms switch interval, so producers "
        "get the GIL while the loop is in the middle of a batch: phases 3.1.1-3.1.3 hold the "
        "queue lock while they run one. PyLoop's queue counters are read after the run.",
        metrics=(
            Metric("push_mean_us", "mean registration", "us"),
            Metric("push_p99_us", "registration p99", "us"),
            Metric("push_p999_us", "registration p99.9", "us"),
            Metric("push_max_us", "max registration", "us"),
            Metric("total_ms", "time to process all", "ms"),
            *COUNTER_METRICS,
        ),
        # The mean, not a percentile: on the phases that hold the lock while running a batch
        # only a few % of the pushes find it held, but each of those waits milliseconds. With
        # 10 µs callbacks (a batch shorter than the switch interval) that happened only when
        # the machine was busy enough to deschedule the loop mid-batch.
        headline="push_mean_us",
        params=_sizes(
            {
                "producers": 8,
                "per_producer": 800,
                "work_us": 50,
                "pause_every": 50,
                "pause_ms": 0.2,
            },
            {
                "producers": 8,
                "per_producer": 300,
                "work_us": 50,
                "pause_every": 50,
                "pause_ms": 0.2,
            },
            {
                "producers": 4,
                "per_producer": 100,
                "work_us": 50,
                "pause_every": 50,
                "pause_ms": 0.2,
            },
        ),
        run=run_slow,
        multithread=True,
    ),
]

SCALING: list[Scenario] = [
    Scenario(
        key="scaling",
        title="Scaling: 1-16 producer threads",
        group="scaling",
        description="The same total of call_soon_threadsafe callbacks split evenly over 1, 2, "
        "4, 8 and 16 producer threads, each count on a fresh loop: callbacks/s from the "
        "producers' release to the last callback run (the data the Amdahl notebook fits).",
        metrics=tuple(
            [
                Metric(f"cb_per_s_{n}", f"{n} producer(s): callbacks/s", "1/s", better="higher")
                for n in SWEEP
            ]
            + [
                Metric(f"cpu_us_{n}", f"{n} producer(s): CPU time per callback", "us")
                for n in SWEEP
            ]
            + [
                Metric(
                    f"contended_pct_{n}",
                    f"{n} producer(s): contended pushes",
                    "%",
                    sign="nonneg",
                    phases_only=True,
                )
                for n in SWEEP
            ]
        ),
        headline="cb_per_s_1",
        # Large enough that a run spans many GIL switch intervals (5 ms): a run of a few ms
        # measures mostly whether a switch happened to fall inside it.
        params=_sizes({"total": 96_000}, {"total": 32_000}, {"total": 1_600}),
        run=run_scaling,
        multithread=True,
        inner={"full": 3, "quick": 1, "smoke": 1},
    ),
]

ALL: list[Scenario] = EVENT_LOOP + SCALING
