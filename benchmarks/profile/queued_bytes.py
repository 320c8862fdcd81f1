#!/usr/bin/env python3
"""Memory per queued callback: how many bytes each loop holds for a callback that waits to run.

    python benchmarks/profile/queued_bytes.py [--n 200000] [LOOP ...]

For each loop (default: asyncio, uvloop, rloop and two PyLoop phases; names as in
``benchmarks/instr/workloads.py``), a fresh process queues N ``call_soon(noop)`` from the loop's
thread, then N ``call_soon_threadsafe(noop)`` from another thread, without running any, and
reports the growth of its resident memory divided by N for each: the handle, the copied context
(asyncio's semantics; rloop does not copy one for ``call_soon_threadsafe``) and the queue's slot,
as the allocator lays them out. A queue that fills faster than it drains touches this much new
memory per callback, which instruction counts do not show. Prints a Markdown table with the
machine, versions and commit.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_LOOPS = ["asyncio", "uvloop", "rloop", "pyloop-3.2.1", "pyloop-3.3.1"]

CHILD = r"""
import json, sys, threading
sys.path.insert(0, {instr!r})
from workloads import new_loop, noop

def resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

n = {n}
loop = new_loop({name!r})
before = resident()
for _ in range(n):
    loop.call_soon(noop)
same_thread = resident()

def produce() -> None:
    push = loop.call_soon_threadsafe
    for _ in range(n):
        push(noop)

producer = threading.Thread(target=produce)
producer.start()
producer.join()
other_thread = resident()
loop.call_soon(loop.stop)
loop.run_forever()
loop.close()
print(json.dumps([(same_thread - before) / n, (other_thread - same_thread) / n]))
"""


def child_result(name: str, code: str):
    """What a fresh interpreter running ``code`` for loop ``name`` printed last, as JSON."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{name}: {proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(name: str, n: int) -> tuple[float, float]:
    """(bytes per callback queued with call_soon, with call_soon_threadsafe) for one loop."""
    code = CHILD.format(instr=str(REPO / "benchmarks" / "instr"), n=n, name=name)
    same, other = child_result(name, code)
    return same, other


def git(*args: str) -> str:
    """The output of a git command in the repository (empty if it fails)."""
    proc = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    return proc.stdout.strip()


def versions() -> str:
    """The versions of the peers and the commit, for the note under the table."""
    found = []
    for module in ("uvloop", "rloop"):
        try:
            found.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            found.append(f"{module} not installed")
    commit = git("rev-parse", "--short=10", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return (
        f"CPython {platform.python_version()}, {', '.join(found)}, "
        f"commit `{commit or 'unknown'}`{' with local changes' if dirty else ''}"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="callbacks queued per call")
    parser.add_argument("loops", nargs="*", default=DEFAULT_LOOPS)
    args = parser.parse_args(argv)
    print("| loop | `call_soon`, bytes per queued callback | `call_soon_threadsafe` |")
    print("|---|--:|--:|")
    for name in args.loops:
        same, other = measure(name, args.n)
        print(f"| {name} | {same:.0f} | {other:.0f} |")
    print()
    print(
        f"Growth of resident memory over {args.n:,} queued callbacks, one fresh process per "
        f"loop; {versions()}; {platform.machine()}, {platform.system()}."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
