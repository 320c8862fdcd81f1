"""Callbacks run in a contextvars.Context: the one given with context=, else a copy of the
caller's, taken when the callback is registered, in the calling thread for
call_soon_threadsafe (a known rloop fault is to use the loop's own context instead)."""

from __future__ import annotations

import contextvars
import threading

import pytest

from tests.support import run_forever_bounded, run_once, wait_for_thread

var = contextvars.ContextVar("var", default="unset")


@pytest.fixture(autouse=True)
def _clean_var():
    token = var.set("unset")
    yield
    var.reset(token)


def test_call_soon_explicit_context(loop):
    ctx = contextvars.Context()
    ctx.run(var.set, "inside ctx")
    seen = []

    def cb():
        seen.append(var.get())
        var.set("mutated by callback")

    loop.call_soon(cb, context=ctx)
    run_once(loop)
    assert seen == ["inside ctx"]
    assert ctx[var] == "mutated by callback"
    assert var.get() == "unset"


@pytest.mark.parametrize("method", ["call_soon", "call_later", "call_at", "call_soon_threadsafe"])
def test_default_context_is_a_copy_taken_at_registration(loop, method):
    seen = []

    def cb():
        seen.append(var.get())
        var.set("mutated by callback")

    var.set("at registration")
    if method == "call_later":
        loop.call_later(0, cb)
    elif method == "call_at":
        loop.call_at(loop.time(), cb)
    else:
        getattr(loop, method)(cb)
    var.set("after registration")
    run_once(loop)
    assert seen == ["at registration"]
    assert var.get() == "after registration"


def test_each_callback_gets_its_own_copy(loop):
    seen = []

    def cb(i):
        seen.append((i, var.get()))
        var.set(f"set by {i}")

    var.set("caller")
    for i in range(3):
        loop.call_soon(cb, i)
    run_once(loop)
    assert seen == [(0, "caller"), (1, "caller"), (2, "caller")]


def test_same_explicit_context_is_shared(loop):
    ctx = contextvars.copy_context()
    seen = []

    def cb(i):
        seen.append(var.get())
        var.set(f"set by {i}")

    loop.call_soon(cb, 0, context=ctx)
    loop.call_soon(cb, 1, context=ctx)
    run_once(loop)
    assert seen == ["unset", "set by 0"]


def test_call_soon_threadsafe_uses_a_copy_of_the_calling_threads_context(loop):
    seen = []
    after_in_thread = []

    def cb():
        seen.append(var.get())
        var.set("mutated by callback")
        loop.stop()

    def producer():
        var.set("thread value")
        loop.call_soon_threadsafe(cb)
        after_in_thread.append(var.get())

    var.set("loop thread value")
    thread = threading.Thread(target=producer)
    loop.call_soon(thread.start)
    run_forever_bounded(loop)
    wait_for_thread(thread)
    assert seen == ["thread value"]
    assert after_in_thread == ["thread value"]
    assert var.get() == "loop thread value"


def test_call_soon_threadsafe_explicit_context_from_thread(loop):
    ctx = contextvars.Context()
    ctx.run(var.set, "explicit")
    seen = []

    def producer():
        var.set("thread value")
        loop.call_soon_threadsafe(lambda: (seen.append(var.get()), loop.stop()), context=ctx)

    thread = threading.Thread(target=producer)
    loop.call_soon(thread.start)
    run_forever_bounded(loop)
    wait_for_thread(thread)
    assert seen == ["explicit"]


def test_callback_runs_inside_its_context(loop):
    ctx = contextvars.copy_context()
    seen = []

    def cb():
        seen.append(contextvars.copy_context()[var])
        with pytest.raises(RuntimeError):
            ctx.run(lambda: None)  # ctx is entered already: re-entering fails

    loop.call_soon(cb, context=ctx)
    run_once(loop)
    assert seen == ["unset"]


def test_context_left_after_callback_raises(loop, exc_handler):
    ctx = contextvars.copy_context()

    def bad():
        var.set("bad")
        raise ValueError

    loop.call_soon(bad, context=ctx)
    loop.call_soon(lambda: ctx.run(lambda: None))  # fails if ctx were still entered
    run_once(loop)
    calls = exc_handler.take()
    assert [type(c["exception"]) for c in calls] == [ValueError]
    assert ctx[var] == "bad"
