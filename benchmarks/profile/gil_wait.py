#!/usr/bin/env python3
"""How long another thread waits for the GIL while a loop runs callbacks that run no bytecode.

    python benchmarks/profile/gil_wait.py [--n 2000000] [LOOP ...]

For each loop (default: asyncio and two PyLoop phases; names as in
``benchmarks/instr/workloads.py``), a fresh process queues N ``call_soon(int)`` (a C function:
no bytecode runs in the callback) and runs them, while another thread sleeps half a
millisecond at a time and notes the longest gap between two of its wake-ups. The interpreter
lets a thread that waited its switch interval (5 ms) take the GIL at the next function entry
or loop jump; a loop whose turn is native code and whose callbacks run no bytecode must make
such a moment itself (``interpreter_turn`` in crates/pyloop/src/event_loop.rs). Prints a
Markdown table with the machine, versions and commit.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from queued_bytes import REPO, child_result, versions  # noqa: E402

DEFAULT_LOOPS = ["asyncio", "pyloop-3.2.1", "pyloop-3.3.1"]

CHILD = r"""
import json, sys, threading, time
sys.path.insert(0, {instr!r})
from workloads import new_loop

loop = new_loop({name!r})
for _ in range({n}):
    loop.call_soon(int)
loop.call_soon(loop.stop)
gaps = []
running = True

def ticker() -> None:
    last = time.perf_counter()
    while running:
        time.sleep(0.0005)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now

thread = threading.Thread(target=ticker)
thread.start()
time.sleep(0.01)
t0 = time.perf_counter()
loop.run_forever()
elapsed = time.perf_counter() - t0
running = False
thread.join()
loop.close()
print(json.dumps([elapsed * 1e3, max(gaps) * 1e3]))
"""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2_000_000, help="callbacks queued")
    parser.add_argument("loops", nargs="*", default=DEFAULT_LOOPS)
    args = parser.parse_args(argv)
    print("| loop | run, ms | another thread's longest wait, ms |")
    print("|---|--:|--:|")
    for name in args.loops:
        code = CHILD.format(instr=str(REPO / "benchmarks" / "instr"), n=args.n, name=name)
        elapsed, longest = child_result(name, code)
        print(f"| {name} | {elapsed:.0f} | {longest:.1f} |")
    print()
    print(
        f"{args.n:,} `call_soon(int)` run by one loop while another thread sleeps 0.5 ms at a "
        f"time, one fresh process per loop; {versions()}; {platform.machine()}, "
        f"{platform.system()}. Wall clock on a shared machine."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
