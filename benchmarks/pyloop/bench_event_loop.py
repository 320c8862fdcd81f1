#!/usr/bin/env python3
"""PyLoop's event loop against stock asyncio, uvloop and rloop: the 3.1.4 summary's scenarios.

Every PyLoop phase and every peer, in one process, on fresh loops, order rotated per
repetition, warm-up discarded; medians with min and max, ratios paired per repetition.

    python benchmarks/pyloop/bench_event_loop.py            # quick mode, prints the figures
    python benchmarks/pyloop/bench_event_loop.py --quick --out /tmp/el.json
    python benchmarks/pyloop/bench_event_loop.py --scenarios single,wakeup --loops asyncio,3.1.4

The thread-count sweep is bench_scaling.py; run.py runs both into one results file
(benchmarks/results/python.json), from which tables.py writes the book's tables.

Python threads register one at a time under the GIL: the multi-thread figures are each loop's
cross-thread path with producers taking turns. The queue lock under parallel producers is
measured at the Rust level (benchmarks/, book/src/generated/core_*.md).
"""

from __future__ import annotations

import harness
import scenarios

if __name__ == "__main__":
    harness.run_script(scenarios.EVENT_LOOP, prog="bench_event_loop.py", doc=__doc__)
