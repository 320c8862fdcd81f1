"""The soak command (benchmarks/soak/soak.py) at its ``--quick`` size, on stock asyncio and
every phase: it runs, and its invariants hold (every cross-thread callback exactly once and in
order per thread, RSS and descriptors flat; see its docstring). The full size is run on demand
(benchmarks/soak/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import REPO_ROOT


def test_soak_quick(loop_spec, tmp_path):
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/soak/soak.py",
            "--quick",
            "--loop",
            loop_spec.id,
            "--json",
            str(out),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    work = results["workloads"]
    assert work["threadsafe"]["callbacks"] == 16 * 10_000
    assert work["threadsafe"]["in_order"] is True
    assert work["call_soon"]["callbacks"] > 9_000
    if loop_spec.has_io:
        assert work["connections"]["connections"] == 200
    for name, w in work.items():
        assert w["flat_and_correct"], (name, w.get("problems"))
