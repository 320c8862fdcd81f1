#!/usr/bin/env python3
"""Instructions per item: each workload on each loop under ``valgrind --tool=callgrind``.

    python benchmarks/instr/run.py                    # quick: N = 5,000, into
                                                      #   benchmarks/results/quick/instr.json
    python benchmarks/instr/run.py --full --out benchmarks/results/instr.json
    python benchmarks/instr/run.py --loops pyloop,rloop --workloads call_soon

For each (loop, workload) it runs ``workloads.py`` in its own process at sizes N and 2N and
reports (I(2N) - I(N)) / N, the instructions one more item costs: start-up, imports and the
loop's creation cancel out. Instruction counts do not move with the machine's load, so unlike
wall-clock figures they can be compared across commits on a shared machine; they say nothing
about cache misses, branch mispredictions or system calls (valgrind counts user-space
instructions only) and cannot measure cross-thread work. Every measurement is made ``--reps``
times (default 2) to show that it repeats; the JSON keeps each.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "benchmarks" / "pyloop"))

import harness  # noqa: E402  (the Python-level benchmarks' machine record)
import workloads  # noqa: E402

LOOPS = ("asyncio", "uvloop", "rloop", "pyloop")
SIZES = {"quick": 5_000, "full": 20_000}
TOTAL = re.compile(r"^summary:\s+(\d+)", re.MULTILINE)


def instructions(loop: str, workload: str, n: int) -> int:
    """Instructions callgrind counts for one run of ``workload`` at size ``n``."""
    with tempfile.TemporaryDirectory(prefix="pyloop-instr-") as tmp:
        out = Path(tmp) / "callgrind.out"
        env = dict(os.environ, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            str(HERE / "workloads.py"),
            loop,
            workload,
            str(n),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
        match = TOTAL.search(out.read_text(errors="replace"))
        if not match:
            raise RuntimeError(f"no instruction total in callgrind's output for {loop} {workload}")
        return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="N = 5,000 (the default)")
    mode.add_argument("--full", action="store_true", help="N = 20,000")
    parser.add_argument("--n", type=int, help="the size N (overrides the mode)")
    parser.add_argument("--reps", type=int, default=2, help="measurements of each (default 2)")
    parser.add_argument("--loops", default=",".join(LOOPS), help="comma-separated loops")
    parser.add_argument(
        "--workloads", default=",".join(workloads.WORKLOADS), help="comma-separated workloads"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="results file (default benchmarks/results/quick/instr.json; the committed "
        "benchmarks/results/instr.json is written only when named here)",
    )
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    mode_name = "full" if args.full else "quick"
    n = args.n or SIZES[mode_name]
    loops = [s for s in args.loops.split(",") if s]
    names = [s for s in args.workloads.split(",") if s]
    unknown = [w for w in names if w not in workloads.ALL_WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; known: {', '.join(workloads.ALL_WORKLOADS)}")
    out = args.out or REPO / "benchmarks" / "results" / "quick" / "instr.json"

    results: dict[str, dict[str, dict]] = {}
    for workload in names:
        results[workload] = {}
        for loop in loops:
            per_item = []
            for _ in range(args.reps):
                small = instructions(loop, workload, n)
                large = instructions(loop, workload, 2 * n)
                per_item.append({"n": small, "2n": large, "per_item": (large - small) / n})
            values = [r["per_item"] for r in per_item]
            results[workload][loop] = {
                "per_item": sorted(values)[len(values) // 2],
                "spread": (max(values) - min(values)) / max(min(values), 1.0),
                "runs": per_item,
            }
            print(
                f"{workload:18} {loop:10} {results[workload][loop]['per_item']:9.0f} instr/item"
                f"  (spread {results[workload][loop]['spread']:.2%})",
                flush=True,
            )
    machine = harness.machine_record()
    machine["valgrind"] = subprocess.run(
        ["valgrind", "--version"], capture_output=True, text=True
    ).stdout.strip()
    doc = {
        "schema": 1,
        "kind": "instructions",
        "mode": mode_name,
        "n": n,
        "reps": args.reps,
        "machine": machine,
        "workloads": {w: (workloads.ALL_WORKLOADS[w].__doc__ or "").strip() for w in names},
        "results": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
