"""The loops the suite runs on, in one place (uvloop's pattern: write a test once, run it on each).

``ALL_LOOPS`` holds one :class:`LoopSpec` per loop: stock asyncio first (the reference), then one
per pyloop phase, in the order ``pyloop.phases()`` gives them. Both ``conftest.py`` (for the
pytest tests) and ``tests/cpython`` (which builds one unittest class per loop at import time)
read it from here.

If ``import pyloop`` fails, the pyloop entries are still there, under the phase tags of
``FALLBACK_PHASES``, with ``error`` set: every test on them then fails with that message, so a
missing or broken extension is never mistaken for a green run.

``PYLOOP_TEST_LOOPS`` (or ``--loops``, see conftest.py) selects loops by id or prefix, comma
separated: ``asyncio``, ``pyloop`` (every phase), ``pyloop-3.1.3``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import socket
import traceback

# The phases the extension is meant to have, used only to name the failing entries when
# it cannot be imported (the real list comes from pyloop.phases()).
FALLBACK_PHASES = ("3.1.1", "3.1.2", "3.1.3", "3.1.4", "3.1.5", "3.2.1", "3.3.1")


class PyloopUnavailable(RuntimeError):
    """Raised by a pyloop entry's factory when the extension could not be imported."""


try:
    import pyloop
except BaseException as exc:  # noqa: BLE001 - any import failure must be reported, not hidden
    pyloop = None
    PYLOOP_ERROR: str | None = (
        "the pyloop extension is not importable, so this test cannot run on it: "
        + "".join(traceback.format_exception_only(type(exc), exc)).strip()
        + " (build it with `maturin develop` into the interpreter running pytest)"
    )
    PHASES: tuple[str, ...] = FALLBACK_PHASES
else:
    PYLOOP_ERROR = None
    PHASES = tuple(pyloop.phases())


@dataclasses.dataclass(frozen=True, eq=False)
class LoopSpec:
    """One loop the suite runs on."""

    id: str  # "asyncio" or "pyloop-<phase>": the pytest param id
    kind: str  # "asyncio" or "pyloop"
    phase: str | None = None
    error: str | None = None

    @property
    def is_pyloop(self) -> bool:
        return self.kind == "pyloop"

    def new_loop(self) -> asyncio.AbstractEventLoop:
        """A new, not running, not current event loop of this kind."""
        if self.error is not None:
            raise PyloopUnavailable(self.error)
        if self.kind == "asyncio":
            # Not asyncio.new_event_loop(): that goes through the current policy, which a
            # test may have replaced (pyloop.install()).
            return asyncio.SelectorEventLoop()
        return pyloop.new_event_loop(phase=self.phase)

    # The spec is the loop factory: asyncio.Runner(loop_factory=spec) works.
    __call__ = new_loop

    @functools.cached_property
    def has_io(self) -> bool:
        """Whether this loop does I/O (sockets, pipes, signals, readers, writers, subprocesses).

        Probed through the public API: a loop that cannot do I/O raises NotImplementedError
        from add_reader (tests/test_not_implemented.py then checks it does so for all of
        it). Stock asyncio does I/O. A phase that has I/O runs CPython's I/O tests."""
        if self.kind == "asyncio":
            return True
        if self.error is not None:
            return False
        loop = self.new_loop()
        a, b = socket.socketpair()
        try:
            loop.add_reader(a.fileno(), lambda: None)
        except NotImplementedError:
            return False
        else:
            loop.remove_reader(a.fileno())
            return True
        finally:
            loop.close()
            a.close()
            b.close()

    @property
    def ident(self) -> str:
        """The id as a Python identifier, for generated class names."""
        return self.id.replace("-", "_").replace(".", "_")


ALL_LOOPS: tuple[LoopSpec, ...] = (LoopSpec("asyncio", "asyncio"),) + tuple(
    LoopSpec(f"pyloop-{phase}", "pyloop", phase, PYLOOP_ERROR) for phase in PHASES
)


def selected(spec: LoopSpec, selection: str | None) -> bool:
    """Whether ``spec`` is in a comma-separated selection of ids or id prefixes."""
    if not selection:
        return True
    wanted = [s.strip() for s in selection.split(",") if s.strip()]
    return any(spec.id == s or spec.id.startswith(s) for s in wanted)


PYLOOP_LOOPS: tuple[LoopSpec, ...] = tuple(spec for spec in ALL_LOOPS if spec.is_pyloop)
