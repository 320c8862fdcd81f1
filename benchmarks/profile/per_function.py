#!/usr/bin/env python3
"""Instructions per item of one workload on one loop, function by function, under callgrind.

    python benchmarks/profile/per_function.py LOOP WORKLOAD N [--top 40] [--match TEXT]

Runs ``benchmarks/instr/workloads.py LOOP WORKLOAD`` under ``valgrind --tool=callgrind`` at
sizes N and 2N, each in its own process, and prints, for each function, its own (exclusive)
instructions at 2N minus those at N, divided by N: what one item costs in that function, with
start-up and imports cancelled out. The total is the figure ``benchmarks/instr/run.py``
reports. ``--match`` keeps the functions whose name contains TEXT (``pyloop::`` for the loop's
own Rust code), and prints their sum. Build with ``CARGO_PROFILE_RELEASE_DEBUG=line-tables-only``
for Rust function names; a library without symbols shows as addresses.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKLOADS = REPO / "benchmarks" / "instr" / "workloads.py"


def exclusive_costs(path: Path) -> collections.Counter:
    """Exclusive instructions per function of a callgrind output file (compressed names)."""
    names: dict[str, str] = {}
    costs: collections.Counter = collections.Counter()
    function = None
    after_call = False
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("fn=", "cfn=")):
            found = re.match(r"c?fn=\((\d+)\)(?: (.*))?$", line)
            if found and found.group(2):
                names[found.group(1)] = found.group(2)
            if line.startswith("fn="):
                function = names.get(found.group(1), found.group(1)) if found else line[3:]
                after_call = False
        elif line.startswith("calls="):
            after_call = True  # the next cost line is the call's inclusive cost
        elif line[:1].isdigit() or line[:1] in "+-*":
            fields = line.split()
            if after_call:
                after_call = False
            elif len(fields) >= 2 and function is not None:
                costs[function] += int(fields[1])
    return costs


def profile(loop: str, workload: str, n: int, out_dir: Path) -> collections.Counter:
    env = dict(os.environ, PYTHONHASHSEED="0")
    runs = []
    for size in (n, 2 * n):
        out = out_dir / f"callgrind.{size}"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                str(WORKLOADS),
                loop,
                workload,
                str(size),
            ],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        runs.append(exclusive_costs(out))
    small, large = runs
    return collections.Counter({k: (large[k] - small[k]) / n for k in set(small) | set(large)})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("loop")
    ap.add_argument("workload")
    ap.add_argument("n", type=int)
    ap.add_argument("--top", type=int, default=40, help="functions to print")
    ap.add_argument("--match", default=None, help="only functions whose name contains this")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        per_item = profile(args.loop, args.workload, args.n, Path(tmp))
    print(f"{args.loop} {args.workload}: {sum(per_item.values()):,.0f} instructions per item")
    shown = [(k, v) for k, v in per_item.items() if args.match is None or args.match in k]
    if args.match is not None:
        print(f"functions matching {args.match!r}: {sum(v for _, v in shown):,.0f}")
    for name, cost in sorted(shown, key=lambda kv: -abs(kv[1]))[: args.top]:
        print(f"{cost:10,.1f}  {name[:140]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
