"""CPython 3.11 asyncio test classes that make their loop with ``asyncio.new_event_loop()``,
run on stock asyncio and on every pyloop phase.

The tests are CPython's, run unmodified through subclassing: each subclass sets an
event-loop policy whose ``new_event_loop()`` returns the loop under test for the duration of
the test (tests/cpython/harness.py says exactly what changes). Chosen because their loop comes
from ``asyncio.new_event_loop()`` (checked in their source):

- test_tasks: RunCoroutineThreadsafeTests, SleepTests, CompatibilityTests,
  PyCurrentLoopTests, CCurrentLoopTests, CTask_Future_Tests;
- test_base_events: RunningLoopTests.

Not included: test_tasks' BaseTaskTests and GatherTestsBase and test_futures' classes (they
run on test_utils.TestLoop, a virtual-clock BaseEventLoop, not on a loop we can supply);
test_events' GetEventLoopTestsMixin (it attaches a SafeChildWatcher: needs signals, issue 4);
test_runners and test_pep492 (they use mocked BaseEventLoops). Skips: tests/cpython/skips.py.
"""

from test.test_asyncio import test_base_events, test_tasks

from tests.cpython.harness import PolicyDuringTest, build

CLASSES = [
    test_tasks.RunCoroutineThreadsafeTests,
    test_tasks.SleepTests,
    test_tasks.CompatibilityTests,
    test_tasks.PyCurrentLoopTests,
    test_tasks.CTask_Future_Tests,
    test_base_events.RunningLoopTests,
]
if hasattr(test_tasks, "CCurrentLoopTests"):  # only with the C _asyncio module
    CLASSES.append(test_tasks.CCurrentLoopTests)

build(globals(), PolicyDuringTest, CLASSES)
