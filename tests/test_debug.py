"""Debug mode (spec: base_events 3.11): set/get_debug, slow-callback warnings on the
'asyncio' logger, the thread check of non-threadsafe methods, coroutine origin tracking."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import threading
import time

import pytest

from tests.support import closing, run_bounded, run_once, wait_for_thread

SLOW_RE = r"Executing .+ took \d+\.\d{3} seconds"


@pytest.mark.parametrize("env", [None, "", "1"])
def test_default_debug_follows_the_environment(loop_factory, monkeypatch, env):
    if env is None:
        monkeypatch.delenv("PYTHONASYNCIODEBUG", raising=False)
    else:
        monkeypatch.setenv("PYTHONASYNCIODEBUG", env)
    expected = sys.flags.dev_mode or (not sys.flags.ignore_environment and bool(env))
    with closing(loop_factory()) as lp:
        assert lp.get_debug() is expected


def test_set_get_debug(loop):
    loop.set_debug(True)
    assert loop.get_debug() is True
    loop.set_debug(False)
    assert loop.get_debug() is False


def test_slow_callback_duration_default(loop):
    assert loop.slow_callback_duration == 0.1
    loop.slow_callback_duration = 0.25
    assert loop.slow_callback_duration == 0.25


def test_slow_callback_is_logged_in_debug_mode(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0.02

    def slow_callback():
        time.sleep(0.05)

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.call_soon(slow_callback)
        loop.call_soon(lambda: None)
        run_once(loop)
    records = [r for r in caplog.records if r.name == "asyncio"]
    assert len(records) == 1, [r.getMessage() for r in records]
    assert records[0].levelno == logging.WARNING
    assert "slow_callback" in records[0].getMessage()
    assert re.fullmatch(SLOW_RE, records[0].getMessage(), re.S)


def test_slow_callback_not_logged_without_debug(loop, caplog):
    loop.set_debug(False)
    loop.slow_callback_duration = 0.01
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.call_soon(time.sleep, 0.03)
        run_once(loop)
    assert [r for r in caplog.records if r.name == "asyncio"] == []


@pytest.mark.parametrize("method", ["call_soon", "call_later", "call_at"])
def test_debug_non_threadsafe_call_from_another_thread(loop, method):
    loop.set_debug(True)
    errors = []

    def other_thread():
        try:
            if method == "call_soon":
                loop.call_soon(print)
            elif method == "call_later":
                loop.call_later(1, print)
            else:
                loop.call_at(loop.time() + 1, print)
        except RuntimeError as e:
            errors.append(str(e))
        loop.call_soon_threadsafe(loop.stop)

    thread = threading.Thread(target=other_thread)
    loop.call_soon(thread.start)
    loop.run_forever()
    wait_for_thread(thread)
    assert len(errors) == 1
    assert errors[0].startswith("Non-thread-safe operation")


def test_debug_call_soon_from_another_thread_when_not_running_is_allowed(loop):
    """asyncio checks the thread only while the loop runs (its thread id is unset otherwise)."""
    loop.set_debug(True)
    handles = []
    thread = threading.Thread(target=lambda: handles.append(loop.call_soon(abs, 1)))
    thread.start()
    wait_for_thread(thread)
    assert len(handles) == 1
    run_once(loop)


def test_debug_call_soon_threadsafe_from_a_thread_with_no_python_frame(loop):
    """A thread started by C code calls ``call_soon_threadsafe`` with no Python frame at all
    (here ``_thread.start_new_thread`` calling the method itself): in debug mode the handle
    records an empty creation stack, and the callback runs; it is not lost to a
    ``ValueError`` from looking for the caller's frame."""
    import _thread

    loop.set_debug(True)
    out = []
    # The thread's function is the bound method itself: no Python frame when it runs.
    _thread.start_new_thread(loop.call_soon_threadsafe, (out.append, "ran"))
    deadline = time.monotonic() + 5
    while not out and time.monotonic() < deadline:
        run_once(loop)
        time.sleep(0.001)
    assert out == ["ran"]


def test_debug_tracks_coroutine_origin_while_running(loop):
    before = sys.get_coroutine_origin_tracking_depth()
    loop.set_debug(True)
    seen = []

    async def main():
        seen.append(sys.get_coroutine_origin_tracking_depth())

    run_bounded(loop, main())
    assert seen == [asyncio.constants.DEBUG_STACK_DEPTH]
    assert sys.get_coroutine_origin_tracking_depth() == before


@pytest.mark.parametrize("value", [None, "x"])
def test_a_slow_callback_duration_that_is_not_a_number_raises(loop_factory, value):
    """asyncio compares each callback's duration with ``slow_callback_duration`` in debug
    mode, and the comparison raises TypeError out of ``run_forever``. (Review 35: PyLoop
    fell back to 0.1 s without a word.)"""
    with closing(loop_factory()) as lp:
        lp.set_debug(True)
        lp.slow_callback_duration = value
        lp.call_soon(len, ())
        with pytest.raises(TypeError):
            run_once(lp)
        lp.slow_callback_duration = 0.1  # for the clean-up, which runs the loop again


def test_an_interrupt_from_a_callback_is_not_masked_by_the_duration_check(loop_factory):
    """asyncio's ``Handle._run`` lets KeyboardInterrupt out before the loop compares the
    callback's duration, so a bad ``slow_callback_duration`` cannot replace it. (Review 36:
    PyLoop raised the comparison's TypeError instead.)"""
    with closing(loop_factory()) as lp:
        lp.set_debug(True)
        lp.slow_callback_duration = None

        def interrupts():
            raise KeyboardInterrupt

        lp.call_soon(interrupts)
        with pytest.raises(KeyboardInterrupt):
            run_once(lp)
        lp.slow_callback_duration = 0.1  # for the clean-up, which runs the loop again
