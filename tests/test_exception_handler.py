"""set/get_exception_handler, call_exception_handler, default_exception_handler, and errors
raised by callbacks (spec: base_events.BaseEventLoop 3.11, events.Handle._run)."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import traceback

import pytest

from tests.support import closing, run_bounded, run_once


def test_handler_default_is_none_and_set_get(loop_factory):
    with closing(loop_factory()) as lp:
        assert lp.get_exception_handler() is None

        def handler(loop, context):
            pass

        lp.set_exception_handler(handler)
        assert lp.get_exception_handler() is handler
        lp.set_exception_handler(None)
        assert lp.get_exception_handler() is None
        with pytest.raises(TypeError, match="callable"):
            lp.set_exception_handler("not callable")
        assert lp.get_exception_handler() is None


def test_call_exception_handler_passes_the_context_through(loop, exc_handler):
    marker = object()
    exc = RuntimeError("x")
    context = {"message": "hello", "exception": exc, "custom": marker}
    loop.call_exception_handler(context)
    (got,) = exc_handler.take()
    assert got["message"] == "hello"
    assert got["exception"] is exc
    assert got["custom"] is marker
    assert exc_handler.loops == [loop]


def test_exception_in_callback_reaches_handler(loop, exc_handler):
    def bad():
        raise ZeroDivisionError("in callback")

    handle = loop.call_soon(bad)
    loop.call_soon(loop.stop)
    loop.run_forever()
    (ctx,) = exc_handler.take()
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert ctx["handle"] is handle
    assert ctx["message"].startswith("Exception in callback")
    assert "bad" in ctx["message"]


def test_exception_in_timer_callback_reaches_handler(loop, exc_handler):
    def bad():
        raise KeyError("in timer")

    timer = loop.call_later(0.001, bad)
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    (ctx,) = exc_handler.take()
    assert isinstance(ctx["exception"], KeyError)
    assert ctx["handle"] is timer
    assert ctx["message"].startswith("Exception in callback")


def test_exception_in_threadsafe_callback_reaches_handler(loop, exc_handler):
    handle = loop.call_soon_threadsafe(lambda: 1 / 0)
    run_once(loop)
    (ctx,) = exc_handler.take()
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert ctx["handle"] is handle


def test_loop_keeps_running_after_callback_errors(loop, exc_handler):
    out = []
    for i in range(5):
        loop.call_soon(lambda: 1 / 0)
        loop.call_soon(out.append, i)
    run_once(loop)
    assert out == list(range(5))
    assert len(exc_handler.take()) == 5


def test_failing_custom_handler_falls_back_to_default(loop_factory, caplog):
    with closing(loop_factory()) as lp:

        def broken_handler(loop, context):
            raise ValueError("handler is broken")

        lp.set_exception_handler(broken_handler)
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            lp.call_soon(lambda: 1 / 0)
            run_once(lp)
        messages = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
        assert any("Unhandled error in exception handler" in m for m in messages), messages


class _FalsyError(Exception):
    """An exception that is false as a truth value."""

    def __bool__(self) -> bool:
        return False


@pytest.mark.parametrize("error", [ZeroDivisionError, _FalsyError])
def test_default_handler_logs(loop_factory, caplog, error):
    """The default handler logs the callback's exception with its traceback; it tests
    ``exception is not None``, as asyncio's does, never the exception's truth, so a falsy
    exception keeps its traceback too."""
    with closing(loop_factory()) as lp:

        def bad():
            raise error("logged")

        with caplog.at_level(logging.ERROR, logger="asyncio"):
            lp.call_soon(bad)
            run_once(lp)
        records = [r for r in caplog.records if r.name == "asyncio"]
        assert len(records) == 1
        assert records[0].levelno == logging.ERROR
        assert records[0].getMessage().startswith("Exception in callback")
        assert records[0].exc_info[0] is error


def _schedule_failing(lp, how: str) -> None:
    def bad():
        raise ValueError("boom")

    if how == "call_soon":
        lp.call_soon(bad)
    elif how == "call_later":
        lp.call_later(0, bad)
    else:
        lp.call_soon_threadsafe(bad)


@pytest.mark.parametrize("how", ["call_soon", "call_later", "call_soon_threadsafe"])
def test_the_handler_runs_as_if_in_the_except_block(loop_factory, caplog, how):
    """asyncio calls the exception handler from the ``except`` block of ``Handle._run``: the
    exception carries its traceback, ``sys.exc_info()`` in the handler is that exception, and
    what the handler raises is chained to it. (Review 35: on 3.11 PyLoop gave the handler,
    and so the default handler's log, the exception without its traceback, on every phase;
    and on every version the handler saw no exception being handled.)"""
    with closing(loop_factory()) as lp:
        seen = []

        def handler(loop, context):
            exc = context["exception"]
            frames = [frame.name for frame in traceback.extract_tb(exc.__traceback__)]
            seen.append((frames[-1:], sys.exc_info()[1] is exc))
            raise RuntimeError("in the handler")

        lp.set_exception_handler(handler)
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            _schedule_failing(lp, how)
            for _ in range(3):
                run_once(lp)
        assert seen == [(["bad"], True)]
        (record,) = [r for r in caplog.records if r.name == "asyncio"]
        assert record.getMessage().startswith("Unhandled error in exception handler")
        raised = record.exc_info[1]
        assert isinstance(raised, RuntimeError)
        assert isinstance(raised.__context__, ValueError)


def test_the_handler_leaves_the_exception_state_as_it_was(loop_factory):
    """The loop runs inside a generator started in an ``except`` block, and a callback's
    exception goes to the handler: resumed later, outside that block, the generator sees no
    exception being handled, as with asyncio. (Review 36: a first version of the handler's
    ``except`` state, set and put back by hand, wrote the outer exception into the
    generator.)"""
    with closing(loop_factory()) as lp:
        lp.set_exception_handler(lambda loop, context: None)

        def runs_the_loop():
            _schedule_failing(lp, "call_soon")
            run_once(lp)
            yield
            yield sys.exc_info()[1]

        generator = runs_the_loop()
        try:
            raise KeyError("outer")
        except KeyError:
            next(generator)
        assert next(generator) is None


@pytest.mark.parametrize("how", ["call_soon", "call_later", "call_soon_threadsafe"])
def test_the_default_handler_logs_the_traceback(loop_factory, caplog, how):
    """Review 35: on 3.11 the default handler logged ``ValueError: boom`` alone, on every
    phase, where asyncio logs the traceback down to the callback."""
    with closing(loop_factory()) as lp:
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            _schedule_failing(lp, how)
            for _ in range(3):
                run_once(lp)
        (record,) = [r for r in caplog.records if r.name == "asyncio"]
        frames = [frame.name for frame in traceback.extract_tb(record.exc_info[2])]
        assert frames[-1:] == ["bad"]
        assert "Traceback" in caplog.text and "in bad" in caplog.text


def test_default_exception_handler_can_be_called_directly(loop_factory, caplog):
    with closing(loop_factory()) as lp:
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            lp.default_exception_handler({"message": "direct", "exception": OSError("e")})
            lp.default_exception_handler({"message": ""})
        messages = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
        assert messages[0].startswith("direct")
        assert messages[1].startswith("Unhandled exception in event loop")


def test_handler_may_call_the_default(loop_factory, caplog):
    with closing(loop_factory()) as lp:
        seen = []

        def handler(loop, context):
            seen.append(context["message"])
            loop.default_exception_handler(context)

        lp.set_exception_handler(handler)
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            lp.call_soon(lambda: 1 / 0)
            run_once(lp)
        assert len(seen) == 1
        assert any(r.getMessage().startswith(seen[0]) for r in caplog.records)


def test_task_exception_never_retrieved(loop, exc_handler):
    async def bad():
        raise ValueError("never retrieved")

    task = loop.create_task(bad())
    run_bounded(loop, asyncio.sleep(0.01))
    assert task.done()
    del task
    gc.collect()
    (ctx,) = exc_handler.take()
    assert ctx["message"] == "Task exception was never retrieved"
    assert isinstance(ctx["exception"], ValueError)
    assert "future" in ctx


def test_base_exception_in_handler_propagates(loop):
    """KeyboardInterrupt raised by the exception handler itself is not swallowed."""

    def handler(lp, context):
        raise KeyboardInterrupt

    loop.set_exception_handler(handler)
    loop.call_soon(lambda: 1 / 0)
    with pytest.raises(KeyboardInterrupt):
        run_once(loop)
    assert not loop.is_running()
