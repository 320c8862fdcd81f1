"""CPython 3.11's test_events mixins, run on stock asyncio and on every pyloop phase.

The tests are CPython's (``test.test_asyncio.test_events``), run unmodified through
subclassing, as test_events.SelectEventLoopTests does (see tests/cpython/harness.py for the
full list of what the subclasses change). Here:

- ``EventLoopTestsMixin`` and ``SubprocessTestsMixin`` with ``test_utils.TestCase``, the loop
  from ``create_event_loop()``;
- not ``UnixEventLoopTestsMixin``: it attaches a SafeChildWatcher, which needs
  ``add_signal_handler``; the subprocess tests use the policy's default child watcher
  (ThreadedChildWatcher) instead, on every loop.
Skips: tests/cpython/skips.py.
"""

from test.test_asyncio import test_events

from tests.cpython.harness import CreateEventLoop, build, test_utils


class EventLoopTests(
    test_events.EventLoopTestsMixin, test_events.SubprocessTestsMixin, test_utils.TestCase
):
    """What test_events.SelectEventLoopTests is made of, minus its loop and child watcher."""

    __test__ = False  # only the per-loop subclasses run


CLASSES = [EventLoopTests]
build(globals(), CreateEventLoop, CLASSES)
