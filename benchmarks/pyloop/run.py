#!/usr/bin/env python3
"""Every Python-level benchmark (bench_event_loop.py's scenarios and bench_scaling.py's sweep)
in one process, into one results file:

    python benchmarks/pyloop/run.py --quick   # -> benchmarks/results/quick/python.json (~1 min)
    python benchmarks/pyloop/run.py --full    # -> benchmarks/results/python.json (published)
    python benchmarks/pyloop/run.py --smoke --out /tmp/python.json   # seconds; for the tests

then ``python benchmarks/pyloop/tables.py <json>`` writes the book's tables and plots.
Options as bench_event_loop.py (--loops, --scenarios, --reps, --out).
"""

from __future__ import annotations

from pathlib import Path

import harness
import scenarios

RESULTS = harness.REPO / "benchmarks" / "results"


def default_out(mode: str) -> Path | None:
    if mode == "full":
        return RESULTS / "python.json"
    if mode == "quick":
        return RESULTS / "quick" / "python.json"
    return None


if __name__ == "__main__":
    harness.run_script(scenarios.ALL, prog="run.py", doc=__doc__, default_out=default_out)
