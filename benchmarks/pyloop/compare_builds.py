#!/usr/bin/env python3
"""Before and after a change, against a peer: two builds of PyLoop, measured in turn.

    bash benchmarks/pyloop/build_at.sh REV_BEFORE /tmp/before
    bash benchmarks/pyloop/build_at.sh REV_AFTER /tmp/after
    python benchmarks/pyloop/compare_builds.py /tmp/before /tmp/after \\
        --loops 3.2.1,3.3.1,rloop --scenarios wakeup,contention,mixed,slow,scaling \\
        --invocations 4 --reps 5 --out benchmarks/results/compare-NAME.json

Runs ``run.py --full`` once per build per invocation, the builds alternating (before, after,
before, ...), each with its build first on ``PYTHONPATH``. A machine that drifts over the
minutes then moves both builds alike. For every PyLoop loop and every metric with a direction,
the ratio to the peer (``--against``, rloop unless told) is paired per repetition, as run.py
pairs it, and pooled over the invocations: median, range, and in how many pairs PyLoop was
ahead. The two ratios, before and after, are what the change did; the raw medians are kept
beside them. The output records each build's directory and label and run.py's own record of
the machine and versions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _ratio(better: str, mine: float | None, peer: float | None) -> float | None:
    """Times better than the peer (> 1: ahead), as run.py's paired ratios count it."""
    if mine is None or peer is None or mine <= 0 or peer <= 0:
        return None
    return peer / mine if better == "lower" else mine / peer


def _run(build: Path, args: argparse.Namespace, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{build}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, str(HERE / "run.py"), "--full", "--quiet", "--reps", str(args.reps)]
    cmd += ["--loops", args.loops, "--scenarios", args.scenarios, "--out", str(out)]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    data = json.loads(out.read_text())
    native = data["machine"].get("pyloop_native", "")
    if not native.startswith(str(build)):
        raise SystemExit(f"{build}: run.py measured {native!r}, not this build")
    return data


def _pairs(runs: list[dict], against: str) -> dict[str, dict[str, dict[str, list]]]:
    """scenario -> metric -> loop -> {"ratios": paired per repetition, "medians": per run}."""
    out: dict[str, dict[str, dict[str, list]]] = {}
    for data in runs:
        for s in data["scenarios"]:
            directions = {m["key"]: m.get("better", "") for m in s.get("metrics", [])}
            results = s["results"]
            if against not in results:
                continue
            for loop, metrics in results.items():
                if loop == against:
                    continue
                for key, summary in metrics.items():
                    better = directions.get(key, "")
                    if not better or key not in results[against]:
                        continue
                    peer = results[against][key]["values"]
                    slot = out.setdefault(s["key"], {}).setdefault(key, {})
                    slot = slot.setdefault(loop, {"ratios": [], "medians": [], "peer": []})
                    pairs = zip(summary["values"], peer, strict=True)
                    slot["ratios"] += [r for a, b in pairs if (r := _ratio(better, a, b))]
                    slot["medians"].append(summary["median"])
                    slot["peer"].append(results[against][key]["median"])
    return out


def _summary(slot: dict[str, list]) -> dict:
    ratios = slot["ratios"]
    return {
        "ratio_median": statistics.median(ratios) if ratios else None,
        "ratio_min": min(ratios, default=None),
        "ratio_max": max(ratios, default=None),
        "ahead": sum(r > 1 for r in ratios),
        "pairs": len(ratios),
        "median": statistics.median(slot["medians"]),
        "peer_median": statistics.median(slot["peer"]),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path, help="package directory of the build before")
    ap.add_argument("after", type=Path, help="package directory of the build after")
    ap.add_argument("--before-label", default="before")
    ap.add_argument("--after-label", default="after")
    ap.add_argument("--loops", default="3.2.1,rloop")
    ap.add_argument("--scenarios", default="wakeup")
    ap.add_argument("--against", default="rloop")
    ap.add_argument("--invocations", type=int, default=4)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.against not in args.loops.split(","):
        raise SystemExit(f"--loops must include --against ({args.against})")

    builds = {"before": args.before.resolve(), "after": args.after.resolve()}
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.invocations):
            for name, build in builds.items():
                print(f"[compare] invocation {i + 1}/{args.invocations}: {name}", file=sys.stderr)
                runs[name].append(_run(build, args, Path(tmp) / f"{name}-{i}.json"))

    pairs = {name: _pairs(r, args.against) for name, r in runs.items()}
    table: dict[str, dict] = {}
    for scenario, metrics in pairs["after"].items():
        for key, loops in metrics.items():
            for loop, slot in loops.items():
                before = pairs["before"].get(scenario, {}).get(key, {}).get(loop)
                table.setdefault(scenario, {}).setdefault(key, {})[loop] = {
                    "before": _summary(before) if before else None,
                    "after": _summary(slot),
                }
    record = {
        "generator": "benchmarks/pyloop/compare_builds.py",
        "args": {k: str(v) for k, v in vars(args).items()},
        "labels": {"before": args.before_label, "after": args.after_label},
        "machine": runs["after"][0]["machine"],
        "machine_before": runs["before"][0]["machine"],
        "against": args.against,
        "results": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")

    print(f"PyLoop / {args.against}, paired per repetition, pooled over {args.invocations} runs")
    print(
        f"{'scenario':12} {'metric':20} {'loop':6} {args.before_label:>22} {args.after_label:>22}"
    )
    for scenario, metrics in table.items():
        for key, loops in metrics.items():
            for loop, cell in loops.items():
                line = f"{scenario:12} {key:20} {loop:6}"
                for side in ("before", "after"):
                    c = cell[side]
                    text = (
                        "-"
                        if c is None
                        else f"x{c['ratio_median']:.2f} ({c['ahead']}/{c['pairs']})"
                    )
                    line += f" {text:>22}"
                print(line)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
