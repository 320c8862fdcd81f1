#!/usr/bin/env python3
"""Before and after a change at the Rust level: two builds of ``core_scenarios``, run in turn.

    git worktree add /tmp/before REV_BEFORE
    CARGO_TARGET_DIR=/tmp/before/target cargo build --release -p pyloop-benchmarks \\
        --bin core_scenarios --manifest-path /tmp/before/Cargo.toml
    cargo build --release -p pyloop-benchmarks --bin core_scenarios
    python benchmarks/core_compare.py /tmp/before/target/release/core_scenarios \\
        target/release/core_scenarios --only 3.2.1,3.1.5,swap-all --against 3.1.5 \\
        --scenarios wakeup --pairs 5 --reps 5 --out benchmarks/results/core-compare-NAME.json

Each pair runs the two binaries one after the other (before then after, then after then
before, alternating), each with ``--full --reps R --budget 0 --quiet-wait 0`` and the same
contenders and scenarios. Within one run every contender is divided by the reference
contender ``--against`` of that same run (a phase the change did not touch, so that what the
machine did in those seconds moves both alike), better > 1, from the run's medians. The
output keeps every run's medians and machine record (with its commit) and, per scenario,
metric and contender, the ratios before and after, run by run and their median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def ratio(better: str, ours: float, reference: float) -> float | None:
    """Ours against the reference, better > 1; None when a figure is zero or missing."""
    if not ours or not reference:
        return None
    return reference / ours if better == "lower" else ours / reference


def run_ratios(run: dict, against: str) -> dict[str, dict[str, dict[str, dict]]]:
    """scenario -> metric -> contender -> {"median": ours, "reference": theirs, "ratio"} for
    one run of core_scenarios (its JSON)."""
    out: dict[str, dict[str, dict[str, dict]]] = {}
    for scenario in run["scenarios"]:
        results = scenario["results"]
        if against not in results:
            continue
        for metric in scenario["metrics"]:
            key = metric["key"]
            reference = results[against].get(key, {}).get("median")
            for contender, metrics in results.items():
                if contender == against or key not in metrics:
                    continue
                ours = metrics[key]["median"]
                cell = out.setdefault(scenario["key"], {}).setdefault(key, {})
                cell[contender] = {
                    "median": ours,
                    "reference": reference,
                    "ratio": ratio(metric["better"], ours, reference),
                }
    return out


def summarise(before: list[dict], after: list[dict], against: str) -> dict:
    """Pools the runs of each build: the ratio of every run and their median."""
    table: dict = {}
    for side, runs in (("before", before), ("after", after)):
        for run in runs:
            for scenario, metrics in run_ratios(run, against).items():
                for metric, contenders in metrics.items():
                    for contender, cell in contenders.items():
                        slot = (
                            table.setdefault(scenario, {})
                            .setdefault(metric, {})
                            .setdefault(contender, {})
                            .setdefault(side, {"ratios": [], "medians": [], "reference": []})
                        )
                        slot["ratios"].append(cell["ratio"])
                        slot["medians"].append(cell["median"])
                        slot["reference"].append(cell["reference"])
    for metrics in table.values():
        for contenders in metrics.values():
            for sides in contenders.values():
                for slot in sides.values():
                    known = [r for r in slot["ratios"] if r is not None]
                    slot["ratio_median"] = statistics.median(known) if known else None
    return table


def _run(binary: Path, args: argparse.Namespace, out: Path) -> dict:
    cmd = [str(binary), "--full", "--reps", str(args.reps), "--budget", "0"]
    cmd += ["--quiet-wait", "0", "--only", args.only, "--scenarios", args.scenarios]
    cmd += ["--out", str(out)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="core_scenarios built before the change")
    parser.add_argument("after", type=Path, help="core_scenarios built after the change")
    parser.add_argument("--only", required=True, help="contenders, as core_scenarios --only")
    parser.add_argument("--against", required=True, help="the reference contender")
    parser.add_argument("--scenarios", default="wakeup")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.against not in args.only.split(","):
        parser.error(f"--against {args.against} is not among --only {args.only}")
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            order = ("before", "after") if i % 2 == 0 else ("after", "before")
            for side in order:
                print(f"[core_compare] pair {i + 1}/{args.pairs}: {side}", file=sys.stderr)
                binary = args.before if side == "before" else args.after
                runs[side].append(_run(binary, args, Path(tmp) / f"{side}-{i}.json"))
    table = summarise(runs["before"], runs["after"], args.against)
    record = {
        "generator": "benchmarks/core_compare.py",
        "args": {k: str(v) for k, v in vars(args).items()},
        "against": args.against,
        "commits": {
            side: sorted({r["machine"].get("git_commit", "?") for r in rs})
            for side, rs in runs.items()
        },
        "results": table,
        "runs": runs,
    }
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"contender / {args.against} in the same run, better > 1; median of {args.pairs} runs")
    for scenario, metrics in table.items():
        for metric, contenders in metrics.items():
            for contender, sides in contenders.items():
                cells = []
                for side in ("before", "after"):
                    r = sides.get(side, {}).get("ratio_median")
                    cells.append("-" if r is None else f"x{r:.2f}")
                print(f"{scenario:10} {metric:10} {contender:9} {cells[0]:>8} -> {cells[1]:>8}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
