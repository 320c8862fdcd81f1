#!/usr/bin/env python3
"""Every Python-level benchmark (bench_event_loop.py's scenarios and bench_scaling.py's sweep)
in one process, into one results file:

    python benchmarks/pyloop/run.py           # quick (the default): about a minute
                                              # -> benchmarks/results/quick/python.json
    python benchmarks/pyloop/run.py --full --out benchmarks/results/python.json
                                              # the published run (~10 min); --full writes
                                              # only where --out says
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
    """Where a run writes when ``--out`` is not given: quick runs into the ignored
    ``results/quick/``; a full run only where it is told, so that it never replaces the
    committed results by accident."""
    if mode == "full":
        raise SystemExit(
            "run.py --full writes only where --out says: --out benchmarks/results/python.json "
            "replaces the published run (commit it with its tables), any other path does not"
        )
    if mode == "quick":
        return RESULTS / "quick" / "python.json"
    return None


if __name__ == "__main__":
    harness.run_script(scenarios.ALL, prog="run.py", doc=__doc__, default_out=default_out)
