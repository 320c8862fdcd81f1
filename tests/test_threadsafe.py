"""call_soon_threadsafe from other threads: exactly once, in order per producer, wake-ups
never lost, no crash around stop/close, no starvation of the loop thread's own callbacks.

Python threads do not register in parallel (the GIL); these tests check correctness under
interleaving, not throughput."""

from __future__ import annotations

import asyncio
import random
import threading
import time

import pytest

from tests.support import BOUND, closing, is_handle, run_forever_bounded, wait_for_thread


def test_many_threads_exactly_once_in_order_per_thread(loop):
    n_threads, per_thread = 8, 2500
    total = n_threads * per_thread
    seen = []

    def cb(tid, seq):
        seen.append((tid, seq))
        if len(seen) == total:
            loop.stop()

    def producer(tid):
        for seq in range(per_thread):
            loop.call_soon_threadsafe(cb, tid, seq)

    threads = [threading.Thread(target=producer, args=(t,)) for t in range(n_threads)]

    def start_all():
        for t in threads:
            t.start()

    loop.call_soon(start_all)
    run_forever_bounded(loop, timeout=30)
    for t in threads:
        wait_for_thread(t)
    assert len(seen) == total
    assert sorted(seen) == [(t, s) for t in range(n_threads) for s in range(per_thread)]
    for tid in range(n_threads):
        assert [s for t, s in seen if t == tid] == list(range(per_thread))


def test_registrations_before_the_loop_runs(loop):
    seen = []

    def producer(tid):
        for seq in range(100):
            loop.call_soon_threadsafe(seen.append, (tid, seq))

    threads = [threading.Thread(target=producer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        wait_for_thread(t)
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert sorted(seen) == [(t, s) for t in range(4) for s in range(100)]


def test_wakeup_of_an_idle_loop_is_never_lost(loop):
    """300 times: the loop goes idle waiting on a future, a thread completes it through
    call_soon_threadsafe after a random short delay. A lost wake-up would leave the loop
    asleep until the 2 s guard."""
    rng = random.Random(1)
    delays = [rng.choice([0, 0, 1e-5, 5e-5, 2e-4, 1e-3]) for _ in range(300)]

    async def main():
        for i, delay in enumerate(delays):
            fut = loop.create_future()

            def producer(fut=fut, delay=delay, i=i):
                if delay:
                    time.sleep(delay)
                loop.call_soon_threadsafe(fut.set_result, i)

            thread = threading.Thread(target=producer)
            thread.start()
            try:
                async with asyncio.timeout(2):
                    assert await fut == i
            except TimeoutError:
                pytest.fail(f"wake-up {i} (producer delay {delay}s) lost: loop still asleep")
            thread.join()

    loop.run_until_complete(main())


def test_wakeup_latency_from_a_thread(loop):
    """An idle loop (next timer far away) runs a threadsafe callback promptly."""
    woke = []

    def producer():
        time.sleep(0.05)
        t0 = time.monotonic()
        loop.call_soon_threadsafe(lambda: (woke.append(time.monotonic() - t0), loop.stop()))

    thread = threading.Thread(target=producer)
    loop.call_soon(thread.start)
    run_forever_bounded(loop)
    wait_for_thread(thread)
    assert len(woke) == 1
    assert woke[0] < 1.0


def test_call_soon_threadsafe_on_closed_loop(loop):
    loop.close()
    errors = []

    def producer():
        try:
            loop.call_soon_threadsafe(print)
        except RuntimeError as e:
            errors.append(str(e))

    thread = threading.Thread(target=producer)
    thread.start()
    wait_for_thread(thread)
    assert len(errors) == 1 and "closed" in errors[0]


def test_threadsafe_during_stop_and_close_never_crashes(loop_factory):
    """Threads keep registering while the loop runs, stops, runs again and is closed under
    them. Every call either returns a handle or, once closed, raises RuntimeError."""
    for _cycle in range(3):
        lp = loop_factory()
        unexpected = []
        calls = [0]
        go = threading.Event()

        def producer(lp=lp, go=go, calls=calls, unexpected=unexpected):
            go.wait(BOUND)
            deadline = time.monotonic() + BOUND
            while time.monotonic() < deadline:
                try:
                    handle = lp.call_soon_threadsafe(calls.__setitem__, 0, 1)
                except RuntimeError as e:
                    if "closed" not in str(e):
                        unexpected.append(repr(e))
                    return
                except BaseException as e:  # noqa: BLE001 - anything else is the bug
                    unexpected.append(repr(e))
                    return
                if not is_handle(handle):
                    unexpected.append(f"returned {handle!r}")
                    return
            unexpected.append("producer never saw the loop closed")

        threads = [threading.Thread(target=producer) for _ in range(4)]
        for t in threads:
            t.start()
        go.set()
        lp.call_later(0.02, lp.stop)
        run_forever_bounded(lp)
        lp.call_soon(lp.stop)
        run_forever_bounded(lp)
        lp.call_later(0.01, lp.stop)
        run_forever_bounded(lp)
        lp.close()
        for t in threads:
            wait_for_thread(t, BOUND + 5)
        assert unexpected == []
        assert calls[0] == 1


def test_long_callbacks_while_many_threads_register(loop):
    n_threads, per_thread = 6, 300
    ran = []
    long_ran = []
    total = n_threads * per_thread

    def long_callback():
        time.sleep(0.01)
        long_ran.append(True)

    def producer(tid):
        for seq in range(per_thread):
            loop.call_soon_threadsafe(ran.append, (tid, seq))
            if seq % 50 == 0:
                loop.call_soon_threadsafe(long_callback)

    threads = [threading.Thread(target=producer, args=(t,)) for t in range(n_threads)]

    def start_all():
        for t in threads:
            t.start()
        for _ in range(10):
            loop.call_soon(long_callback)

    def check():
        if len(ran) == total and all(not t.is_alive() for t in threads):
            loop.stop()
        else:
            loop.call_later(0.005, check)

    loop.call_soon(start_all)
    loop.call_soon(check)
    run_forever_bounded(loop, timeout=30)
    for t in threads:
        wait_for_thread(t)
    assert sorted(ran) == [(t, s) for t in range(n_threads) for s in range(per_thread)]
    assert len(long_ran) == 10 + n_threads * (per_thread // 50)


def test_loop_thread_callbacks_progress_under_a_cross_thread_flood(loop):
    """While threads flood call_soon_threadsafe, a chain of call_soon callbacks on the loop
    thread (each schedules the next, as future completions do) must still advance."""
    steps = 100
    chain = []
    stop_flood = threading.Event()
    flooded = [0]

    def step(i):
        chain.append(i)
        if i + 1 < steps:
            loop.call_soon(step, i + 1)
        else:
            stop_flood.set()
            loop.stop()

    def flooder():
        deadline = time.monotonic() + BOUND
        while not stop_flood.is_set() and time.monotonic() < deadline:
            for _ in range(100):
                loop.call_soon_threadsafe(flooded.__setitem__, 0, flooded[0] + 1)

    threads = [threading.Thread(target=flooder) for _ in range(3)]

    def start():
        for t in threads:
            t.start()
        loop.call_soon(step, 0)

    loop.call_soon(start)
    try:
        run_forever_bounded(loop, timeout=BOUND + 5)
    finally:
        stop_flood.set()
        for t in threads:
            wait_for_thread(t)
    assert chain == list(range(steps))
    assert flooded[0] > 0


def test_same_thread_call_soon_threadsafe_is_fifo_with_call_soon(loop):
    out = []
    loop.call_soon_threadsafe(out.append, 1)
    loop.call_soon(out.append, 2)
    loop.call_soon_threadsafe(out.append, 3)
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert out == [1, 2, 3]


@pytest.mark.parametrize("sent", [3, 300])
def test_timer_due_later_runs_after_callbacks_left_by_a_stop(loop, sent):
    """A turn in which another thread sends callbacks, then ``stop()``: asyncio leaves them all
    in its one ready queue; a phase may have run one batch (128) of them and left the rest in
    its queue. Then a ``call_soon`` and a timer already due: asyncio runs the timer after
    everything queued before it, so must we. Found by the fuzzer: pyloop kept the call_soon
    behind the leftovers in the phase's queue, which runs after the loop's own lane, where
    the timer went, so the timer overtook both."""
    seen = []

    def send_from_a_thread() -> None:
        t = threading.Thread(
            target=lambda: [loop.call_soon_threadsafe(seen.append, i) for i in range(sent)]
        )
        t.start()
        wait_for_thread(t)

    loop.call_soon(send_from_a_thread)
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    loop.call_soon(seen.append, "soon")
    loop.call_at(loop.time() - 1, seen.append, "timer")
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert seen == [*range(sent), "soon", "timer"]


def test_sent_from_a_thread_while_stopped_after_leftovers(loop):
    """Leftovers of a batch in the phase's queue (as in the test above), then another thread
    sends more while the loop is stopped, then the loop thread calls call_soon: one order,
    the leftovers, the later sends, the call_soon, as in asyncio's one ready queue. The send
    from the other thread is the one that moves the leftovers onto the loop's lane."""
    seen = []

    def send(tag, n: int) -> None:
        t = threading.Thread(
            target=lambda: [loop.call_soon_threadsafe(seen.append, (tag, i)) for i in range(n)]
        )
        t.start()
        wait_for_thread(t)

    loop.call_soon(send, "first", 300)
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    send("while stopped", 3)
    loop.call_soon(seen.append, "soon")
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert seen == [
        *(("first", i) for i in range(300)),
        *(("while stopped", i) for i in range(3)),
        "soon",
    ]


def test_threadsafe_callbacks_run_on_the_loop_thread(loop_factory):
    with closing(loop_factory()) as lp:
        where = []
        ready = threading.Event()
        runner_ident = []

        def run_loop():
            runner_ident.append(threading.get_ident())
            lp.call_soon(ready.set)
            lp.run_forever()

        runner = threading.Thread(target=run_loop)
        runner.start()
        assert ready.wait(BOUND)
        lp.call_soon_threadsafe(lambda: where.append(threading.get_ident()))
        lp.call_soon_threadsafe(lp.stop)
        wait_for_thread(runner)
        assert where == runner_ident
