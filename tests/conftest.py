"""Fixtures of the conformance suite: one test, every loop.

``loop_spec`` / ``loop_factory`` are parametrised over ``tests.loops.ALL_LOOPS``: ids ``asyncio``
(the reference every test must pass on) and ``pyloop-<phase>`` for each tag of
``pyloop.phases()``. If the extension does not import, the pyloop ids are still generated and
every test on them fails with the import error: CI must notice a missing extension.

``loop`` gives a fresh loop whose exception handler records every call; at teardown the test
fails if the handler was called and the test did not take the calls (``exc_handler.take()``),
if tasks were left pending, if the loop is still running, or if it left the running-loop slot
or the async-generator hooks changed. Then the loop is shut down and closed.

Selecting loops: ``--loops asyncio``, ``--loops pyloop`` (all phases), ``--loops pyloop-3.1.3``
(comma-separated ids or id prefixes; default from ``$PYLOOP_TEST_LOOPS``). ``-k asyncio`` works
too: no test name contains the word.

Hang protection (pytest-timeout may be absent): each of a test's setup, call and teardown gets
``--test-timeout`` seconds (default 60, or ``$PYLOOP_TEST_TIMEOUT``). Past it, a SIGALRM raises
``TestTimeout`` in the main thread; it derives from SystemExit so that asyncio lets it out of a
callback or a task (it routes every other exception to the exception handler), and pytest
reports the test as failed. A loop stuck in native code never returns to the interpreter to see
that signal, so faulthandler's watchdog thread (it needs no GIL) dumps every thread's stack to
the real stderr and ends the process 30 s later. When pytest-timeout is installed and given a
timeout (``--timeout``), it is used instead.

Accounting (autouse, every test on every loop, tests/cpython included): after the test and its
fixtures, nothing it created may still be alive: no file descriptor, thread, event loop or
transport, and no ``pyo3_runtime.PanicException`` may have been seen anywhere, nor a Rust panic
message printed to the test's stderr. ``tests/accounting.py`` says how, what it costs and how a
test that legitimately keeps something says so (``@pytest.mark.keeps``).
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import os
import signal
import sys
import traceback
import weakref

import pytest

from tests import accounting
from tests.loops import ALL_LOOPS, PYLOOP_ERROR, PYLOOP_LOOPS, LoopSpec, pyloop, selected

HARD_TIMEOUT_GRACE = 30.0


# --- options, header, selection -----------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pyloop", "PyLoop conformance suite")
    group.addoption(
        "--loops",
        default=os.environ.get("PYLOOP_TEST_LOOPS", ""),
        help="comma-separated loop ids or prefixes to run on: asyncio, pyloop, pyloop-3.1.3 "
        "(default: all; env PYLOOP_TEST_LOOPS)",
    )
    group.addoption(
        "--test-timeout",
        type=float,
        default=float(os.environ.get("PYLOOP_TEST_TIMEOUT", "60")),
        help="seconds allowed to each test's setup, call and teardown (0: no limit; "
        "env PYLOOP_TEST_TIMEOUT)",
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    if pyloop is None:
        status = f"NOT IMPORTABLE: {PYLOOP_ERROR}"
    else:
        status = (
            f"{getattr(pyloop, '__version__', '?')} from {os.path.dirname(pyloop.__file__)}, "
            f"phases {list(pyloop.phases())}, default {pyloop.DEFAULT_PHASE}"
        )
    ids = [s.id for s in ALL_LOOPS if selected(s, config.getoption("--loops"))]
    debug = os.environ.get("PYTHONASYNCIODEBUG", "")
    return [f"pyloop: {status}", f"loops: {ids}; PYTHONASYNCIODEBUG={debug!r}"]


def _item_loop(item: pytest.Item) -> LoopSpec | None:
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        for name in ("loop_spec", "pyloop_spec", "io_loop_spec"):
            if name in callspec.params:
                return callspec.params[name]
    cls = getattr(item, "cls", None)
    return getattr(cls, "loop_spec", None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    selection = config.getoption("--loops")
    if not selection:
        return
    any_pyloop = any(selected(spec, selection) for spec in PYLOOP_LOOPS)
    keep, drop = [], []
    for item in items:
        spec = _item_loop(item)
        if spec is not None:
            wanted = selected(spec, selection)
        else:
            wanted = any_pyloop or item.get_closest_marker("pyloop_only") is None
        (keep if wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# --- per-phase timeout --------------------------------------------------------------------


class TestTimeout(SystemExit):
    """A test phase ran past --test-timeout (see the module docstring for why SystemExit)."""

    __test__ = False  # not a test class


_hard_timeout_fd: int | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _hard_timeout_fd
    config.addinivalue_line(
        "markers",
        "keeps(kind, reason): the test legitimately leaves 'threads', 'fds' or 'objects' "
        "alive; the accounting fixture does not count them (tests/accounting.py)",
    )
    # A copy of the real stderr, for the hard-timeout dump: during a test, fd 2 is pytest's
    # capture file, which is lost when the process is ended.
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        with capman.global_and_fixture_disabled():
            _hard_timeout_fd = os.dup(2)
    else:
        _hard_timeout_fd = os.dup(2)


def _limit(config: pytest.Config) -> float:
    if getattr(config.option, "timeout", None):  # pytest-timeout is installed and was given one
        return 0.0
    return config.getoption("--test-timeout")


def _on_alarm(signum, frame):
    stack = [
        f
        for f in traceback.extract_stack(frame)
        if "/_pytest/" not in f.filename and "/pluggy/" not in f.filename
    ]
    raise TestTimeout(
        "test timed out (--test-timeout); stack at the timeout:\n"
        + "".join(traceback.format_list(stack))
    )


class _Deadline:
    def __init__(self, item: pytest.Item, phase: str) -> None:
        self.limit = _limit(item.config)
        self.where = f"{item.nodeid} ({phase})"

    def __enter__(self):
        if self.limit > 0:
            signal.signal(signal.SIGALRM, _on_alarm)
            signal.setitimer(signal.ITIMER_REAL, self.limit)
            faulthandler.dump_traceback_later(
                self.limit + HARD_TIMEOUT_GRACE,
                exit=True,
                file=_hard_timeout_fd if _hard_timeout_fd is not None else sys.__stderr__,
            )
        return self

    def __exit__(self, *exc):
        if self.limit > 0:
            signal.setitimer(signal.ITIMER_REAL, 0)
            faulthandler.cancel_dump_traceback_later()
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
        return False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    with _Deadline(item, "setup"):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    with _Deadline(item, "call"):
        return (yield)


@pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost: the accounting runs last
def pytest_runtest_teardown(item, nextitem):
    with _Deadline(item, "teardown"):
        result = yield
        _account(item)
        return result


# --- accounting ---------------------------------------------------------------------------


def pytest_sessionstart(session: pytest.Session) -> None:
    accounting.install_panic_hooks()


def _allowed_kinds(item: pytest.Item) -> set[str]:
    allowed = set()
    for mark in item.iter_markers("keeps"):
        kind = mark.args[0] if mark.args else None
        if kind not in accounting.ALLOWED_KINDS or not mark.kwargs.get("reason"):
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.keeps needs one of {accounting.ALLOWED_KINDS} "
                "and a reason="
            )
        allowed.add(kind)
    return allowed


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Records each phase's report on the item (the accounting skips a test whose call
    failed: its traceback keeps its locals alive), and fails a phase whose captured stderr
    shows a Rust panic (pyo3 turns a panic into a PanicException, which a test or the loop may
    have swallowed; Rust's panic hook printed it first)."""
    report = yield
    setattr(item, f"_pyloop_report_{report.when}", report)
    err = "".join(
        content for name, content in report.sections if name == f"Captured stderr {report.when}"
    )
    if accounting.RUST_PANIC_MARK in err and "thread '" in err and report.outcome != "failed":
        report.outcome = "failed"
        report.longrepr = (
            f"a Rust panic was printed to stderr during {report.when} "
            "(see 'Captured stderr'): no panic may happen, caught or not"
        )
    return report


@pytest.fixture(autouse=True)
def _accounting(request):
    """Takes the snapshot of tests/accounting.py before the test's other fixtures; the check
    runs in ``pytest_runtest_teardown`` once every fixture and the unittest case are gone
    (until then pytest itself holds the fixtures' values)."""
    request.node._pyloop_snapshot = accounting.Snapshot(_allowed_kinds(request.node))
    instance = request.instance
    request.node._pyloop_instance = weakref.ref(instance) if instance is not None else None
    yield


def _account(item: pytest.Item) -> None:
    """Fails the teardown if the test left anything behind (tests/accounting.py)."""
    snapshot = getattr(item, "_pyloop_snapshot", None)
    if snapshot is None:
        return
    del item._pyloop_snapshot
    call = getattr(item, "_pyloop_report_call", None)
    if call is not None and call.failed:
        return  # the failure's traceback holds the test's locals: counting them is noise
    funcargs = getattr(item, "funcargs", None)
    if funcargs:  # pytest drops them right after teardown; the check must not see them
        for name in funcargs:
            funcargs[name] = None
    # The test's class instance (a unittest.TestCase's, or a test class's) was made at
    # collection, so it is frozen (tests/accounting.py): a cycle through it, which the
    # collector would otherwise free, lives on with what its attributes hold (self.loop).
    # Its test is over: let go of what the test put there (unittest's own attributes start
    # with "_" and its __del__ reads some of them).
    instance = item._pyloop_instance() if item._pyloop_instance is not None else None
    if instance is not None:
        attrs = vars(instance)
        for name in [n for n in attrs if not n.startswith("_")]:
            del attrs[name]
    del instance
    problems = snapshot.problems()
    if problems:
        pytest.fail("left behind by the test:\n" + "\n".join(problems), pytrace=False)


# --- loops --------------------------------------------------------------------------------


@pytest.fixture(params=ALL_LOOPS, ids=[s.id for s in ALL_LOOPS])
def loop_spec(request) -> LoopSpec:
    """The loop under test: stock asyncio or one pyloop phase."""
    spec = request.param
    if spec.error is not None:
        pytest.fail(spec.error, pytrace=False)
    return spec


@pytest.fixture(params=PYLOOP_LOOPS, ids=[s.id for s in PYLOOP_LOOPS])
def pyloop_spec(request) -> LoopSpec:
    """A pyloop phase only (for tests of pyloop's own API)."""
    spec = request.param
    if spec.error is not None:
        pytest.fail(spec.error, pytrace=False)
    return spec


@pytest.fixture
def loop_factory(loop_spec):
    """A zero-argument callable returning a new loop of the kind under test.

    Loops made with it are the test's to close (see ``tests.support.closing``)."""
    return loop_spec.new_loop


class HandlerCalls:
    """An exception handler that records ``(loop, context)`` calls.

    A test that expects calls requests the ``exc_handler`` fixture and consumes them with
    ``take()``; any call not taken by the end of the test fails it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.calls: list[dict] = []
        self.loops: list[object] = []
        self._taken = 0

    def __call__(self, loop, context) -> None:
        self.loops.append(loop)
        self.calls.append(context)
        accounting.PANICS.note("passed to the exception handler", context.get("exception"))

    def take(self) -> list[dict]:
        """The contexts recorded since the last take(), marked as expected."""
        new = self.calls[self._taken :]
        self._taken = len(self.calls)
        return new

    def untaken(self) -> list[dict]:
        return self.calls[self._taken :]


def _describe_calls(calls: list[dict]) -> str:
    out = []
    for ctx in calls:
        exc = ctx.get("exception")
        line = f"- message={ctx.get('message')!r} keys={sorted(ctx)}"
        if exc is not None:
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            line += "\n" + tb
        out.append(line)
    return "\n".join(out)


@pytest.fixture
def _checked_loop(loop_spec):
    """A new loop of the kind under test and its recording exception handler; the checks of
    the module docstring at teardown, then the loop is shut down and closed."""
    hooks_before = sys.get_asyncgen_hooks()
    lp = loop_spec.new_loop()
    recorder = HandlerCalls(lp)
    lp.set_exception_handler(recorder)
    yield lp, recorder
    problems: list[str] = []
    if lp.is_running():
        problems.append("the loop is still running at teardown")
    else:
        leftover = list(asyncio.all_tasks(lp))
        if leftover:
            problems.append(f"{len(leftover)} task(s) left pending: {leftover!r}")
            for task in leftover:
                task.cancel()
        if not lp.is_closed():
            try:
                if leftover:
                    lp.run_until_complete(asyncio.wait(leftover, timeout=5))
                lp.run_until_complete(lp.shutdown_asyncgens())
                lp.run_until_complete(lp.shutdown_default_executor())
            finally:
                lp.close()
    running = asyncio.events._get_running_loop()
    if running is not None:
        problems.append(f"a running loop is still set after the test: {running!r}")
        asyncio.events._set_running_loop(None)
    if sys.get_asyncgen_hooks() != hooks_before:
        problems.append(f"async generator hooks not restored: {sys.get_asyncgen_hooks()}")
        sys.set_asyncgen_hooks(*hooks_before)
    gc.collect()  # "Task was destroyed but it is pending", "exception never retrieved", ...
    if any(lp_arg is not lp for lp_arg in recorder.loops):
        problems.append("the exception handler was called with another loop as first argument")
    untaken = recorder.untaken()
    if untaken:
        problems.append(
            f"the exception handler was called {len(untaken)} time(s) unexpectedly:\n"
            + _describe_calls(untaken)
        )
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def loop(_checked_loop) -> asyncio.AbstractEventLoop:
    """A new loop of the kind under test, not running, not current (see the module docstring)."""
    return _checked_loop[0]


@pytest.fixture
def gc_disabled():
    """The cyclic collector off for the test: what it frees, reference counting alone freed."""
    was = gc.isenabled()
    gc.disable()
    yield
    if was:
        gc.enable()


@pytest.fixture
def exc_handler(_checked_loop) -> HandlerCalls:
    """The recorder installed as ``loop``'s exception handler; the test must ``take()`` the
    calls it expects."""
    return _checked_loop[1]
