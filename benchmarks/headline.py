#!/usr/bin/env python3
"""The README's headline chart: PyLoop against stock asyncio, uvloop and rloop on the main rows
of the committed benchmark runs, as times asyncio's speed.

    python benchmarks/headline.py            # -> benchmarks/results/headline.svg
    python benchmarks/headline.py --out /tmp/headline.svg

Every bar is read from the committed results, never typed: the Python-level scenarios
(``benchmarks/results/python.json``, each scenario's headline figure) and the I/O runs
(``benchmarks/results/io.json``: uvicorn's requests/s, an echo server's round trips/s). A bar is
the median over repetitions of the *paired* ratio to asyncio, computed within each repetition
from runs made back to back, with the ratio taken so that above 1 is better whichever way the
figure goes (the benchmarks' own convention). PyLoop is its default phase, the one users get.
The same files, the same chart: ``scripts/test.sh tables`` regenerates it and fails if the
committed SVG differs.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_OUT = RESULTS / "headline.svg"

#: The Python-level rows, by scenario key: what the bar group is called.
PYTHON_ROWS = {
    "single": "50k call_soon, scheduled and run",
    "chained": "chained call_soon, one per turn",
    "contention": "10 threads x 5k call_soon_threadsafe",
    "mixed": "10 writers while the loop runs",
    "latency": "registration latency, p99",
    "wakeup": "wake-up of an idle loop, p50",
    "timers": "5k call_later timers",
    "pingpong": "Future ping-pong between tasks",
    "gather": "gather of 10k coroutines",
}
#: The I/O rows: (section, key, figure) of io.json's summary -> label.
IO_ROWS = {
    ("http", None, "requests_per_s"): "uvicorn HTTP, requests/s",
    ("echo", "streams/1024", "round_trips_per_s"): "TCP echo 1 KiB, streams",
    ("echo", "raw/1024", "round_trips_per_s"): "TCP echo 1 KiB, raw sock_*",
}
PEERS = ("asyncio", "uvloop", "rloop")
COLOURS = {"asyncio": "#8c8c8c", "uvloop": "#5b8fd1", "rloop": "#d98b3a", "pyloop": "#1b9e77"}


def python_rows(doc: dict[str, Any]) -> list[tuple[str, dict[str, float]]]:
    """(label, loop -> times asyncio) for each Python-level row; PyLoop is its default phase,
    under the id "pyloop"."""
    default = doc["machine"]["pyloop_phases"][-1]
    scenarios = {s["key"]: s for s in doc["scenarios"]}
    rows = []
    for key, label in PYTHON_ROWS.items():
        s = scenarios[key]
        ratios = s["vs_asyncio"][s["headline"]]
        bars = {lid: ratios[lid]["median"] for lid in PEERS}
        bars["pyloop"] = ratios[default]["median"]
        rows.append((label, bars))
    return rows


def io_rows(doc: dict[str, Any]) -> list[tuple[str, dict[str, float]]]:
    rows = []
    for (section, key, figure), label in IO_ROWS.items():
        block = doc["summary"][section]
        ratios = (block[key] if key else block)[figure]["ratios"]
        bars = {"asyncio": 1.0}
        for lid in ("uvloop", "rloop", "pyloop"):
            bars[lid] = ratios[f"{lid}/asyncio"]["median"]
        rows.append((label, bars))
    return rows


def draw(python: dict[str, Any], io_doc: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    matplotlib.rcParams.update(
        {
            "svg.hashsalt": "pyloop-headline",  # stable element ids: same results, same file
            "svg.fonttype": "none",  # text as text
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    rows = python_rows(python) + io_rows(io_doc)
    pm = python["machine"]
    phase = pm["pyloop_phases"][-1]
    names = {
        "asyncio": f"asyncio (CPython {pm['python']}) = 1x",
        "uvloop": f"uvloop {pm['peers']['uvloop']}",
        "rloop": f"rloop {pm['peers']['rloop']}",
        "pyloop": f"PyLoop {pm['pyloop_version']} (phase {phase})",
    }
    order = ["uvloop", "rloop", "pyloop"]
    height = 0.26
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(rows) + 1.4))
    for i, lid in enumerate(order):
        ys = [r + (i - 1) * height for r in range(len(rows))]
        xs = [bars[lid] for _, bars in rows]
        # From asyncio's 1x to the loop's ratio: a loop slower than asyncio points left.
        ax.barh(ys, [x - 1.0 for x in xs], left=1.0, height=height, color=COLOURS[lid],
                label=names[lid])  # fmt: skip
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(0.5, None)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.axvline(1.0, color=COLOURS["asyncio"], linewidth=1.2, label=names["asyncio"])
    ax.set_xlabel("times asyncio's speed (median of paired ratios; right is faster)")
    ax.legend(loc="lower right", frameon=False)
    ax.set_title("PyLoop against asyncio, uvloop and rloop", loc="left")
    fig.text(
        0.01,
        -0.01,
        f"CPython {pm['python']}, {pm['logical_cpus']} CPUs ({pm['cpu_model']}), medians of "
        f"{python['config']['repetitions']} (Python level) and {io_doc['params']['reps']} (I/O) "
        f"repetitions; results at {pm['git_commit'][:7]} and {io_doc['machine']['commit'][:7]}. "
        "Generated by benchmarks/headline.py.",
        fontsize=7,
        color="#555555",
        va="top",
    )
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    svg = buf.getvalue()
    if svg.startswith("<?xml"):  # the comment goes first; the declaration would have to
        svg = svg.split("?>", 1)[1].lstrip()
    comment = (
        "<!-- Generated by benchmarks/headline.py from benchmarks/results/python.json and "
        "benchmarks/results/io.json: do not edit. -->"
    )
    return comment + "\n" + svg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", type=Path, default=RESULTS / "python.json")
    ap.add_argument("--io", type=Path, default=RESULTS / "io.json")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    python = json.loads(args.python.read_text())
    io_doc = json.loads(args.io.read_text())
    for name, doc in (("--python", python), ("--io", io_doc)):
        mode = doc.get("config", {}).get("mode") or doc.get("mode")
        if mode != "full":
            print(
                f"headline.py: note: {name} is a {mode} run, not the published one", file=sys.stderr
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(draw(python, io_doc))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
