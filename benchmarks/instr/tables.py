#!/usr/bin/env python3
"""The book's table of instructions per item, from a results file of ``run.py``.

    python benchmarks/instr/tables.py benchmarks/results/instr.json --out book/src/generated

writes ``instr.md`` (instructions per item, each loop against rloop and uvloop) and
``instr_facts.md`` (single figures the prose includes by anchor).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tablefmt import DASH, generated_comment, table  # noqa: E402

SCRIPT = "benchmarks/instr/tables.py"
ORDER = ("asyncio", "uvloop", "rloop", "pyloop")
LABELS = {
    "call_soon": "`call_soon` ×N, then run",
    "call_soon_steady": "each callback schedules the next",
    "pingpong": "Future ping-pong, per round trip",
    "future_roundtrip": "future set by `call_soon`, awaited",
    "gather": "`gather`, per coroutine",
    "timers": "timers due, set out of order",
    "sock_echo": "1 KB socket round trip, both ends in the loop",
    "protocol_echo": "1 KB protocol round trip, both ends in the loop",
}


def _run_line(doc: dict, source: str) -> str:
    m = doc["machine"]
    times = "once" if doc["reps"] == 1 else f"{doc['reps']} times"
    return (
        f"Run: `{source}`, {doc['mode']} mode, N = {doc['n']:,}, commit "
        f"`{(m.get('git_commit') or '?')[:7]}`{' (dirty)' if m.get('git_dirty_measured') else ''}; "
        f"CPython {m.get('python')}, {m.get('valgrind')}; uvloop {m['peers']['uvloop']}, "
        f"rloop {m['peers']['rloop']}. Instructions per item, (I(2N) − I(N)) / N, each loop "
        f"in its own process; each figure measured {times} (largest spread "
        f"{_largest_spread(doc):.2%})."
    )


def _largest_spread(doc: dict) -> float:
    return max(
        (r["spread"] for per_loop in doc["results"].values() for r in per_loop.values()),
        default=0.0,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    doc = json.loads(args.results.read_text())
    source = str(args.results).replace("\\", "/")
    loops = [lp for lp in ORDER if all(lp in r for r in doc["results"].values())]
    rows = []
    facts = []
    for workload, per_loop in doc["results"].items():
        row = [LABELS.get(workload, workload)]
        for lp in loops:
            row.append(f"{per_loop[lp]['per_item']:,.0f}")
        mine = per_loop.get("pyloop", {}).get("per_item")
        for peer in ("rloop", "uvloop"):
            theirs = per_loop.get(peer, {}).get("per_item")
            ratio = theirs and mine and mine / theirs
            row.append(f"×{ratio:.2f}" if ratio else DASH)
            if ratio:
                facts.append((f"{workload}_vs_{peer}", f"×{ratio:.2f}"))
        rloop = per_loop.get("rloop", {}).get("per_item")
        if mine and rloop:
            # The line, three quarters of rloop's count, and how far PyLoop is from it.
            line = 0.75 * rloop
            side = "under" if mine <= line else "over"
            facts.append((f"{workload}_three_quarters_of_rloop", f"{line:,.0f}"))
            facts.append((f"{workload}_from_the_line", f"{abs(line - mine):,.0f} {side}"))
        for lp in loops:
            facts.append((f"{workload}_{lp}", f"{per_loop[lp]['per_item']:,.0f}"))
        rows.append(row)
    header = ["workload", *loops, "PyLoop ÷ rloop", "PyLoop ÷ uvloop"]
    text = (
        generated_comment(SCRIPT, source, f"commit {doc['machine'].get('git_commit', '?')[:7]}")
        + "\n"
        + table(header, rows)
        + "\n"
        + _run_line(doc, source)
        + " A ratio below ×1 means PyLoop runs fewer instructions.\n"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "instr.md").write_text(text)
    fact_text = generated_comment(SCRIPT, source, "facts") + "".join(
        f"<!-- ANCHOR: {k} -->\n{v}\n<!-- ANCHOR_END: {k} -->\n" for k, v in facts
    )
    (args.out / "instr_facts.md").write_text(fact_text)
    print(f"wrote instr.md and instr_facts.md to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
