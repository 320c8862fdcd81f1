"""tests/cpython/skips.py stays honest: every key names a CPython test that one of the
tests/cpython modules runs, with a known scope and a reason."""

from tests.cpython import (
    test_events_mixins,
    test_io_modules,
    test_isolated_cases,
    test_loop_cases,
)
from tests.cpython.harness import used_skip_keys
from tests.cpython.skips import ACTIVE

RUN = used_skip_keys(
    test_events_mixins.CLASSES
    + test_isolated_cases.CLASSES
    + test_loop_cases.CLASSES
    + test_io_modules.CLASSES
)


def test_every_skip_names_a_test_that_runs():
    unknown = sorted(set(ACTIVE) - RUN)
    assert unknown == [], "skips.py lists tests that no module here runs"


def test_every_skip_has_a_scope_and_a_reason():
    for key, entry in ACTIVE.items():
        assert entry.scope in ("pyloop-no-io", "pyloop", "all"), key
        assert entry.reason.strip(), key
