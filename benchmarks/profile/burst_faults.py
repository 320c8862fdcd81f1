#!/usr/bin/env python3
"""Page faults of a burst: what a queue that fills faster than it drains costs the allocator.

    python benchmarks/profile/burst_faults.py [--n 96000] [--reps 7] [LOOP ...]

For each loop (default: asyncio, uvloop, rloop and two PyLoop phases; names as in
``benchmarks/instr/workloads.py``), a fresh process runs ``reps`` + 1 rounds, each on a new loop:
one producer thread sends N ``call_soon_threadsafe(noop)`` while the loop runs them, as the
single-producer row of the scaling sweep does. The producer holds the GIL for its switch
interval at a time, so the queue builds up to tens of thousands of callbacks between the loop's
turns. The first round is a warm-up; over the others the script reads the process's minor page
faults (``getrusage``) and the time per callback (median of the rounds). A fault is a page the
allocator handed back to the kernel and asked for again (or asked for the first time): the
kernel maps and zeroes it. Prints a Markdown table with the machine, versions and commit.

To compare two builds of PyLoop, run it once with each build first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from queued_bytes import REPO, child_result, versions  # noqa: E402

DEFAULT_LOOPS = ["asyncio", "uvloop", "rloop", "pyloop-3.2.1", "pyloop-3.3.1"]

CHILD = r"""
import json, resource, statistics, sys, threading, time
sys.path.insert(0, {instr!r})
from workloads import new_loop, noop

n = {n}

def one_round() -> float:
    loop = new_loop({name!r})
    go = threading.Event()

    def produce() -> None:
        push = loop.call_soon_threadsafe
        go.wait()
        for _ in range(n):
            push(noop)
        push(loop.stop)

    producer = threading.Thread(target=produce)
    producer.start()
    loop.call_soon(go.set)
    t0 = time.perf_counter_ns()
    loop.run_forever()
    elapsed = time.perf_counter_ns() - t0
    producer.join()
    loop.close()
    return elapsed / n

one_round()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
times = [one_round() for _ in range({reps})]
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
print(json.dumps([faults * 1000 / ({reps} * n), statistics.median(times)]))
"""


def measure(name: str, n: int, reps: int) -> tuple[float, float]:
    """(minor page faults per 1,000 callbacks, median ns per callback) for one loop."""
    code = CHILD.format(instr=str(REPO / "benchmarks" / "instr"), n=n, reps=reps, name=name)
    faults, ns = child_result(name, code)
    return faults, ns


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=96_000, help="callbacks per round")
    parser.add_argument("--reps", type=int, default=7, help="measured rounds (after a warm-up)")
    parser.add_argument("loops", nargs="*", default=DEFAULT_LOOPS)
    args = parser.parse_args(argv)
    print("| loop | page faults per 1,000 callbacks | ns per callback (median) |")
    print("|---|--:|--:|")
    for name in args.loops:
        faults, ns = measure(name, args.n, args.reps)
        print(f"| {name} | {faults:.1f} | {ns:.0f} |")
    print()
    print(
        f"One producer thread, {args.n:,} `call_soon_threadsafe` a round, {args.reps} rounds "
        f"after a warm-up, each on a new loop, one fresh process per loop; {versions()}; "
        f"{platform.machine()}, {platform.system()}. The time is wall clock on a shared "
        "machine: it moves from run to run, the faults much less."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
