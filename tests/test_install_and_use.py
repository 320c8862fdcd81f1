"""The README's "Install and use", against the development build: ``tests/wheels/smoke.py``,
one test per check (asyncio.run with loop_factory, Runner, install(), uvicorn with
``--loop pyloop:new_event_loop``, uvicorn ``--workers 2``, gunicorn with
``pyloop.uvicorn_worker.UvicornWorker``). ``scripts/wheels.sh`` runs the same script in a fresh
venv per Python against each built wheel (``scripts/test.sh wheels``).

PyLoop's own packaging, not a loop's behaviour: these run on the default phase only, in
subprocesses (each server check starts its server as a process).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.pyloop_only

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "tests" / "wheels" / "smoke.py"
CHECKS = [
    "version",
    "metadata",
    "readme",
    "asyncio_run",
    "runner",
    "install",
    "uvicorn",
    "uvicorn_workers",
    "gunicorn_workers",
]


@pytest.mark.parametrize("check", CHECKS)
def test_smoke_check(check: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SMOKE), check],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{check} ok" in proc.stdout


def test_smoke_lists_these_checks() -> None:
    proc = subprocess.run(
        [sys.executable, str(SMOKE), "no-such-check"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "expected some of " + ", ".join(CHECKS) in proc.stderr


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"([A-Za-z0-9_.-]+)==([^\s#]+)", line)
        if m:
            pins[m[1].lower().replace("_", "-")] = m[2]
    return pins


def test_wheel_smoke_pins_agree_with_the_suite() -> None:
    """tests/wheels/requirements.txt pins the same versions as tests/requirements.txt."""
    wheel_pins = _pins(REPO / "tests" / "wheels" / "requirements.txt")
    suite_pins = _pins(REPO / "tests" / "requirements.txt")
    assert wheel_pins, "no pins read"
    assert {k: suite_pins.get(k) for k in wheel_pins} == wheel_pins
