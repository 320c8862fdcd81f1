#!/usr/bin/env python3
"""Before and after a change, against a peer: two builds of PyLoop, measured in turn.

    bash benchmarks/pyloop/build_at.sh REV_BEFORE /tmp/before
    bash benchmarks/pyloop/build_at.sh REV_AFTER /tmp/after
    python benchmarks/pyloop/compare_builds.py /tmp/before /tmp/after \\
        --loops 3.2.1,3.3.1,rloop --scenarios wakeup,contention,mixed,slow,scaling \\
        --invocations 4 --reps 5 --out benchmarks/results/compare-NAME.json

Runs ``run.py --full`` once per build per invocation, the builds alternating (before, after,
after, before, ...), each with its build first on ``PYTHONPATH``. A machine that drifts over the
minutes then moves both builds alike. For every PyLoop loop and every metric with a direction,
the ratio to the peer (``--against``, rloop unless told) is paired per repetition, with
run.py's own ``better_ratio``, and pooled over the invocations: median, range, and in how
many pairs PyLoop was ahead. The two ratios, before and after, are what the change did;
the raw medians are kept beside them. The output records each build's directory and label
and run.py's own record of the machine and versions.
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
sys.path.insert(0, str(HERE))
import harness  # noqa: E402  (benchmarks/pyloop/harness.py: Metric, better_ratio, REPO)


def _run(build: Path, args: argparse.Namespace, out: Path) -> dict:
    path = [str(build)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    cmd = [sys.executable, str(HERE / "run.py"), "--full", "--quiet", "--reps", str(args.reps)]
    cmd += ["--loops", args.loops, "--scenarios", args.scenarios, "--out", str(out)]
    if args.wait_idle is not None:
        cmd += ["--wait-idle", str(args.wait_idle)]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    data = json.loads(out.read_text())
    native = Path(data["machine"].get("pyloop_native", ""))
    if not (harness.REPO / native).resolve().is_relative_to(build):
        raise SystemExit(f"{build}: run.py measured {native}, not this build")
    return data


def _pairs(runs: list[dict], against: str) -> dict[str, dict[str, dict[str, list]]]:
    """scenario -> metric -> loop -> {"ratios": paired per repetition, "medians": per run}."""
    out: dict[str, dict[str, dict[str, list]]] = {}
    for data in runs:
        for s in data["scenarios"]:
            metrics_of = {m["key"]: harness.Metric(**m) for m in s.get("metrics", [])}
            results = s["results"]
            if against not in results:
                continue
            for loop, metrics in results.items():
                if loop == against:
                    continue
                for key, summary in metrics.items():
                    metric = metrics_of.get(key)
                    if metric is None or not metric.better or key not in results[against]:
                        continue
                    peer = results[against][key]["values"]
                    slot = out.setdefault(s["key"], {}).setdefault(key, {})
                    slot = slot.setdefault(loop, {"ratios": [], "medians": [], "peer": []})
                    pairs = zip(summary["values"], peer, strict=True)
                    ratios = (harness.better_ratio(metric, a, b) for a, b in pairs)
                    slot["ratios"] += [r for r in ratios if r is not None]
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
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=None,
        help="passed to run.py: how long to wait for a quiet machine (default: run.py's)",
    )
    args = ap.parse_args(argv)
    if args.against not in args.loops.split(","):
        raise SystemExit(f"--loops must include --against ({args.against})")

    builds = {"before": args.before.resolve(), "after": args.after.resolve()}
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.invocations):
            # before, after, after, before, ...: a drift of the machine over the run moves
            # both builds alike.
            order = ("before", "after") if i % 2 == 0 else ("after", "before")
            for name in order:
                build = builds[name]
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
                        if c is None or c["ratio_median"] is None
                        else f"x{c['ratio_median']:.2f} ({c['ahead']}/{c['pairs']})"
                    )
                    line += f" {text:>22}"
                print(line)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
