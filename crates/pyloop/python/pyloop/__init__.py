"""PyLoop: an asyncio event loop written in Rust, one loop per ready-queue phase.

Use it as any asyncio loop::

    import pyloop
    pyloop.run(main())                       # or
    asyncio.Runner(loop_factory=pyloop.new_event_loop).run(main())

Every optimisation phase of the ready queue is compiled in and can be chosen
per loop (``pyloop.new_event_loop(phase="3.1.3")``) or for the process with the
``PYLOOP_PHASE`` environment variable. ``pyloop.phases()`` lists the tags.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.metadata
import os
from asyncio import unix_events
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from . import _native
from ._loop import IoLoopMixin, LoopMixin, NoIoMixin
from ._native import Handle, TimerHandle
from ._sockets import NativeSocketMixin

__all__ = [
    "DEFAULT_PHASE",
    "__version__",
    "EventLoop",
    "EventLoopPolicy",
    "Handle",
    "TimerHandle",
    "install",
    "loop_class",
    "new_event_loop",
    "phases",
    "run",
]

_T = TypeVar("_T")

#: The name of this package's distribution on PyPI (the import name is ``pyloop``).
_DISTRIBUTION = "pyloop-rs"

#: The version of the installed distribution: that of ``crates/pyloop/Cargo.toml``, its one
#: source (``pyproject.toml`` declares it dynamic and maturin copies it into the metadata).
__version__: str = importlib.metadata.version(_DISTRIBUTION)


# A loop running in a daemon thread when the interpreter exits would meet CPython's
# pthread_exit (3.11-3.13) below its Rust frames and crash the process: at exit, after the
# atexit handlers registered after this import (which may still use such a loop), each one
# parks its thread instead (exit_park.rs). A forked child counts only the forking thread's loops.
atexit.register(_native.park_loop_threads_at_exit)
os.register_at_fork(after_in_child=_native.after_fork_in_child)


class EventLoop(LoopMixin, asyncio.AbstractEventLoop):
    """The common base of PyLoop's loop classes (one per phase)."""


class _IoEventLoop(IoLoopMixin, NativeSocketMixin, EventLoop, unix_events._UnixSelectorEventLoop):
    """The base of the loops whose phase can wait for I/O."""


class _NoIoEventLoop(NoIoMixin, EventLoop):
    """The base of the loops whose phase cannot wait for I/O."""


def _make_loop_class(native: type) -> type:
    tag = native.phase
    name = "EventLoop_" + tag.replace(".", "_")
    base = _IoEventLoop if native.can_do_io else _NoIoEventLoop
    cls = type(name, (native, base), {"__module__": __name__, "__qualname__": name})
    cls.__doc__ = f"PyLoop's event loop on ready-queue phase {tag}."
    # Descriptors of `cls` itself, so CPython's call specialisation applies to
    # `loop.call_soon(...)` in Python code (see `own_native_methods`).
    _native.own_native_methods(cls, native)
    return cls


_LOOP_CLASSES: dict[str, type] = {
    native.phase: _make_loop_class(native)
    for native in (
        _native.BatchLimitLoop,
        _native.AdaptiveSleepLoop,
        _native.CondvarWakeLoop,
        _native.TwoPhaseLoop,
        _native.SwapBufferLoop,
        _native.EpollWakeLoop,
        _native.LockFreeLoop,
    )
}


def phases() -> list[str]:
    """The tags of every phase, oldest first."""
    return list(_native.phases())


def _check_phase(phase: str) -> str:
    if phase not in _LOOP_CLASSES:
        raise ValueError(f"unknown phase {phase!r}: expected one of {', '.join(phases())}")
    return phase


def _default_phase() -> str:
    from_env = os.environ.get("PYLOOP_PHASE", "").strip()
    if not from_env:
        return _native.BUILD_DEFAULT_PHASE
    if from_env not in _LOOP_CLASSES:
        raise ValueError(
            f"the environment variable PYLOOP_PHASE={from_env!r} is not a phase: expected one "
            f"of {', '.join(phases())}, or unset for this build's default "
            f"({_native.BUILD_DEFAULT_PHASE})"
        )
    return from_env


#: The phase ``new_event_loop()`` uses when given none: ``PYLOOP_PHASE`` if
#: set, else the build's default (its ``phase-*`` cargo feature, or the newest).
DEFAULT_PHASE: str = _default_phase()


def loop_class(phase: str | None = None) -> type:
    """The loop class of ``phase`` (default: ``DEFAULT_PHASE``)."""
    return _LOOP_CLASSES[_check_phase(_default_phase() if phase is None else phase)]


def new_event_loop(phase: str | None = None) -> asyncio.AbstractEventLoop:
    """A new PyLoop event loop on ``phase`` (default: ``DEFAULT_PHASE``)."""
    return loop_class(phase)()


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """An event-loop policy whose new loops are PyLoop loops."""

    def __init__(self, phase: str | None = None) -> None:
        super().__init__()
        self._phase = _check_phase(phase) if phase is not None else None

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return new_event_loop(self._phase)


def install(phase: str | None = None) -> None:
    """Make PyLoop the event loop of ``asyncio.run`` and ``asyncio.new_event_loop``."""
    asyncio.set_event_loop_policy(EventLoopPolicy(phase))


def run(
    main: Coroutine[Any, Any, _T] | Awaitable[_T],
    *,
    phase: str | None = None,
    debug: bool | None = None,
) -> _T:
    """Run the coroutine ``main`` on a new PyLoop loop and close it, as ``asyncio.run``."""
    factory: Callable[[], asyncio.AbstractEventLoop] = lambda: new_event_loop(phase)  # noqa: E731
    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)
