#!/usr/bin/env python3
"""The thread-count sweep: 1, 2, 4, 8 and 16 producer threads for every loop.

The same total of call_soon_threadsafe callbacks split evenly over the producers, on a fresh
loop per count: callbacks/s from the producers' release to the last callback run. These are the
points the Amdahl notebook fits (run.py writes them, with the rest, to
benchmarks/results/python.json; the JSON's "amdahl" block has them as plain lists).

    python benchmarks/pyloop/bench_scaling.py               # quick mode, prints the figures
    python benchmarks/pyloop/bench_scaling.py --quick --out /tmp/scaling.json

Python threads register one at a time under the GIL, so in Python more producers cannot push
faster: what the sweep shows is what each loop's cross-thread path costs as threads are added.
Parallel producers on the queue lock itself are the Rust-level benchmarks' subject (benchmarks/,
book/src/generated/core_*.md).
"""

from __future__ import annotations

import harness
import scenarios

if __name__ == "__main__":
    harness.run_script(scenarios.SCALING, prog="bench_scaling.py", doc=__doc__)
