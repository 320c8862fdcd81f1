"""run_forever / run_until_complete / stop / close, and BaseException out of callbacks.

The spec is stock asyncio 3.11 (base_events.BaseEventLoop.run_forever, stop, close)."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref

import pytest

from tests.support import closing, run_bounded, run_forever_bounded


def test_fresh_loop_state(loop):
    assert not loop.is_running()
    assert not loop.is_closed()
    assert isinstance(loop, asyncio.AbstractEventLoop)


def test_stop_finishes_the_current_turn(loop):
    """stop() called by a callback: the rest of the turn runs, callbacks that the turn
    schedules wait for the next run_forever()."""
    out = []

    def cb(name):
        out.append(name)
        loop.call_soon(out.append, f"{name}'")

    loop.call_soon(cb, "a")
    loop.call_soon(loop.stop)
    loop.call_soon(cb, "b")
    run_forever_bounded(loop)
    assert out == ["a", "b"]
    assert not loop.is_running()
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert out == ["a", "b", "a'", "b'"]


def test_stop_runs_whole_ready_snapshot(loop):
    """asyncio: "If stop() is called while run_forever() is running, this will run the current
    batch of callbacks and then exit": every callback ready when the turn began runs, even
    with hundreds queued (a phase with a per-turn batch limit must still drain them)."""
    out = []
    loop.call_soon(loop.stop)
    for i in range(1000):
        loop.call_soon(out.append, i)
    run_forever_bounded(loop)
    assert out == list(range(1000))


def test_stop_before_run_forever_runs_one_turn(loop):
    out = []
    loop.call_soon(out.append, 1)
    loop.stop()
    run_forever_bounded(loop)
    assert out == [1]
    # the stop request was consumed: the next run_forever runs until stopped again
    loop.call_later(0.02, out.append, 2)
    loop.call_later(0.04, loop.stop)
    run_forever_bounded(loop)
    assert out == [1, 2]


def test_run_forever_again_continues_where_it_stopped(loop):
    out = []
    loop.call_later(0.03, out.append, "timer")
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert out == []
    loop.call_later(0.06, loop.stop)
    run_forever_bounded(loop)
    assert out == ["timer"]


def test_run_until_complete_result_and_exception(loop):
    async def ok():
        await asyncio.sleep(0)
        return 42

    async def bad():
        await asyncio.sleep(0)
        raise ValueError("boom")

    assert loop.run_until_complete(ok()) == 42
    with pytest.raises(ValueError, match="boom"):
        loop.run_until_complete(bad())
    fut = loop.create_future()
    loop.call_soon(fut.set_result, "fut")
    assert loop.run_until_complete(fut) == "fut"
    assert not loop.is_running()


def test_run_until_complete_stopped_early(loop):
    async def stops():
        loop.stop()
        await asyncio.sleep(0.05)

    task = loop.create_task(stops())
    with pytest.raises(RuntimeError, match="stopped before Future completed"):
        loop.run_until_complete(task)
    run_bounded(loop, task)  # still usable: finish the task


def test_run_until_complete_future_of_another_loop(loop, loop_factory):
    with closing(loop_factory()) as other:
        fut = other.create_future()
        with pytest.raises(ValueError, match="different loop"):
            loop.run_until_complete(fut)


def test_run_until_complete_on_running_loop(loop):
    async def inner():
        pass

    async def outer():
        coro = inner()
        try:
            loop.run_until_complete(coro)
        finally:
            coro.close()

    with pytest.raises(RuntimeError, match="already running"):
        loop.run_until_complete(outer())
    assert not loop.is_running()


def test_run_forever_on_running_loop(loop):
    async def outer():
        loop.run_forever()

    with pytest.raises(RuntimeError, match="already running"):
        loop.run_until_complete(outer())


def test_run_forever_while_another_loop_runs_in_this_thread(loop, loop_factory):
    with closing(loop_factory()) as other:

        async def outer():
            other.run_forever()

        with pytest.raises(RuntimeError, match="another loop is running"):
            loop.run_until_complete(outer())
        assert not other.is_running()


def test_close_running_loop_raises(loop):
    async def closer():
        loop.close()

    with pytest.raises(RuntimeError, match="running event loop"):
        loop.run_until_complete(closer())
    assert not loop.is_closed()
    assert run_bounded(loop, asyncio.sleep(0, "still usable")) == "still usable"


def test_close_twice_and_is_closed(loop):
    loop.close()
    assert loop.is_closed()
    loop.close()
    assert loop.is_closed()
    assert not loop.is_running()


def test_closed_loop_refuses_work(loop):
    async def coro():
        pass

    loop.close()
    c = coro()
    try:
        with pytest.raises(RuntimeError, match="closed"):
            loop.run_until_complete(c)
        with pytest.raises(RuntimeError, match="closed"):
            loop.create_task(c)
    finally:
        c.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.run_forever()
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon(print)
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon_threadsafe(print)
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_later(1, print)
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_at(loop.time() + 1, print)
    with pytest.raises(RuntimeError, match="closed"):
        loop.run_in_executor(None, print)


def test_close_drops_pending_callbacks_and_timers(loop):
    """close() runs nothing more and lets go of what was queued (asyncio clears its ready
    queue and timer heap)."""

    class Arg:
        pass

    out = []
    soon, later = Arg(), Arg()
    refs = [weakref.ref(soon), weakref.ref(later)]
    loop.call_soon(out.append, soon)
    loop.call_later(0.001, out.append, later)
    del soon, later
    loop.close()
    gc.collect()
    assert out == []
    assert [r() for r in refs] == [None, None]


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exception_in_callback_propagates(loop, exc_type):
    """asyncio re-raises KeyboardInterrupt and SystemExit from a callback out of
    run_forever(); callbacks queued behind it are not lost, the loop is usable again."""
    out = []

    def boom():
        out.append("boom")
        raise exc_type("from callback")

    loop.call_soon(out.append, "before")
    loop.call_soon(boom)
    loop.call_soon(out.append, "after")
    with pytest.raises(exc_type, match="from callback"):
        run_forever_bounded(loop)
    assert not loop.is_running()
    assert out == ["before", "boom"]
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert out == ["before", "boom", "after"]
    assert run_bounded(loop, asyncio.sleep(0, "ok")) == "ok"


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exception_in_task_propagates(loop, exc_type):
    async def main():
        await asyncio.sleep(0)
        raise exc_type("from task")

    with pytest.raises(exc_type, match="from task"):
        loop.run_until_complete(main())
    assert not loop.is_running()
    assert run_bounded(loop, asyncio.sleep(0.01, "ok")) == "ok"
    loop.close()
    assert loop.is_closed()


def test_keyboard_interrupt_in_timer_callback(loop):
    out = []

    def boom():
        raise KeyboardInterrupt

    loop.call_later(0.01, boom)
    loop.call_later(0.02, out.append, "later")
    with pytest.raises(KeyboardInterrupt):
        run_forever_bounded(loop)
    loop.call_later(0.04, loop.stop)
    run_forever_bounded(loop)
    assert out == ["later"]


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_callbacks_left_by_an_interrupt_run_in_order(loop, exc_type):
    """Three callbacks sent from another thread run in one turn; the first schedules x, the
    second raises. The interrupt leaves ``run_forever``; the next run finishes the turn first
    (c), then what the turn scheduled (x), as asyncio's one ready queue has them. PyLoop runs
    callbacks from other threads as a batch of its phase's queue: the rest of an interrupted
    batch used to go behind x."""
    seen = []

    def a():
        seen.append("a")
        loop.call_soon(seen.append, "x")

    def b():
        seen.append("b")
        raise exc_type

    def c():
        seen.append("c")

    def send_all():
        thread = threading.Thread(target=lambda: [loop.call_soon_threadsafe(f) for f in (a, b, c)])
        thread.start()
        thread.join()

    loop.call_soon(send_all)
    with pytest.raises(exc_type):
        run_forever_bounded(loop)
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert seen == ["a", "b", "c", "x"]


def test_loop_runs_in_another_thread(loop):
    """A loop may be run by any one thread (not only the one that created it)."""
    result = []

    def target():
        result.append(loop.run_until_complete(asyncio.sleep(0.01, threading.get_ident())))

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(10)
    assert result == [thread.ident]
    assert not loop.is_running()


def test_is_running_while_stopping(loop):
    states = []

    def cb():
        loop.stop()
        states.append(loop.is_running())

    loop.call_soon(cb)
    run_forever_bounded(loop)
    assert states == [True]
    assert not loop.is_running()
