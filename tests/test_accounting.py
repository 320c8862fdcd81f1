"""The accounting fixture (tests/accounting.py) fails a test that leaves a descriptor, a thread,
a loop or a transport behind, or during which a Rust panic was seen; and only such a test. Run
on tests/accounting_samples.py in a child pytest."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import REPO_ROOT

EXPECTED = {
    "test_clean": "passed",
    "test_leaks_an_fd": "error",
    "test_leaks_a_thread": "error",
    "test_leaks_a_closed_loop": "error",
    "test_leaks_an_open_loop_in_a_cycle_that_gc_frees": "passed",
    "test_a_panic_passed_to_an_exception_handler[asyncio]": "error",
    "test_a_rust_panic_message_on_stderr": "failed",
    "test_allowed_to_keep_an_fd": "passed",
}


@pytest.fixture(scope="module")
def child_run():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-rA",
            "-W",
            "ignore::ResourceWarning",
            "--loops",
            "asyncio",
            "tests/accounting_samples.py",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("name", list(EXPECTED))
def test_accounting_verdicts(child_run, name):
    outcome = EXPECTED[name]
    word = {"passed": "PASSED", "failed": "FAILED", "error": "ERROR"}[outcome]
    line = f"{word} tests/accounting_samples.py::{name}"
    assert any(out.startswith(line) for out in child_run.splitlines()), child_run[-4000:]


def test_accounting_names_what_leaked(child_run):
    assert "fd " in child_run and "/dev/null" in child_run
    assert "leaked-thread" in child_run
    assert "_UnixSelectorEventLoop" in child_run
    assert "PanicException" in child_run
    assert "a Rust panic was printed to stderr" in child_run
