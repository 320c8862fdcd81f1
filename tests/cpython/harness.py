"""Runs CPython 3.11's own test_asyncio classes on stock asyncio and on every pyloop phase.

The tests are CPython's, imported from the interpreter's ``test.test_asyncio`` package and run
unmodified: :func:`build` subclasses each class once per loop of ``tests.loops.ALL_LOOPS`` and
changes only how a loop is obtained, never a test body. What the subclasses change, in full:

- ``create_event_loop()`` (EventLoopTestsMixin's hook) returns the loop under test;
- classes that call ``asyncio.new_event_loop()`` get an event-loop policy whose
  ``new_event_loop()`` returns the loop under test, set in ``setUp`` and reset at cleanup;
- IsolatedAsyncioTestCase classes get the same policy around their ``asyncio.Runner``
  (``_setupAsyncioRunner``), so the Runner makes and sets the loop exactly as it does for
  stock asyncio;
- ``close_loop()`` (test_utils.TestCase's cleanup) reads ``loop._default_executor``, an
  attribute only asyncio's loops have: the override shuts the default executor down through
  the public ``shutdown_default_executor()`` instead, then does what the original does;
- a test listed in ``tests/cpython/skips.py`` for that loop is replaced by a skip with the
  reason given there (the only list of skips);
- test methods whose name contains "asyncio" are exposed under the same name with "aio"
  instead, and classes are named ``<loop id>__<CPython class>``, so that ``-k asyncio``
  selects exactly the stock-asyncio runs (``--loops`` is the robust selector).
"""

from __future__ import annotations

import asyncio
import unittest

from test import support
from test.test_asyncio import utils as test_utils

from tests.cpython.skips import SKIPS, applies
from tests.loops import ALL_LOOPS, LoopSpec


class LoopPolicy(asyncio.DefaultEventLoopPolicy):
    """The default policy, except that its new loops are of the kind under test."""

    def __init__(self, spec: LoopSpec) -> None:
        super().__init__()
        self._spec = spec

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return self._spec.new_loop()


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """test_utils.TestCase.close_loop without its read of ``loop._default_executor``."""
    if not loop.is_closed():
        loop.run_until_complete(loop.shutdown_default_executor())
    else:
        executor = getattr(loop, "_default_executor", None)  # stock asyncio only
        if executor is not None:
            executor.shutdown(wait=True)
    loop.close()
    policy = support.maybe_get_event_loop_policy()
    if policy is not None:
        try:
            watcher = policy.get_child_watcher()
        except NotImplementedError:
            pass
        else:
            if isinstance(watcher, asyncio.ThreadedChildWatcher):
                for thread in list(watcher._threads.values()):
                    thread.join(timeout=support.SHORT_TIMEOUT)
                    if thread.is_alive():
                        raise RuntimeError(f"thread {thread} still alive: subprocess still running")


class OnLoop:
    """Base of every generated class: knows its loop, closes loops portably."""

    loop_spec: LoopSpec
    close_loop = staticmethod(close_loop)


class CreateEventLoop(OnLoop):
    """For EventLoopTestsMixin-style classes: the loop comes from create_event_loop()."""

    def create_event_loop(self):
        return self.loop_spec.new_loop()


class PolicyDuringTest(OnLoop):
    """For classes that call asyncio.new_event_loop() in setUp or in tests."""

    def setUp(self):
        asyncio.set_event_loop_policy(LoopPolicy(self.loop_spec))
        self.addCleanup(asyncio.set_event_loop_policy, None)
        super().setUp()


class PolicyAroundRunner(OnLoop):
    """For unittest.IsolatedAsyncioTestCase classes: its Runner asks the policy for a loop."""

    def _setupAsyncioRunner(self):
        asyncio.set_event_loop_policy(LoopPolicy(self.loop_spec))
        super()._setupAsyncioRunner()

    def _tearDownAsyncioRunner(self):
        try:
            super()._tearDownAsyncioRunner()
        finally:
            asyncio.set_event_loop_policy(None)


def skip_key(cls: type, name: str) -> str:
    """``<module>.<class>.<method>`` of the class that defines ``name`` (CPython's names)."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return f"{klass.__module__.rsplit('.', 1)[-1]}.{klass.__qualname__}.{name}"
    raise AttributeError(name)


def method_names(cls: type) -> list[str]:
    return unittest.TestLoader().getTestCaseNames(cls)


def build(namespace: dict, how: type, classes: list[type]) -> None:
    """Put into ``namespace`` one subclass of each of ``classes`` per loop."""
    for spec in ALL_LOOPS:
        for base in classes:
            bare = base.__name__.replace("Asyncio", "Aio").replace("asyncio", "aio")
            name = f"{spec.ident}__{bare}"
            attrs = {
                "loop_spec": spec,
                "__test__": True,
                "__module__": namespace["__name__"],
                "__qualname__": name,
            }
            for test in method_names(base):
                method = getattr(base, test)
                entry = SKIPS.get(skip_key(base, test))
                if entry is not None and applies(entry, spec):
                    method = unittest.skip(entry.reason)(method)
                if "asyncio" in test:
                    attrs[test] = None  # not collected under its own name...
                    attrs[test.replace("asyncio", "aio")] = method  # ...but under this one
                elif method is not getattr(base, test):
                    attrs[test] = method
            namespace[name] = type(name, (how, base), attrs)


def used_skip_keys(classes: list[type]) -> set[str]:
    return {skip_key(base, t) for base in classes for t in method_names(base)}


__all__ = ["build", "used_skip_keys", "test_utils"]
