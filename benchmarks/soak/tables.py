#!/usr/bin/env python3
"""The book's table of the committed full soak runs.

    python benchmarks/soak/tables.py benchmarks/soak/results/full-*.json --out book/src/generated

writes ``soak.md``: per workload and loop, the count checked, the time, RSS first / last / max
and descriptors first / last, and whether the run was flat and correct (README.md, "flat").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tablefmt import generated_comment, table  # noqa: E402

SCRIPT = "benchmarks/soak/tables.py"
WHAT = {
    "threadsafe": lambda w: (
        f"{w['threads']} × {w['callbacks'] // w['threads']:,}"
        + (" in order" if w.get("in_order") else "")
    ),
    "call_soon": lambda w: f"{w['callbacks']:,}",
    "connections": lambda w: f"{w['connections']:,}",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    rows = []
    runs = []
    for path in sorted(args.results):
        doc = json.loads(path.read_text())
        rec = doc.get("record", {})
        runs.append(
            f"`{path.as_posix()}`: {doc['loop']}, CPython {doc['python']}, {doc['machine']}, "
            f"commit `{(rec.get('git_commit') or '?')[:7]}`"
        )
        for name, w in doc["workloads"].items():
            if "skipped" in w:
                continue
            rows.append(
                [
                    name,
                    doc["loop"],
                    WHAT.get(name, lambda w: "?")(w),
                    f"{w['seconds']:.1f} s",
                    f"{w['rss_first_mib']:.0f} / {w['rss_last_mib']:.0f} / {w['rss_max_mib']:.0f}",
                    f"{w['fds_first']} / {w['fds_last']}",
                    "yes" if w["flat_and_correct"] else "**no**",
                ]
            )
    text = (
        generated_comment(SCRIPT, "benchmarks/soak/results/full-*.json", "full soak runs")
        + "\n"
        + table(
            ["workload", "loop", "checked", "time", "RSS MiB first/last/max", "fds", "flat"],
            rows,
            align="lllrrrl",
        )
        + "\nRuns: "
        + "; ".join(runs)
        + ". Times are wall clock on a shared machine: compare counts, memory and descriptors, "
        "not seconds.\n"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.md").write_text(text)
    print(f"wrote soak.md to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
