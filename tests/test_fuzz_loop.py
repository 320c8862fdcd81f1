"""A stateful fuzzer: random sequences of loop operations, applied to the loop under test and to
a stock asyncio loop (the oracle) in lockstep, and their observable traces compared after every
step (hypothesis ``RuleBasedStateMachine``; issue 9).

``LoopMachine`` drives callbacks, timers, cancellation, futures, tasks, cross-thread calls and
runs of the loop; ``IoMachine`` (loops that do I/O) a TCP connection: writes both ways,
pause/resume reading, write_eof, close, abort. On stock asyncio the oracle is compared with
itself: a check that the machine is deterministic.

What is compared. The trace of everything that happens on the loop thread, in order: which
callback ran, with what; what futures and tasks completed with; what reached the exception
handler (exception type and arguments; asyncio's message text names the handle's repr, which
no two loops share); where each run returned. Two things are left out of the exact order,
on purpose:
- callbacks pushed by another thread *while the loop runs*: in which turn they run depends on
  the race with the loop thread (and pyloop runs a bounded batch of them in the turn they
  arrive in, where asyncio waits a turn). They are compared per producer: each exactly once,
  in push order. Pushed while the loop is not running, they are in the exact trace;
- timers with a real positive delay (1-4 ms): whether one is due in a turn depends on the time
  a step took, so they fire only in a ``settle`` step, which waits until all are due, and are
  compared as their own sequence (deadline ``window start + delay``, distinct: a fixed order),
  not interleaved with the rest.

Budget: ``PYLOOP_FUZZ_EXAMPLES`` examples per loop (default 40, what scripts/test.sh runs)
of at most ``PYLOOP_FUZZ_STEPS`` steps (default 40), derandomized: the same sequences on
every run. A longer search on demand, e.g.::

    PYLOOP_FUZZ_EXAMPLES=2000 PYLOOP_FUZZ_STEPS=80 PYLOOP_FUZZ_RANDOM=1 \\
        python -m pytest tests/test_fuzz_loop.py -p no:cacheprovider

(``PYLOOP_FUZZ_RANDOM=1`` draws new sequences each run instead of the fixed ones.)
``PYLOOP_FUZZ_STATS=path`` appends one JSON line per loop and machine with the examples and
steps run, for the report.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import threading
import time

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.io_support import io_loop_spec  # noqa: F401 (fixture)
from tests.support import BOUND, LOCK_HELD_WHILE_RUNNING

#: Delays of timers due at once, and how far in the past call_at is aimed: far apart, so that
#: their deadlines keep the same order whatever the time between two steps (ms under load).
DUE_DELAYS = [-1000.0, -10.0, 0.0]
PAST_BACKS = [0.0, 50.0, 5000.0]
#: Threads pushing with call_soon_threadsafe: few, so that one pushes again and again, idle
#: or running (each keeps its own sequence numbers: order per producer is checked).
WORKERS = st.integers(min_value=1, max_value=3)

EXAMPLES = int(os.environ.get("PYLOOP_FUZZ_EXAMPLES", "40"))
STEPS = int(os.environ.get("PYLOOP_FUZZ_STEPS", "40"))
DERANDOMIZE = os.environ.get("PYLOOP_FUZZ_RANDOM", "") != "1"


def fuzz_settings() -> settings:
    return settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        derandomize=DERANDOMIZE,
        database=None,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )


class Stats:
    """Examples and steps run, per machine (written to PYLOOP_FUZZ_STATS if set)."""

    def __init__(self) -> None:
        self.examples = 0
        self.steps = 0
        self.rules: collections.Counter = collections.Counter()

    def write(self, loop_id: str, machine: str) -> None:
        path = os.environ.get("PYLOOP_FUZZ_STATS")
        if path:
            with open(path, "a") as f:
                f.write(
                    json.dumps(
                        {
                            "loop": loop_id,
                            "machine": machine,
                            "examples": self.examples,
                            "steps": self.steps,
                            "rules": dict(self.rules),
                        }
                    )
                    + "\n"
                )


# --- the loop machine -------------------------------------------------------------------


class World:
    """One loop and what it was seen to do."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.trace: list = []
        self.live: dict[int, list[int]] = collections.defaultdict(list)
        self.pushed: dict[int, int] = collections.defaultdict(int)
        self.handles: list = []
        self.futures: list[asyncio.Future] = []
        self.tasks: list[asyncio.Task] = []
        self.window_start: float | None = None
        self.soon_timers: list[int] = []
        loop.set_exception_handler(self.on_exception)

    def soon_timer_fired(self, i) -> None:
        self.soon_timers.append(i)

    def on_exception(self, loop, context) -> None:
        exc = context.get("exception")
        self.trace.append(("handler", type(exc).__name__, getattr(exc, "args", None)))

    def rec(self, *what) -> None:
        self.trace.append(what)

    def raiser(self, i) -> None:
        raise ValueError(i)

    def chain(self, i) -> None:
        self.trace.append(("chain", i))
        self.loop.call_soon(self.rec, "chained", i)

    def seqs(self, worker: int, n: int) -> range:
        """The next n sequence numbers of ``worker``'s pushes."""
        start = self.pushed[worker]
        self.pushed[worker] += n
        return range(start, start + n)

    def idle_pushed(self, worker: int, seq: int) -> None:
        self.trace.append(("threadsafe", worker, seq))
        self.live[worker].append(seq)

    def live_push(self, worker: int, n: int) -> None:
        """Runs on the loop thread: a thread pushes n callbacks; joined before returning."""
        seqs = self.seqs(worker, n)
        t = threading.Thread(
            target=lambda: [
                self.loop.call_soon_threadsafe(self.live[worker].append, j) for j in seqs
            ]
        )
        t.start()
        t.join(BOUND)

    def run(self, coro_or_none) -> None:
        """One turn (None) or run_until_complete(coro); records how it returned."""
        try:
            if coro_or_none is None:
                self.loop.call_soon(self.loop.stop)
                self.loop.run_forever()
                self.trace.append(("returned",))
            else:
                result = self.loop.run_until_complete(coro_or_none)
                self.trace.append(("completed", result))
        except RuntimeError as exc:
            self.trace.append(("run raised", str(exc)))


async def sleeps(world: World, n: int):
    for k in range(n):
        world.trace.append(("sleeps", n, k))
        await asyncio.sleep(0)
    return n


async def steps_task(world: World, i: int, n: int):
    for k in range(n):
        world.trace.append(("task step", i, k))
        await asyncio.sleep(0)
    if n == 3:
        raise ValueError("task", i)
    return ("task done", i)


async def awaits_future(world: World, i: int, fut: asyncio.Future):
    try:
        value = await fut
    except asyncio.CancelledError:
        world.trace.append(("awaiter saw cancel", i))
        raise
    except ValueError as exc:
        world.trace.append(("awaiter saw", i, exc.args))
        return None
    world.trace.append(("awaiter got", i, value))
    return value


def on_task_done(world: World, i: int):
    def done(task: asyncio.Task) -> None:
        if task.cancelled():
            world.trace.append(("task cancelled", i))
        elif task.exception() is not None:
            world.trace.append(("task failed", i, task.exception().args))
        else:
            world.trace.append(("task result", i, task.result()))

    return done


def make_loop_machine(spec, stats: Stats):
    class LoopMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.worlds: list[World] = []
            self.counter = 0
            self.soon_timers = 0
            stats.examples += 1

        @initialize()
        def make_worlds(self) -> None:
            self.worlds = [World(asyncio.SelectorEventLoop()), World(spec.new_loop())]

        def each(self, fn) -> None:
            stats.steps += 1
            for w in self.worlds:
                fn(w)

        def next_id(self) -> int:
            self.counter += 1
            return self.counter

        # callbacks and timers
        @rule()
        def call_soon(self) -> None:
            i = self.next_id()
            self.each(lambda w: w.handles.append(w.loop.call_soon(w.rec, "soon", i)))

        @rule()
        def call_soon_raising(self) -> None:
            i = self.next_id()
            self.each(lambda w: w.handles.append(w.loop.call_soon(w.raiser, i)))

        @rule()
        def call_soon_chaining(self) -> None:
            i = self.next_id()
            self.each(lambda w: w.handles.append(w.loop.call_soon(w.chain, i)))

        @rule(delay=st.sampled_from(DUE_DELAYS))
        def call_later_due(self, delay) -> None:
            i = self.next_id()
            self.each(lambda w: w.handles.append(w.loop.call_later(delay, w.rec, "later", i)))

        @rule(back=st.sampled_from(PAST_BACKS))
        def call_at_past(self, back) -> None:
            i = self.next_id()
            self.each(
                lambda w: w.handles.append(w.loop.call_at(w.loop.time() - back, w.rec, "at", i))
            )

        @rule()
        def call_later_far(self) -> None:
            i = self.next_id()
            self.each(lambda w: w.handles.append(w.loop.call_later(3600, w.rec, "far", i)))

        @rule(delay=st.sampled_from([0.001, 0.002, 0.003, 0.004]))
        def call_at_soon(self, delay) -> None:
            i = self.next_id()
            self.soon_timers += 1

            def schedule(w: World) -> None:
                if w.window_start is None:
                    w.window_start = w.loop.time()
                when = w.window_start + delay + i * 1e-6
                w.handles.append(w.loop.call_at(when, w.soon_timer_fired, i))

            self.each(schedule)

        @rule(k=st.integers(min_value=0, max_value=1000))
        def cancel(self, k) -> None:
            if self.worlds[0].handles:
                self.each(lambda w: w.handles[k % len(w.handles)].cancel())

        @rule(k=st.integers(min_value=0, max_value=1000))
        def cancel_from_a_callback(self, k) -> None:
            if self.worlds[0].handles:
                self.each(
                    lambda w: w.handles.append(
                        w.loop.call_soon(w.handles[k % len(w.handles)].cancel)
                    )
                )

        # other threads
        @rule(wid=WORKERS, n=st.integers(min_value=1, max_value=8))
        def threadsafe_while_idle(self, wid, n) -> None:
            def push(w: World) -> None:
                seqs = w.seqs(wid, n)
                t = threading.Thread(
                    target=lambda: [
                        w.loop.call_soon_threadsafe(w.idle_pushed, wid, j) for j in seqs
                    ]
                )
                t.start()
                t.join(BOUND)

            self.each(push)

        # A callback that joins a producer: on the phases that run callbacks under the queue
        # lock it can be the inherent deadlock (it may be in the phase queue, behind pushes
        # from another thread), which would stall each such step for BOUND seconds; that
        # deadlock has its own test.
        @precondition(lambda self: not (spec.is_pyloop and spec.phase in LOCK_HELD_WHILE_RUNNING))
        @rule(wid=WORKERS, n=st.integers(min_value=1, max_value=150))
        def threadsafe_while_running(self, wid, n) -> None:
            self.each(lambda w: w.handles.append(w.loop.call_soon(w.live_push, wid, n)))

        # futures and tasks
        @rule()
        def create_future(self) -> None:
            i = len(self.worlds[0].futures)

            def make(w: World) -> None:
                fut = w.loop.create_future()
                fut.add_done_callback(
                    lambda f: w.rec(
                        "future done",
                        i,
                        "cancelled" if f.cancelled() else repr(f.exception() or f.result()),
                    )
                )
                w.futures.append(fut)

            self.each(make)

        @rule(k=st.integers(min_value=0, max_value=100), how=st.sampled_from(["result", "exc"]))
        def complete_future(self, k, how) -> None:
            if not self.worlds[0].futures:
                return

            def complete(w: World) -> None:
                fut = w.futures[k % len(w.futures)]
                if fut.done():
                    w.rec("already done", k % len(w.futures))
                elif how == "result":
                    fut.set_result(k)
                else:
                    fut.set_exception(ValueError("future", k))

            self.each(complete)

        @rule(k=st.integers(min_value=0, max_value=100))
        def cancel_future(self, k) -> None:
            if self.worlds[0].futures:
                self.each(lambda w: w.rec("cancel future", w.futures[k % len(w.futures)].cancel()))

        @rule(k=st.integers(min_value=0, max_value=100))
        def task_awaiting_a_future(self, k) -> None:
            if not self.worlds[0].futures:
                return
            i = self.next_id()

            def make(w: World) -> None:
                task = w.loop.create_task(awaits_future(w, i, w.futures[k % len(w.futures)]))
                task.add_done_callback(on_task_done(w, i))
                w.tasks.append(task)

            self.each(make)

        @rule(n=st.integers(min_value=0, max_value=3))
        def task_of_steps(self, n) -> None:
            i = self.next_id()

            def make(w: World) -> None:
                task = w.loop.create_task(steps_task(w, i, n))
                task.add_done_callback(on_task_done(w, i))
                w.tasks.append(task)

            self.each(make)

        @rule(k=st.integers(min_value=0, max_value=100))
        def cancel_task(self, k) -> None:
            if self.worlds[0].tasks:
                self.each(lambda w: w.rec("cancel task", w.tasks[k % len(w.tasks)].cancel()))

        # running
        @rule()
        def stop(self) -> None:
            self.each(lambda w: w.handles.append(w.loop.call_soon(w.loop.stop)))

        @precondition(lambda self: self.soon_timers == 0)
        @rule()
        def run_one_turn(self) -> None:
            self.each(lambda w: w.run(None))

        @precondition(lambda self: self.soon_timers == 0)
        @rule(n=st.integers(min_value=1, max_value=3))
        def run_until_complete(self, n) -> None:
            self.each(lambda w: w.run(sleeps(w, n)))

        @rule()
        def settle(self) -> None:
            """Waits until every real-delay timer is due, then runs one turn."""
            if self.soon_timers:
                for w in self.worlds:
                    while w.loop.time() < w.window_start + 0.006:
                        time.sleep(0.001)
            self.each(lambda w: w.run(None))
            self.soon_timers = 0
            for w in self.worlds:
                w.window_start = None

        @invariant()
        def same_trace(self) -> None:
            if not self.worlds:
                return
            oracle, under_test = self.worlds
            assert under_test.trace == oracle.trace
            assert under_test.soon_timers == oracle.soon_timers
            for wid, seqs in under_test.live.items():
                assert seqs == sorted(set(seqs)), f"worker {wid}: out of order or twice: {seqs}"

        def teardown(self) -> None:
            if not self.worlds:
                return
            try:
                self.settle()
                for w in self.worlds:
                    w.run(sleeps(w, 3))
                    for task in w.tasks:
                        task.cancel()
                    w.run(sleeps(w, 3))
                self.same_trace()
                oracle, under_test = self.worlds
                for wid, n in under_test.pushed.items():
                    assert under_test.live[wid] == list(range(n)), f"worker {wid}"
                assert dict(under_test.live) == dict(oracle.live)
            finally:
                for w in self.worlds:
                    w.loop.run_until_complete(w.loop.shutdown_default_executor())
                    w.loop.close()

    LoopMachine.__name__ = f"LoopMachine_{spec.ident}"
    return LoopMachine


def test_fuzz_loop_against_asyncio(loop_spec):
    stats = Stats()
    try:
        run_state_machine_as_test(make_loop_machine(loop_spec, stats), settings=fuzz_settings())
    finally:
        stats.write(loop_spec.id, "loop")
    assert stats.examples >= min(EXAMPLES, 1)


# --- the I/O machine --------------------------------------------------------------------


class Peer(asyncio.Protocol):
    """Records a connection's events; data as ('data', bytes so far in this run of data)."""

    def __init__(self, name: str, trace: list) -> None:
        self.name = name
        self.trace = trace
        self.transport = None
        self.received = 0
        self.lost = False
        self.paused = False
        self.flow: list[str] = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data) -> None:
        self.received += len(data)
        last = self.trace[-1] if self.trace else None
        if last and last[0] == self.name and last[1] == "data":
            self.trace[-1] = (self.name, "data", last[2] + len(data))
        else:
            self.trace.append((self.name, "data", len(data)))

    def eof_received(self):
        self.trace.append((self.name, "eof"))

    # Write flow control is not in the compared trace: whether a write crosses the high-water
    # mark depends on how much the kernel took at that moment (socket buffers autotune). Its
    # calls must alternate, pause first: checked on its own.
    def pause_writing(self) -> None:
        self.flow.append("pause")

    def resume_writing(self) -> None:
        self.flow.append("resume")

    def connection_lost(self, exc) -> None:
        self.lost = True
        kind = type(exc).__name__ if exc is not None else None
        if isinstance(exc, OSError):
            kind = "OSError"  # reset or broken pipe: which one depends on timing
        self.trace.append((self.name, "lost", kind))


class IoWorld:
    def __init__(self, loop) -> None:
        self.loop = loop
        self.handler_calls: list = []
        loop.set_exception_handler(
            lambda _, ctx: self.handler_calls.append(type(ctx.get("exception")).__name__)
        )
        # One trace per side: how the two sides' reads interleave in a turn is the kernel's.
        self.client = Peer("client", [])
        self.server = Peer("server", [])
        self.written = {"client": 0, "server": 0}

        async def connect():
            accepted = loop.create_future()

            def factory():
                accepted.set_result(None)
                return self.server

            srv = await loop.create_server(factory, "127.0.0.1", 0)
            await loop.create_connection(lambda: self.client, *srv.sockets[0].getsockname())
            await accepted
            while self.server.transport is None:
                await asyncio.sleep(0)
            srv.close()
            return srv

        self.srv = loop.run_until_complete(asyncio.wait_for(connect(), BOUND))

    def progress(self):
        return tuple(
            (p.received, p.lost, p.transport.get_write_buffer_size() if p.transport else 0)
            for p in (self.client, self.server)
        )

    def delivered(self) -> bool:
        """Everything written has reached the other protocol, where it can: not to a paused
        reader, nor across a lost connection."""
        for writer, reader in ((self.client, self.server), (self.server, self.client)):
            if reader.paused or reader.lost or writer.lost:
                continue
            if reader.received != self.written[writer.name]:
                return False
        return True

    def settle(self) -> None:
        """Runs the loop until everything deliverable is delivered and nothing moves for three
        rounds (at most BOUND seconds)."""
        deadline = time.monotonic() + BOUND
        last, still = None, 0
        while (still < 3 or not self.delivered()) and time.monotonic() < deadline:
            self.loop.run_until_complete(asyncio.sleep(0.003))
            now = self.progress()
            still = still + 1 if now == last else 0
            last = now

    def close(self) -> None:
        for p in (self.client, self.server):
            if p.transport is not None and not p.lost:
                p.transport.abort()
        self.settle()
        self.loop.run_until_complete(self.srv.wait_closed())
        self.loop.close()


PAYLOAD_SIZES = [1, 1000, 70_000, 300_000]


def make_io_machine(spec, stats: Stats):
    class IoMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.worlds: list[IoWorld] = []
            self.closed = {"client": False, "server": False}
            self.eof = {"client": False, "server": False}
            stats.examples += 1

        @initialize()
        def connect(self) -> None:
            self.worlds = [IoWorld(asyncio.SelectorEventLoop()), IoWorld(spec.new_loop())]

        def each(self, fn) -> None:
            stats.steps += 1
            for w in self.worlds:
                fn(w)

        def usable(self, side: str) -> bool:
            return not self.closed[side] and not any(getattr(w, side).lost for w in self.worlds)

        @rule(side=st.sampled_from(["client", "server"]), size=st.sampled_from(PAYLOAD_SIZES))
        def write(self, side, size) -> None:
            if self.usable(side) and not self.eof[side]:

                def write(w: IoWorld) -> None:
                    getattr(w, side).transport.write(b"x" * size)
                    w.written[side] += size

                self.each(write)

        @rule(side=st.sampled_from(["client", "server"]))
        def pause_reading(self, side) -> None:
            if self.usable(side):

                def pause(w: IoWorld) -> None:
                    getattr(w, side).paused = True
                    peer = getattr(w, side)
                    peer.trace.append((side, "paused", peer.transport.pause_reading()))

                self.each(pause)

        @rule(side=st.sampled_from(["client", "server"]))
        def resume_reading(self, side) -> None:
            if self.usable(side):

                def resume(w: IoWorld) -> None:
                    getattr(w, side).paused = False
                    peer = getattr(w, side)
                    peer.trace.append((side, "resumed", peer.transport.resume_reading()))

                self.each(resume)

        @rule(side=st.sampled_from(["client", "server"]))
        def write_eof(self, side) -> None:
            if self.usable(side) and not self.eof[side]:
                self.eof[side] = True
                self.each(lambda w: getattr(w, side).transport.write_eof())

        @rule(side=st.sampled_from(["client", "server"]), how=st.sampled_from(["close", "abort"]))
        def close(self, side, how) -> None:
            if self.usable(side):
                self.closed[side] = True
                self.each(lambda w: getattr(getattr(w, side).transport, how)())

        @rule()
        def settle(self) -> None:
            self.each(lambda w: w.settle())

        @invariant()
        def same_trace(self) -> None:
            if self.worlds:
                oracle, under_test = self.worlds
                assert under_test.client.trace == oracle.client.trace
                assert under_test.server.trace == oracle.server.trace
                assert under_test.handler_calls == oracle.handler_calls
                for peer in (under_test.client, under_test.server):
                    flow = "".join(x[0] for x in peer.flow)  # "prprp..."
                    assert flow == ("pr" * len(flow))[: len(flow)], (peer.name, peer.flow)

        def teardown(self) -> None:
            try:
                if self.worlds:
                    self.each(lambda w: w.settle())
                    self.same_trace()
            finally:
                for w in self.worlds:
                    w.close()

    IoMachine.__name__ = f"IoMachine_{spec.ident}"
    return IoMachine


def test_fuzz_io_against_asyncio(io_loop_spec):  # noqa: F811 (the fixture)
    stats = Stats()
    try:
        run_state_machine_as_test(make_io_machine(io_loop_spec, stats), settings=fuzz_settings())
    finally:
        stats.write(io_loop_spec.id, "io")
    assert stats.examples >= min(EXAMPLES, 1)
