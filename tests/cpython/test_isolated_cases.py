"""CPython 3.11's IsolatedAsyncioTestCase-based asyncio tests, run on stock asyncio and on
every pyloop phase.

The tests are CPython's (``test.test_asyncio``: test_locks, test_queues, test_taskgroups,
test_timeouts, test_waitfor, test_threads, test_futures2), run unmodified through
subclassing. ``unittest.IsolatedAsyncioTestCase`` runs each test in an ``asyncio.Runner``
(debug mode on), which asks the event-loop policy for its loop: the subclasses install a
policy whose ``new_event_loop()`` returns the loop under test around that Runner
(tests/cpython/harness.py says exactly what changes). Every class of those modules that
derives from IsolatedAsyncioTestCase is included. Skips: tests/cpython/skips.py.
"""

import unittest

from test.test_asyncio import (
    test_futures2,
    test_locks,
    test_queues,
    test_taskgroups,
    test_threads,
    test_timeouts,
    test_waitfor,
)

from tests.cpython.harness import PolicyAroundRunner, build

MODULES = [
    test_locks,
    test_queues,
    test_taskgroups,
    test_timeouts,
    test_waitfor,
    test_threads,
    test_futures2,
]

CLASSES = [
    obj
    for module in MODULES
    for obj in vars(module).values()
    if isinstance(obj, type)
    and issubclass(obj, unittest.IsolatedAsyncioTestCase)
    and obj.__module__ == module.__name__
]

build(globals(), PolicyAroundRunner, CLASSES)
