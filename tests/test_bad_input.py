"""Bad arguments: what stock asyncio 3.11 does with each, asserted on every loop.

Checked against Lib/asyncio/base_events.py and events.py (3.11.7):

- call_soon / call_soon_threadsafe / call_later / call_at only validate the callback in debug
  mode (``_check_callback``): then a coroutine or coroutine function raises TypeError
  "coroutines cannot be used with <method>()", any other non-callable TypeError "a callable
  object was expected by <method>()". Without debug the handle is created and the TypeError
  of calling it reaches the exception handler when it runs.
- call_later(None) / call_at(None): TypeError at once, debug or not. call_later("x"):
  TypeError (``time() + "x"``).
- call_later(nan): accepted; ``when()`` is nan and the callback runs on the next turn
  (``nan >= end_time`` is false, so the timer counts as due). call_later(inf) and huge
  delays: accepted, never due.
- call_at("x"): asyncio stores the str and fails later (comparing it with another timer's
  float, or computing the select timeout), with TypeError out of run_forever() or out of the
  next call_at/call_later. Not a behaviour to copy: the test accepts a TypeError at call_at
  or from the next run, and requires that the callback never runs.
- run_until_complete(non-awaitable): TypeError "An asyncio.Future, a coroutine or an
  awaitable is required". create_task(non-coroutine): TypeError.
- run_in_executor(None, non-callable): TypeError at once in debug mode; otherwise the
  future fails with the TypeError.
- keyword arguments for the callback are not accepted: TypeError. A missing callback (or
  delay/when), with or without context=: TypeError naming what is missing.
- context= that is not a contextvars.Context: stored, and the callback fails when it runs
  (AttributeError, to the exception handler). PyLoop raises TypeError at once
  (tests/deviations.py, "context that is not a Context").

PyLoop validates the callback and rejects NaN times eagerly (tests/deviations.py): those
tests assert asyncio's behaviour on asyncio and PyLoop's on PyLoop.
"""

from __future__ import annotations

import asyncio
import contextvars
import decimal
import gc
import math
import warnings

import pytest

from tests.deviations import validates_eagerly
from tests.support import is_handle, run_bounded, run_once

NOT_CALLABLE = 42


def _schedule(loop, method, callback):
    if method == "call_later":
        return loop.call_later(0, callback)
    if method == "call_at":
        return loop.call_at(loop.time(), callback)
    return getattr(loop, method)(callback)


METHODS = ["call_soon", "call_soon_threadsafe", "call_later", "call_at"]


@pytest.mark.parametrize("method", METHODS)
def test_non_callable_debug_raises(loop, method):
    loop.set_debug(True)
    # (asyncio names call_at() for call_later(), which delegates to it)
    with pytest.raises(TypeError, match=r"a callable object was expected by call_\w+\(\)"):
        _schedule(loop, method, NOT_CALLABLE)


@pytest.mark.parametrize("method", METHODS)
def test_non_callable_without_debug_fails_when_run(loop, exc_handler, method):
    """asyncio: the TypeError reaches the handler when the handle runs. PyLoop
    (deviations.py, 'non-callable callback'): the debug-mode TypeError at once."""
    loop.set_debug(False)
    if validates_eagerly(loop):
        with pytest.raises(TypeError, match=r"a callable object was expected by call_\w+\(\)"):
            _schedule(loop, method, NOT_CALLABLE)
        run_once(loop)
        assert exc_handler.take() == []
        return
    handle = _schedule(loop, method, NOT_CALLABLE)
    assert is_handle(handle)
    run_once(loop)
    (ctx,) = exc_handler.take()
    assert isinstance(ctx["exception"], TypeError)
    assert "not callable" in str(ctx["exception"])
    assert ctx["handle"] is handle


@pytest.mark.parametrize("method", METHODS)
def test_coroutine_object_debug_raises(loop, method):
    async def coro_fn():
        pass

    loop.set_debug(True)
    coro = coro_fn()
    try:
        with pytest.raises(TypeError, match=r"coroutines cannot be used with call_\w+\(\)"):
            _schedule(loop, method, coro)
        with pytest.raises(TypeError, match=r"coroutines cannot be used with call_\w+\(\)"):
            _schedule(loop, method, coro_fn)
    finally:
        coro.close()


def test_coroutine_object_without_debug_fails_when_run(loop, exc_handler):
    async def coro_fn():
        pass

    loop.set_debug(False)
    coro = coro_fn()
    if validates_eagerly(loop):  # deviations.py, 'non-callable callback'
        try:
            with pytest.raises(TypeError, match=r"a callable object was expected by call_soon"):
                loop.call_soon(coro)
        finally:
            coro.close()
        return
    try:
        handle = loop.call_soon(coro)
        run_once(loop)
    finally:
        coro.close()
    (ctx,) = exc_handler.take()
    assert isinstance(ctx["exception"], TypeError)
    assert ctx["handle"] is handle


def test_coroutine_function_without_debug_is_called(loop):
    """Not debug: a coroutine function is just a callable; calling it makes a coroutine
    that is never awaited (RuntimeWarning), and no error reaches the handler."""
    called = []

    async def coro_fn():
        called.append(True)

    loop.set_debug(False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop.call_soon(coro_fn)
        run_once(loop)
        gc.collect()
    assert called == []
    assert any(
        issubclass(w.category, RuntimeWarning) and "never awaited" in str(w.message) for w in caught
    )


def test_none_delays_raise(loop):
    with pytest.raises(TypeError):
        loop.call_later(None, print)
    with pytest.raises(TypeError):
        loop.call_at(None, print)


def test_call_later_non_number_raises(loop):
    with pytest.raises(TypeError):
        loop.call_later("1", print)
    with pytest.raises(TypeError):
        loop.call_later(object(), print)


def test_call_at_non_number_never_runs_the_callback(loop):
    out = []
    try:
        loop.call_at("soon", out.append, "ran")
    except TypeError:
        return  # rejected at once: the better behaviour
    # asyncio's: accepted, and the loop fails on its next comparison or timeout computation
    with pytest.raises(TypeError):
        loop.call_later(0.01, loop.stop)
        loop.run_forever()
    assert out == []
    loop.close()  # the str deadline is still queued: only close() gets rid of it


def test_call_later_nan_runs_next_turn(loop):
    """asyncio 3.11 accepts NaN; PyLoop raises ValueError (deviations.py, 'NaN time')."""
    out = []
    if validates_eagerly(loop):
        with pytest.raises(ValueError, match="NaN"):
            loop.call_later(math.nan, out.append, "nan")
        run_once(loop)
        assert out == []
        return
    handle = loop.call_later(math.nan, out.append, "nan")
    assert math.isnan(handle.when())
    run_once(loop)
    assert out == ["nan"]


def test_call_at_nan_runs_next_turn(loop):
    """asyncio 3.11 accepts NaN; PyLoop raises ValueError (deviations.py, 'NaN time')."""
    out = []
    if validates_eagerly(loop):
        with pytest.raises(ValueError, match="NaN"):
            loop.call_at(math.nan, out.append, "nan")
        run_once(loop)
        assert out == []
        return
    handle = loop.call_at(math.nan, out.append, "nan")
    assert math.isnan(handle.when())
    run_once(loop)
    assert out == ["nan"]


@pytest.mark.parametrize("delay", [math.inf, 1e300, 2.0**63, 10**30])
def test_huge_delays_are_accepted_and_never_due(loop, delay):
    out = []
    handle = loop.call_later(delay, out.append, "never")
    assert handle.when() >= 1e18
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    assert out == []
    handle.cancel()


def test_call_at_infinite_deadline(loop):
    out = []
    handle = loop.call_at(math.inf, out.append, "never")
    assert handle.when() == math.inf
    run_once(loop)
    assert out == []
    handle.cancel()


class _OnlyFloat:
    """A number to ``float()`` but not to ``float + x``: asyncio's ``call_later`` refuses it."""

    def __float__(self) -> float:
        return 0.0


class _InterruptingNumber:
    """A delay whose conversion raises ``KeyboardInterrupt`` (Ctrl-C at that moment)."""

    def __float__(self) -> float:
        raise KeyboardInterrupt

    def __radd__(self, other):
        raise KeyboardInterrupt

    __index__ = __float__


@pytest.mark.parametrize(
    ("delay", "raised"),
    [
        (decimal.Decimal("0"), TypeError),
        (_OnlyFloat(), TypeError),
        (10**400, OverflowError),
        (_InterruptingNumber(), KeyboardInterrupt),
    ],
    ids=["Decimal", "only __float__", "int too large for a float", "KeyboardInterrupt"],
)
def test_call_later_computes_its_deadline_as_asyncio_does(loop, delay, raised):
    """asyncio's deadline is ``loop.time() + delay``: a type that addition refuses raises its
    ``TypeError``, an ``int`` beyond a float raises ``OverflowError``, and whatever the
    conversion raises (here ``KeyboardInterrupt``) comes out as it is, not as a
    ``TypeError``. Nothing is scheduled."""
    out = []
    with pytest.raises(raised):
        loop.call_later(delay, out.append, "ran")
    run_once(loop)
    assert out == []


def test_call_at_passes_an_interrupt_in_its_conversion_through(loop):
    """A ``KeyboardInterrupt`` raised while ``call_at`` reads its deadline is not turned into
    a ``TypeError`` (asyncio makes no conversion there; PyLoop makes one, and must not hide
    what it raised)."""
    try:
        handle = loop.call_at(_InterruptingNumber(), print)
    except KeyboardInterrupt:
        return
    # asyncio's: accepted as it is; nothing converts it until the loop compares deadlines.
    assert is_handle(handle)
    handle.cancel()


@pytest.mark.parametrize(
    "call",
    [
        "call_soon(callback=f)",
        "call_soon_threadsafe(callback=f)",
        "call_soon(callback=f, context=ctx)",
        "call_later(0, callback=f)",
        "call_later(delay=0, callback=f)",
        "call_at(when=now, callback=f)",
        "call_at(now, callback=f, context=ctx)",
    ],
)
def test_required_arguments_by_keyword(loop, call):
    """asyncio's signatures are Python's, so the callback, ``delay`` and ``when`` may be named
    (with no positional arguments for the callback then): the call schedules the callback."""
    var = contextvars.ContextVar("var", default="outer")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "given")
    out = []

    def f():
        out.append(var.get())

    handle = eval(
        call,
        {
            "call_soon": loop.call_soon,
            "call_soon_threadsafe": loop.call_soon_threadsafe,
            "call_later": loop.call_later,
            "call_at": loop.call_at,
            "f": f,
            "ctx": ctx,
            "now": loop.time(),
        },
    )
    assert is_handle(handle)
    run_bounded(loop, asyncio.sleep(0.01))
    assert out == ["given" if "ctx" in call else "outer"]


@pytest.mark.parametrize(
    "call",
    [
        "call_soon(f, callback=f)",
        "call_later(0, delay=0, callback=f)",
        "call_later(callback=f)",
        "call_at(callback=f, context=None)",
        "call_soon(callback=f, func=f)",
    ],
)
def test_required_arguments_by_keyword_badly(loop, call):
    """Named twice, missing, or beside an unknown keyword: ``TypeError``, as asyncio's Python
    signature raises, and nothing is scheduled."""
    out = []

    def f():
        out.append("ran")

    with pytest.raises(TypeError):
        eval(
            call,
            {
                "call_soon": loop.call_soon,
                "call_later": loop.call_later,
                "call_at": loop.call_at,
                "f": f,
            },
        )
    run_once(loop)
    assert out == []


@pytest.mark.parametrize("method", METHODS)
def test_keyword_arguments_for_the_callback_are_rejected(loop, method):
    with pytest.raises(TypeError):
        if method == "call_later":
            loop.call_later(0, print, sep="")
        elif method == "call_at":
            loop.call_at(loop.time(), print, sep="")
        else:
            getattr(loop, method)(print, sep="")


@pytest.mark.parametrize("bad", [42, None, "string", print])
def test_run_until_complete_non_awaitable(loop, bad):
    with pytest.raises(TypeError, match="An asyncio.Future, a coroutine or an awaitable"):
        loop.run_until_complete(bad)
    assert not loop.is_running()


def test_create_task_non_coroutine(loop):
    with pytest.raises(TypeError, match="a coroutine was expected"):
        loop.create_task(42)
    fut = loop.create_future()
    with pytest.raises(TypeError):
        loop.create_task(fut)
    fut.cancel()


def test_run_in_executor_non_callable(loop):
    if loop.get_debug():
        with pytest.raises(TypeError, match="a callable object was expected"):
            loop.run_in_executor(None, NOT_CALLABLE)
        loop.set_debug(False)
    fut = loop.run_in_executor(None, NOT_CALLABLE)
    with pytest.raises(TypeError, match="not callable"):
        run_bounded(loop, fut)


VAR = contextvars.ContextVar("VAR", default="unset")


def _leading(loop, method) -> list:
    """The arguments before the callback: the delay or the deadline of the timer methods."""
    return {"call_later": [0], "call_at": [loop.time()]}.get(method, [])


@pytest.mark.parametrize("method", METHODS)
def test_missing_callback_raises(loop, method):
    """No callback at all, or only context=: TypeError naming the callback, as asyncio's
    Python signature raises (the native entry points split the arguments themselves)."""
    fn = getattr(loop, method)
    for kwargs in ({}, {"context": contextvars.copy_context()}):
        with pytest.raises(TypeError, match="callback"):
            fn(*_leading(loop, method), **kwargs)


@pytest.mark.parametrize(("method", "first"), [("call_later", "delay"), ("call_at", "when")])
def test_timer_methods_with_no_arguments_raise(loop, method, first):
    with pytest.raises(TypeError, match=first):
        getattr(loop, method)()


@pytest.mark.parametrize("method", METHODS)
def test_unknown_keyword_beside_context_raises(loop, method):
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        getattr(loop, method)(
            *_leading(loop, method), print, context=contextvars.copy_context(), loop=loop
        )


@pytest.mark.parametrize("method", METHODS)
def test_context_keyword_from_a_string_built_at_run_time(loop, method):
    """context= given through **kwargs with a key that is not the interned "context" string
    (the native parser compares by identity first), with more arguments than fit inline:
    the callback still runs in that context, with its arguments."""
    seen = []
    ctx = contextvars.copy_context()
    ctx.run(VAR.set, "given")
    key = "".join(["con", "text"])
    getattr(loop, method)(
        *_leading(loop, method), lambda *a: seen.append((VAR.get(), a)), 1, 2, 3, **{key: ctx}
    )
    getattr(loop, method)(*_leading(loop, method), lambda: seen.append((VAR.get(), None)))
    run_bounded(loop, _after_timers(loop))
    assert seen == [("given", (1, 2, 3)), ("unset", None)]


async def _after_timers(loop):
    for _ in range(3):
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)


@pytest.mark.parametrize("method", METHODS)
def test_context_that_is_not_a_context(loop, exc_handler, method):
    """asyncio stores it and the callback fails when it runs; PyLoop refuses it at once
    (deviations.py, 'context that is not a Context'). Either way the callback never runs."""
    seen = []
    fn = getattr(loop, method)
    if validates_eagerly(loop):
        with pytest.raises(TypeError, match="contextvars.Context"):
            fn(*_leading(loop, method), seen.append, 1, context=42)
        run_bounded(loop, _after_timers(loop))
        assert exc_handler.take() == []
    else:
        fn(*_leading(loop, method), seen.append, 1, context=42)
        run_bounded(loop, _after_timers(loop))
        calls = exc_handler.take()
        assert [type(c.get("exception")) for c in calls] == [AttributeError]
    assert seen == []


def test_call_later_whose_delay_closes_the_loop(loop):
    """A delay whose addition closes the loop (re-entrancy from ``__radd__``): the timer is
    refused with asyncio's ``RuntimeError`` for a closed loop, and nothing is scheduled."""
    out = []

    class Closing:
        def __radd__(self, other):
            loop.close()
            return other + 0.0

    with pytest.raises(RuntimeError, match="closed"):
        loop.call_later(Closing(), out.append, "ran")
    assert loop.is_closed()
    assert out == []


def test_call_soon_threadsafe_by_keyword_from_another_thread(loop):
    """``call_soon_threadsafe(callback=f)`` from another thread while the loop runs: the
    named call is rearranged on that thread and the callback runs on the loop."""
    import threading

    out = []

    async def main():
        done = loop.create_future()

        def send():
            loop.call_soon_threadsafe(callback=lambda: done.set_result("ran"))

        thread = threading.Thread(target=send)
        thread.start()
        out.append(await asyncio.wait_for(done, 5))
        thread.join()

    run_bounded(loop, main())
    assert out == ["ran"]


def test_call_at_on_a_closed_loop_is_refused_before_its_deadline_is_read(loop):
    """On a closed loop ``call_at`` raises asyncio's ``RuntimeError`` whatever ``when`` is,
    without converting it (asyncio stores ``when`` as given and checks the loop first); only
    ``None`` is refused before that, with ``TypeError``."""
    converted = []

    class Deadline:
        def __float__(self):
            converted.append(True)
            return 0.0

    loop.close()
    for when in (Deadline(), "not a number", float("nan"), 0.0):
        with pytest.raises(RuntimeError, match="closed"):
            loop.call_at(when, print)
    assert converted == []
    with pytest.raises(TypeError):
        loop.call_at(None, print)


def test_a_handle_cannot_change_its_class(loop):
    """``handle.__class__ = ...`` between a ``Handle`` and a ``TimerHandle`` is refused with
    ``TypeError``, as asyncio refuses it (different layouts there). PyLoop's two types have
    one layout, so only their being immutable types refuses it: a ``call_soon`` handle made
    a timer answered ``when()`` with NaN (review of stop 21). Both handles still run or
    cancel afterwards."""
    ran = []
    handle = loop.call_soon(ran.append, "soon")
    timer = loop.call_later(3600, ran.append, "later")
    for obj, other in ((handle, timer), (timer, handle)):
        before = type(obj)
        with pytest.raises(TypeError):
            obj.__class__ = type(other)
        assert type(obj) is before
    timer.cancel()
    run_once(loop)
    assert ran == ["soon"]
    assert timer.cancelled()
