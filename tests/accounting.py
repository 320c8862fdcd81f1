"""What a test may leave behind: nothing. The accounting behind conftest's autouse fixture.

Every test, on every loop (CPython's mixins under tests/cpython included), is checked after it
and all its fixtures have finished and ``gc.collect()`` has run:

- no file descriptor opened during the test is still open (``/proc/self/fd``; a descriptor is
  identified by number, device and inode, so a number closed and reused counts as new);
- no thread started during the test is still alive (``threading.enumerate()``);
- no event loop (``asyncio.AbstractEventLoop``) and no transport (``asyncio.BaseTransport``,
  and pyloop's native transport classes) created during the test is still alive;
- no ``pyo3_runtime.PanicException`` was seen anywhere: raised out of the test, passed to an
  exception handler (conftest's recorder), logged with its traceback (the ``asyncio`` logger's
  default handler path), passed to ``sys.unraisablehook`` or ``threading.excepthook``, or
  printed by Rust's panic hook to the test's captured stderr (conftest's report hook reads it).

Descriptors and threads get a grace of ``GRACE`` seconds (an executor thread or a child
watcher may still be finishing, as ``tests.io_support.no_fd_leak`` allows); objects none.

Cost. A full ``gc.collect()`` and a ``gc.get_objects()`` scan over the ~50 000 objects a test
process holds cost about 0.1 s: 300 s over the suite. So the fixture freezes the heap
(``gc.freeze()``) when a test starts: everything alive then moves to the permanent
generation, which neither ``gc.collect()`` nor ``gc.get_objects()`` visits. At the end of the
test both see only what the test made, and cost microseconds. What survives a test is frozen
with the next one (after being reported, if it is a loop or transport), so nothing is reported
twice. The price: an object that was alive when a test started is never freed by the cycle
collector afterwards; that is memory only, and a test that needs the collector to free
something it made itself is unaffected.

Allow-list: a test that legitimately keeps something marks itself
``@pytest.mark.keeps("threads" | "fds" | "objects", reason=...)`` (see ``ALLOWED_KINDS``);
the reason is required. Prefer fixing the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sys
import threading
import time
import traceback

try:
    from pyloop import _native as _pyloop_native
except BaseException:  # noqa: BLE001 - conftest reports an unimportable extension itself
    _pyloop_native = None

#: Seconds a descriptor or thread may take to go away after the test.
GRACE = 2.0

#: What ``@pytest.mark.keeps(kind, reason=...)`` may allow.
ALLOWED_KINDS = ("threads", "fds", "objects")

#: The classes whose live instances count as leaked objects: asyncio's loop and transport
#: bases, and whatever native transport classes the extension has (by name, so that a
#: renamed or split class does not break the suite).
TRACKED_TYPES: tuple[type, ...] = (asyncio.AbstractEventLoop, asyncio.BaseTransport) + tuple(
    getattr(_pyloop_native, name)
    for name in ("TcpTransport", "TcpTransportCore")
    if _pyloop_native is not None and isinstance(getattr(_pyloop_native, name, None), type)
)

#: The line Rust's default panic hook prints to stderr for every panic, caught or not.
RUST_PANIC_MARK = "panicked at "


# --- panics ----------------------------------------------------------------------------


def is_panic(exc: BaseException | None) -> bool:
    """True if ``exc``, its cause or context chain, or an exception group member, is a
    ``pyo3_runtime.PanicException`` (a Rust panic turned into a Python exception)."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        for cls in type(e).__mro__:
            if cls.__name__ == "PanicException" and cls.__module__ == "pyo3_runtime":
                return True
        stack += [e.__cause__, e.__context__]
        stack += list(getattr(e, "exceptions", ()))
    return False


class PanicLog:
    """Every PanicException seen by the hooks below, as text, in order."""

    def __init__(self) -> None:
        self.entries: list[str] = []

    def note(self, where: str, exc: BaseException | None) -> None:
        if is_panic(exc):
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            self.entries.append(f"{where}:\n{text}")

    def since(self, mark: int) -> list[str]:
        return self.entries[mark:]


PANICS = PanicLog()


class _PanicLogHandler(logging.Handler):
    """Sees every record logged with a traceback (the default exception handler logs the
    context's exception on the ``asyncio`` logger)."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            PANICS.note(
                f"logged by {record.name!r}: {record.getMessage()[:200]}", record.exc_info[1]
            )


def install_panic_hooks() -> None:
    """Chain the panic log in front of sys.unraisablehook, threading.excepthook and the root
    logger. Called once at session start (after pytest has installed its own hooks)."""
    previous_unraisable = sys.unraisablehook
    previous_thread = threading.excepthook

    def unraisable(unraisable) -> None:
        PANICS.note(f"unraisable in {unraisable.object!r}", unraisable.exc_value)
        previous_unraisable(unraisable)

    def thread_hook(args) -> None:
        PANICS.note(f"uncaught in thread {args.thread!r}", args.exc_value)
        previous_thread(args)

    sys.unraisablehook = unraisable
    threading.excepthook = thread_hook
    logging.getLogger().addHandler(_PanicLogHandler(level=logging.DEBUG))


# --- snapshots -------------------------------------------------------------------------


def open_fd_identities() -> dict[int, tuple[int, int]]:
    """``{fd: (st_dev, st_ino)}`` of every descriptor open now but the standard streams
    (pytest points 0-2 at its capture files and back around each phase)."""
    out = {}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd <= 2:
            continue
        with contextlib.suppress(OSError):
            st = os.fstat(fd)  # the descriptor listdir used is gone by now
            out[fd] = (st.st_dev, st.st_ino)
    return out


def describe_fd(fd: int) -> str:
    try:
        return f"fd {fd} -> {os.readlink(f'/proc/self/fd/{fd}')}"
    except OSError:
        return f"fd {fd} -> ?"


def describe_object(obj: object, ignore: object) -> str:
    """The class and repr of a leaked object, and the types of what still refers to it
    (among the objects made since the freeze; ``ignore``: the list that holds the leaks)."""
    try:
        text = repr(obj)
    except Exception as exc:  # noqa: BLE001 - a broken repr must not hide the leak
        text = f"<repr failed: {exc!r}>"
    referrers = []
    for ref in gc.get_referrers(obj):
        if ref is ignore or (type(ref) is list and ref and ref[0] is obj):
            continue
        kind = type(ref).__name__
        if kind == "frame":
            kind = f"frame of {ref.f_code.co_name}"
        elif kind == "dict":
            kind = f"dict with keys {list(ref)[:6]}"
        referrers.append(kind)
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}: {text[:200]} (referred to by: {referrers[:8]})"


def live_tracked_objects() -> list[object]:
    """Loops and transports the collector sees (everything made since the last freeze)."""
    return [o for o in gc.get_objects() if isinstance(o, TRACKED_TYPES)]


def _close_leaked_loops(objects: list[object]) -> None:
    """Close what leaked, once reported, so that one test's leak does not fail the next."""
    for obj in objects:
        if isinstance(obj, asyncio.AbstractEventLoop):
            with contextlib.suppress(Exception):
                if not obj.is_running() and not obj.is_closed():
                    obj.close()


class Snapshot:
    """What existed when a test started."""

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed
        gc.collect()
        gc.freeze()  # see the module docstring: what exists now is never scanned again
        self.fds = open_fd_identities()
        self.threads = {t for t in threading.enumerate()}
        self.panics = len(PANICS.entries)

    def new_fds(self) -> set[int]:
        now = open_fd_identities()
        return {fd for fd, ident in now.items() if self.fds.get(fd) != ident}

    def new_threads(self) -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t not in self.threads and t.is_alive()]

    def _leftovers(self) -> tuple[list[threading.Thread], set[int], int]:
        gc.collect()
        threads = [] if "threads" in self.allowed else self.new_threads()
        fds = set() if "fds" in self.allowed else self.new_fds()
        objects = 0 if "objects" in self.allowed else len(live_tracked_objects())
        return threads, fds, objects

    def problems(self) -> list[str]:
        """Everything the test left behind, as lines to report (empty: nothing). Waits up
        to ``GRACE`` for what a finishing thread still holds."""
        deadline = time.monotonic() + GRACE
        threads, fds, objects = self._leftovers()
        while (threads or fds or objects) and time.monotonic() < deadline:
            if threads:
                threads[0].join(max(0.0, deadline - time.monotonic()))
            else:
                time.sleep(0.02)
            threads, fds, objects = self._leftovers()
        out: list[str] = []
        if threads:
            out.append(f"{len(threads)} thread(s) started during the test still alive:")
            out += [f"  {t!r}" for t in threads]
        if fds:
            out.append(f"{len(fds)} file descriptor(s) opened during the test still open:")
            out += [f"  {describe_fd(fd)}" for fd in sorted(fds)]
        if objects:
            leaked = live_tracked_objects()
            out.append(
                f"{len(leaked)} event loop(s)/transport(s) created during the test "
                "still alive after gc.collect():"
            )
            out += [f"  {describe_object(o, leaked)}" for o in leaked[:20]]
            _close_leaked_loops(leaked)
            del leaked
        panics = PANICS.since(self.panics)
        if panics:
            out.append(f"{len(panics)} pyo3_runtime.PanicException(s) seen during the test:")
            out += panics
        return out
