#!/usr/bin/env python3
"""Write the book's tables and plots from a results file of the Python-level benchmarks.

    python benchmarks/pyloop/tables.py                                   # the published run
    python benchmarks/pyloop/tables.py benchmarks/results/quick/python.json --out /tmp/t
    python benchmarks/pyloop/tables.py ... --no-plots                     # tables only

Defaults: benchmarks/results/python.json -> book/src/generated/. Writes (all prefixed py_):

    py_machine.md           where, with what and how the results were measured
    py_summary_claims.md    every figure of the 3.1.4 summary: "summary claimed" beside
                            "measured here"
    py_phase_evolution.md   the summary's phase evolution table, measured
    py_best_vs_peers.md     the best phase against asyncio, uvloop and rloop, every scenario
    py_<scenario>.md        one table per scenario, every loop
    py_counters.md          PyLoop's queue counters after the contention and slow-callback runs
    py_gc.md                the single-thread scenario with the GC on and off
    py_scaling.md           the thread-count sweep
    py_phase_<tag>.md       one phase's rows, for its chapter (tag with dots as underscores)
    py_bars.svg, py_latency.svg, py_scaling.svg, py_slow.svg   (unless --no-plots; matplotlib)

and prints the phase evolution table. Every file opens with a comment naming this script and
the JSON it came from: regenerate, never edit. The same JSON gives the same files, byte for byte.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEFAULT_JSON = REPO / "benchmarks" / "results" / "python.json"
DEFAULT_OUT = REPO / "book" / "src" / "generated"

Doc = dict[str, Any]
DASH = "—"

GIL_FOOTNOTE = (
    "Python threads register one at a time under the GIL: these multi-thread figures are each "
    "loop's cross-thread path with producers taking turns, not the queue lock under parallel "
    "producers. The lock itself is measured at the Rust level: see the `core_*` tables in "
    "[How the numbers are made](measuring.md)."
)

# ---------------------------------------------------------------------------------------------
# the 3.1.4 summary's figures (seed/PHASE_3.1.4_SUMMARY.md), as it states them

SUMMARY_PHASES: dict[str, dict[str, Any]] = {
    # phase: per-callback µs single-threaded, "x asyncio", callbacks/s, multi-thread figure
    "3.1.1": {"us": 0.193, "x": 79.0, "multi": None},
    "3.1.2": {"us": 0.202, "x": 64.71, "multi": None},
    "3.1.3": {"us": 0.222, "x": 59.06, "per_s": 4.50e6, "multi": None},
    "3.1.4": {"us": 0.298, "x": 45.75, "per_s": 3.36e6, "multi": 6.27e6},
}
SUMMARY_ASYNCIO_US = 14.27  # the asyncio baseline its ratios imply

# (row label, claimed text, scenario, metric, note). The measured columns show the summary's
# phase (3.1.4), the best phase, and the three peers, for that scenario and metric.
CLAIMS: list[tuple[str, str, str, str, str]] = [
    ("single thread: per callback", "0.298 µs", "single", "us_per_callback", ""),
    ("single thread: callbacks/s", "3.36M/s", "single", "callbacks_per_s", ""),
    ("single thread: × asyncio", "×45.75", "single", "x_asyncio", ""),
    (
        "asyncio, single thread: per callback",
        "14.27 µs (implied)",
        "single",
        "asyncio",
        "the baseline the summary's ratios imply",
    ),
    ("10 × 1,000 registration: throughput", "2.54M/s", "registration", "pushes_per_s", ""),
    ("10 × 1,000 registration: mean", "0.15 µs", "registration", "push_mean_us", ""),
    ("10 × 1,000 registration: max", "30.67 µs", "registration", "push_max_us", ""),
    ("10 × 5,000 contention: throughput", "4.47M/s", "contention", "callbacks_per_s", ""),
    ("10 × 5,000 contention: time for all", "11.18 ms", "contention", "total_ms", ""),
    ("5 × 1,000 latency: mean", "0.21 µs", "latency", "mean_us", ""),
    ("5 × 1,000 latency: p50", "0.17 µs", "latency", "p50_us", ""),
    ("5 × 1,000 latency: p95", "0.25 µs", "latency", "p95_us", ""),
    ("5 × 1,000 latency: p99", "0.37 µs", "latency", "p99_us", ""),
    (
        "mixed: ops/s",
        "6.27M/s",
        "mixed",
        "ops_per_s",
        "its 6.38 ms × 6.27M/s is 40k ops: 20k callbacks in all, not 10 × 20k",
    ),
    ("mixed: total time", "6.38 ms", "mixed", "total_ms", "here 10 × 20,000 callbacks"),
    (
        "lock hold per batch, 3.1.3 → 3.1.4",
        "~30–50 µs → <10 µs",
        "slow",
        "hold_max_us",
        "max hold, slow-callback run",
    ),
    ("push p99, 3.1.3 → 3.1.4", "~2–5 µs → 0.37 µs", "latency", "p99_us", ""),
    ("uvloop: single-thread callback", "~0.7 µs (estimated)", "single", "uvloop", "uvloop column"),
    (
        "uvloop: multi-thread throughput",
        "~1–2M/s (estimated)",
        "contention",
        "uvloop",
        "uvloop column",
    ),
    ("uvloop: p99 latency", "~100 µs (estimated)", "latency", "uvloop_p99", "uvloop column"),
    (
        "response latency: uvloop → 3.1.4",
        "~50–100 µs → 7 µs",
        "wakeup",
        "p50_us",
        "wake-up of an idle loop, p50",
    ),
]

# Metrics left out of the best-vs-peers table: rates that restate a time in the same table.
SKIP_VS = {
    ("single", "callbacks_per_s"),
    ("single_gc_off", "callbacks_per_s"),
    ("chained", "callbacks_per_s"),
    ("pingpong", "round_trips_per_s"),
    ("gather", "coroutines_per_s"),
    ("registration", "callbacks_per_s"),
    ("mixed", "callbacks_per_s"),
}

# ---------------------------------------------------------------------------------------------
# formats


def fmt(x: float | None, unit: str) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return DASH
    if unit == "us":
        a = abs(x)
        if a >= 10_000:
            return f"{x / 1e3:,.1f} ms"
        if a >= 1_000:
            return f"{x / 1e3:.2f} ms"
        if a >= 100:
            return f"{x:.0f} µs"
        if a >= 10:
            return f"{x:.1f} µs"
        if a >= 1:
            return f"{x:.2f} µs"
        return f"{x:.3f} µs"
    if unit == "ms":
        if abs(x) >= 100:
            return f"{x:,.0f} ms"
        return f"{x:.1f} ms" if abs(x) >= 10 else f"{x:.2f} ms"
    if unit == "1/s":
        if x >= 1e6:
            return f"{x / 1e6:.2f}M/s"
        if x >= 1e3:
            return f"{x / 1e3:.0f}k/s"
        return f"{x:.0f}/s"
    if unit == "%":
        return "0 %" if x == 0 else f"{x:.1f} %" if x >= 0.1 else f"{x:.2f} %"
    if unit == "count":
        return f"{x:,.0f}" if abs(x) >= 100 or x == int(x) else f"{x:.1f}"
    return f"{x:g}"


def fmt_ratio(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return DASH
    if x >= 100:
        return f"×{x:,.0f}"
    if x >= 10:
        return f"×{x:.1f}"
    return f"×{x:.2f}"


def fmt_range(lo: float | None, hi: float | None, f: Callable[[float | None], str]) -> str:
    if lo is None or hi is None:
        return ""
    return f"{f(lo)} – {f(hi)}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": "---", "r": "--:", "c": ":-:"}
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# access


class Results:
    """The results document, with the look-ups the tables need."""

    def __init__(self, doc: Doc, source: str) -> None:
        self.doc = doc
        self.source = source
        self.scen = {s["key"]: s for s in doc["scenarios"]}
        self.loops = [entry["id"] for entry in doc["loops"]]
        self.labels = {entry["id"]: entry["label"] for entry in doc["loops"]}
        self.phases = [entry["id"] for entry in doc["loops"] if entry["kind"] == "phase"]
        self.peers = [entry["id"] for entry in doc["loops"] if entry["kind"] == "peer"]
        self.mode = doc["config"]["mode"]
        self.reps = doc["config"]["repetitions"]

    def sweep(self) -> list[int]:
        """The producer counts of the scaling sweep, from its metric keys."""
        keys = [m["key"] for m in self.scen["scaling"]["metrics"]]
        return [int(k.rsplit("_", 1)[1]) for k in keys if k.startswith("cb_per_s_")]

    def has(self, scen: str) -> bool:
        return scen in self.scen

    def metric(self, scen: str, key: str) -> Doc:
        return next(m for m in self.scen[scen]["metrics"] if m["key"] == key)

    def cell(self, scen: str, loop: str, key: str) -> Doc | None:
        s = self.scen.get(scen)
        if s is None:
            return None
        return s["results"].get(loop, {}).get(key)

    def med(self, scen: str, loop: str, key: str, stat: str = "median") -> float | None:
        c = self.cell(scen, loop, key)
        return None if c is None else c[stat]

    def show(self, scen: str, loop: str, key: str, with_range: bool = False) -> str:
        c = self.cell(scen, loop, key)
        if c is None or c["median"] is None:
            return DASH
        unit = self.metric(scen, key)["unit"]
        bound = key in ("hold_p50_us", "hold_p99_us")  # upper bounds from a histogram
        if bound and c["median"] == 0:
            return "≈ 0"
        text = ("≤ " if bound else "") + fmt(c["median"], unit)
        if with_range and c["n"] > 1:
            text += f" ({fmt_range(c['min'], c['max'], lambda v: fmt(v, unit))})"
        return text

    def paired(self, scen: str, key: str, mine: str, other: str) -> Doc | None:
        """How many times better ``mine`` is than ``other``, per repetition, summarised."""
        a = self.cell(scen, mine, key)
        b = self.cell(scen, other, key)
        better = self.metric(scen, key)["better"] if self.has(scen) else ""
        if a is None or b is None or not better:
            return None
        ratios = []
        for x, y in zip(a["values"], b["values"], strict=False):
            if x is None or y is None:
                continue
            num, den = (y, x) if better == "lower" else (x, y)
            if den > 0 and num >= 0:
                ratios.append(num / den)
        if not ratios:
            return None
        return {
            "median": statistics.median(ratios),
            "min": min(ratios),
            "max": max(ratios),
            "n": len(ratios),
        }

    def show_ratio(self, r: Doc | None, with_range: bool = True) -> str:
        if r is None:
            return DASH
        text = fmt_ratio(r["median"])
        if with_range and r["n"] > 1:
            text += f" ({fmt_range(r['min'], r['max'], fmt_ratio)})"
        return text

    def best(self, scen: str, key: str) -> str | None:
        s = self.scen.get(scen)
        if s is None:
            return None
        entry = s["best_phase"].get(key)
        return entry["phase"] if entry else None

    def name(self, loop: str) -> str:
        label = self.labels.get(loop, loop)
        return f"**{label}**" if loop in self.phases else label

    def header_comment(self, what: str = "") -> str:
        m = self.doc["machine"]
        commit = (m.get("git_commit") or "?")[:10]
        dirty = " (tree modified)" if m.get("git_dirty_measured") else ""
        extra = f" {what}" if what else ""
        return (
            f"<!-- Generated by benchmarks/pyloop/tables.py from {self.source} ({self.mode} run "
            f"of {self.doc['date']}, commit {commit}{dirty}).{extra} Do not edit: regenerate. "
            "-->\n"
        )

    def method_note(self) -> str:
        m = self.doc["machine"]
        quick = (
            " **This is a quick run** (smaller sizes, fewer repetitions): noisy, for a look."
            if self.mode != "full"
            else ""
        )
        return (
            f"Medians of {self.reps} repetitions (min – max in brackets), all loops in one "
            f"process, order rotated per repetition, warm-up discarded; ratios are paired per "
            f'repetition and read "times better" (above ×1: the first loop did better). '
            f"{m.get('logical_cpus')} cores ({m.get('cpu_model')}), CPython {m.get('python')}, "
            f"GC on unless stated.{quick}"
        )


# ---------------------------------------------------------------------------------------------
# the tables


def machine_md(r: Results) -> str:
    m = r.doc["machine"]
    cfg = r.doc["config"]
    loops = ", ".join(
        f"{e['label']} ({e['version']})" if e["kind"] == "peer" else e["label"]
        for e in r.doc["loops"]
    )
    la0 = ", ".join(f"{x:.2f}" for x in m.get("load_average_start", []))
    la1 = ", ".join(f"{x:.2f}" for x in m.get("load_average_end", []))
    rows = [
        ["date (UTC)", r.doc["date"]],
        [
            "mode",
            f"{cfg['mode']}: {cfg['warmup']} warm-up pass(es) discarded, "
            f"{cfg['repetitions']} measured repetitions; the run took "
            f"{r.doc['elapsed_s']:.0f} s",
        ],
        [
            "CPU",
            f"{m['cpu_model']}, {m['logical_cpus']} logical CPUs ({m.get('usable_cpus')} usable)",
        ],
        ["OS", m["os"]],
        [
            "Python",
            f"CPython {m['python']} ({m['python_build']}); GC thresholds "
            f"{tuple(m['gc_threshold'])}; switch interval "
            f"{m['switch_interval_s'] * 1e3:g} ms",
        ],
        ["rustc", m.get("rustc") or "?"],
        ["peers", f"uvloop {m['peers']['uvloop']}, rloop {m['peers']['rloop']}"],
        [
            "PyLoop",
            f"{m['pyloop_version']}, phases {', '.join(m['pyloop_phases'])}; "
            f"extension built {m['pyloop_native_built']}",
        ],
        [
            "commit",
            f"`{m.get('git_commit')}`"
            + (
                " + uncommitted changes to the measured code"
                if m.get("git_dirty_measured")
                else " (measured code unmodified)"
            ),
        ],
        ["load average", f"{la0} at the start, {la1} at the end (1, 5, 15 min)"],
        ["other processes", _noise_text(r)],
        ["loops", loops],
    ]
    return r.header_comment() + table(["record", "value"], rows, "ll") + f"\n{GIL_FOOTNOTE}\n"


def slow_label(r: Results) -> str:
    """The slow-callback scenario's size, from the results file."""
    if not r.has("slow"):
        return "slow callbacks"
    p = r.scen["slow"]["params"]
    return (
        f"{p['producers']} threads × {p['per_producer']:,} pushes of {p['work_us']:g} µs callbacks"
    )


def _noise_text(r: Results) -> str:
    """How busy the rest of the machine was, over the measured repetitions."""
    reps = [n for n in r.doc.get("noise", []) if n.get("repetition") != "warm-up"]
    busy = [n["others_cores"] for n in reps if n.get("others_cores") is not None]
    if not busy:
        return "not recorded"
    ncpu = r.doc["machine"].get("logical_cpus") or 1
    return (
        f"kept {statistics.median(busy):.2f} of the {ncpu} cores busy during the median "
        f"repetition ({min(busy):.2f} – {max(busy):.2f}): "
        + (
            "a quiet machine"
            if max(busy) < 0.25
            else "a shared, busy machine; see the CPU-time "
            "columns, which waiting for a core does not inflate"
        )
    )


def claims_md(r: Results) -> str:
    header = [
        "figure",
        "summary claimed",
        "measured here: 3.1.4",
        "best phase",
        "asyncio",
        "uvloop",
        "rloop",
        "note",
    ]
    rows = []
    for label, claimed, scen, key, note in CLAIMS:
        if not r.has(scen):
            continue
        if key == "x_asyncio":
            ra = r.paired(scen, "us_per_callback", "3.1.4", "asyncio")
            best = r.best(scen, "us_per_callback")
            rb = r.paired(scen, "us_per_callback", best, "asyncio") if best else None
            rows.append(
                [
                    label,
                    claimed,
                    r.show_ratio(ra),
                    f"{best}: {r.show_ratio(rb)}" if best else DASH,
                    "×1",
                    DASH,
                    DASH,
                    "paired per repetition",
                ]
            )
            continue
        if key in ("asyncio", "uvloop", "uvloop_p99"):
            mkey = {
                "single": "us_per_callback",
                "contention": "callbacks_per_s",
                "latency": "p99_us",
            }[scen]
            peer = "asyncio" if key == "asyncio" else "uvloop"
            rows.append(
                [
                    label,
                    claimed,
                    DASH,
                    DASH,
                    r.show(scen, "asyncio", mkey, True) if peer == "asyncio" else DASH,
                    r.show(scen, "uvloop", mkey, True) if peer == "uvloop" else DASH,
                    DASH,
                    f"measured ({note})",
                ]
            )
            continue
        best = r.best(scen, key)
        rows.append(
            [
                label,
                claimed,
                r.show(scen, "3.1.4", key, True),
                f"{best}: {r.show(scen, best, key)}" if best else DASH,
                r.show(scen, "asyncio", key) if not r.metric(scen, key)["phases_only"] else DASH,
                r.show(scen, "uvloop", key) if not r.metric(scen, key)["phases_only"] else DASH,
                r.show(scen, "rloop", key) if not r.metric(scen, key)["phases_only"] else DASH,
                note,
            ]
        )
    # the two "before → after" rows also want 3.1.3 beside 3.1.4
    extra = []
    if r.has("slow"):
        extra.append(
            "Lock hold per batch here (slow callbacks, max over the run): 3.1.3 "
            f"{r.show('slow', '3.1.3', 'hold_max_us')}, "
            f"3.1.4 {r.show('slow', '3.1.4', 'hold_max_us')}."
        )
    if r.has("latency"):
        extra.append(
            f"Push p99 here: 3.1.3 {r.show('latency', '3.1.3', 'p99_us')}, 3.1.4 "
            f"{r.show('latency', '3.1.4', 'p99_us')}."
        )
    if r.has("mixed"):
        gain = r.paired("mixed", "ops_per_s", "3.1.4", "3.1.3")
        extra.append(
            'The summary\'s multi-thread gain of 3.1.4 over 3.1.3 ("2.5–3×", from its Amdahl '
            f"model): measured on mixed ops/s, {r.show_ratio(gain)}."
        )
    return (
        r.header_comment()
        + table(header, rows, "llrrrrrl")
        + "\n"
        + " ".join(extra)
        + "\n\n"
        + r.method_note()
        + " The summary's sizes are used throughout (a quick run uses smaller ones); its "
        "uvloop figures were estimates, ours are measured. " + GIL_FOOTNOTE + "\n"
    )


def phase_evolution_md(r: Results) -> str:
    single_n = r.scen["single"]["params"]["callbacks"] if r.has("single") else 0
    header = [
        "phase",
        "summary: single thread",
        "measured: single thread",
        "× asyncio",
        "1 producer thread, per callback",
        "… its CPU time",
        "10 × 1k registration",
        "10 × 5k contention",
        "mixed ops/s",
        "summary: multi-thread",
        "slow callbacks: mean push",
        "lock hold max",
        "wake-up p50",
    ]
    rows = []
    for p in r.phases:
        claim = SUMMARY_PHASES.get(p)
        claim_single = f"{claim['us']} µs (×{claim['x']:g})" if claim else "—"
        claim_multi = (
            fmt(claim["multi"], "1/s").replace("/s", " ops/s")
            if claim and claim.get("multi")
            else ("N/A" if claim else DASH)
        )
        one = r.med("scaling", p, "cb_per_s_1")
        rows.append(
            [
                r.name(p),
                claim_single,
                r.show("single", p, "us_per_callback", True),
                r.show_ratio(r.paired("single", "us_per_callback", p, "asyncio"), False),
                fmt(1e6 / one, "us") if one else DASH,
                r.show("scaling", p, "cpu_us_1"),
                r.show("registration", p, "pushes_per_s"),
                r.show("contention", p, "callbacks_per_s"),
                r.show("mixed", p, "ops_per_s"),
                claim_multi,
                r.show("slow", p, "push_mean_us"),
                r.show("slow", p, "hold_max_us"),
                r.show("wakeup", p, "p50_us"),
            ]
        )
    for peer in r.peers:
        one = r.med("scaling", peer, "cb_per_s_1")
        rows.append(
            [
                r.name(peer),
                f"{SUMMARY_ASYNCIO_US} µs (implied)"
                if peer == "asyncio"
                else ("~0.7 µs (estimated)" if peer == "uvloop" else DASH),
                r.show("single", peer, "us_per_callback", True),
                r.show_ratio(r.paired("single", "us_per_callback", peer, "asyncio"), False),
                fmt(1e6 / one, "us") if one else DASH,
                r.show("scaling", peer, "cpu_us_1"),
                r.show("registration", peer, "pushes_per_s"),
                r.show("contention", peer, "callbacks_per_s"),
                r.show("mixed", peer, "ops_per_s"),
                "~1–2M/s (estimated)" if peer == "uvloop" else DASH,
                r.show("slow", peer, "push_mean_us"),
                DASH,
                r.show("wakeup", peer, "p50_us"),
            ]
        )
    return (
        r.header_comment()
        + table(header, rows)
        + "\n"
        + r.method_note()
        + f" *Single thread*: {single_n:,} `call_soon` scheduled and run on one thread; in "
        "PyLoop these go to the loop's own lane, so every phase does the same work and the "
        "differences between phases are noise. *1 producer thread*: the same callbacks pushed with "
        "`call_soon_threadsafe` from one other thread, through the phase's queue (wall time, "
        "the 1-thread point of the scaling sweep); *its CPU time*: the process's CPU time per "
        "callback in that run, which leaves out time spent waiting for a core or for the GIL. "
        f"*Slow callbacks*: {slow_label(r)}; the mean includes the few pushes that waited for "
        "the queue lock. *Lock "
        "hold max*: longest time the loop held the queue lock, from the phase's counters. "
        + GIL_FOOTNOTE
        + "\n"
    )


def best_vs_peers_md(r: Results) -> str:
    header = [
        "scenario",
        "figure",
        "best phase",
        "its value",
        "asyncio",
        "uvloop",
        "rloop",
        "best × asyncio",
        "best × uvloop",
        "best × rloop",
    ]
    rows = []
    losses = []
    for s in r.doc["scenarios"]:
        for m in s["metrics"]:
            if not m["better"] or m["phases_only"] or (s["key"], m["key"]) in SKIP_VS:
                continue
            best = r.best(s["key"], m["key"])
            if best is None:
                continue
            ratios = {peer: r.paired(s["key"], m["key"], best, peer) for peer in r.peers}
            for peer, rat in ratios.items():
                if rat is not None and rat["median"] < 1:
                    losses.append(
                        f"{s['title']} / {m['label']}: {best} vs {peer} {fmt_ratio(rat['median'])}"
                    )
            rows.append(
                [
                    s["title"] + (" ¹" if s["multithread"] else ""),
                    m["label"] + (" (lower is better)" if m["better"] == "lower" else ""),
                    best,
                    r.show(s["key"], best, m["key"]),
                    r.show(s["key"], "asyncio", m["key"]),
                    r.show(s["key"], "uvloop", m["key"]),
                    r.show(s["key"], "rloop", m["key"]),
                    r.show_ratio(ratios.get("asyncio")),
                    _mark(r.show_ratio(ratios.get("uvloop")), ratios.get("uvloop")),
                    _mark(r.show_ratio(ratios.get("rloop")), ratios.get("rloop")),
                ]
            )
    lose = (
        "\n\nWhere the best phase loses (median ratio below ×1, in bold above): "
        + "; ".join(losses)
        + "."
        if losses
        else "\n\nThe best phase's median beats every peer on every figure of this run."
    )
    return (
        r.header_comment()
        + table(header, rows, "lllrrrrrrr")
        + "\n"
        + r.method_note()
        + " *Best phase*: the phase with the best median on that figure. "
        + lose
        + "\n\n¹ "
        + GIL_FOOTNOTE
        + "\n"
    )


def _mark(text: str, rat: Doc | None) -> str:
    return f"**{text}**" if rat is not None and rat["median"] < 1 else text


def scenario_md(r: Results, key: str) -> str:
    s = r.scen[key]
    shown = [m for m in s["metrics"] if not m["phases_only"]]
    head = s["headline"]
    header = ["loop"] + [m["label"] for m in shown]
    vs_key = head if r.metric(key, head)["better"] else None
    if vs_key:
        header.append("× asyncio (" + r.metric(key, vs_key)["label"] + ")")
    rows = []
    for lid in r.loops:
        row = [r.name(lid)] + [r.show(key, lid, m["key"], m["key"] == head) for m in shown]
        if vs_key:
            row.append(r.show_ratio(r.paired(key, vs_key, lid, "asyncio")))
        rows.append(row)
    p = s["params"]
    sizes = ", ".join(
        f"{k.replace('_', ' ')} {v:,}" if isinstance(v, int) else f"{k.replace('_', ' ')} {v}"
        for k, v in p.items()
        if k != "verify"
    )
    text = (
        r.header_comment()
        + table(header, rows)
        + f"\n{s['description']} ({sizes}.) "
        + r.method_note()
    )
    if key in ("fairness",):
        text += (
            " PyLoop runs the loop's own ready callbacks, then at most 128 from the cross-thread "
            "queue, each turn: a callback the loop schedules for itself waits for at most 128 "
            "others. A loop that never ran it during the flood shows the whole flood as its gap."
        )
    if s["multithread"]:
        text += " " + GIL_FOOTNOTE
    return text + "\n"


def counters_md(r: Results) -> str:
    header = [
        "phase",
        "run",
        "lock hold p50",
        "hold p99",
        "hold max",
        "contended pushes",
        "mean wait of a contended push",
        "max wait",
        "mean push (all)",
    ]
    rows = []
    for p in r.phases:
        for scen, label in (("contention", "10 × 5k, no-op"), ("slow", slow_label(r))):
            if not r.has(scen):
                continue
            n = r.med(scen, p, "contended_pushes")
            pct = r.med(scen, p, "contended_pct")
            rows.append(
                [
                    r.name(p),
                    label,
                    r.show(scen, p, "hold_p50_us"),
                    r.show(scen, p, "hold_p99_us"),
                    r.show(scen, p, "hold_max_us", True),
                    f"{fmt(n, 'count')} ({fmt(pct, '%')})" if n is not None else DASH,
                    r.show(scen, p, "wait_mean_us", True) if n else "never waited",
                    r.show(scen, p, "wait_max_us") if n else DASH,
                    r.show(scen, p, "push_mean_us") if scen == "slow" else DASH,
                ]
            )
    return (
        r.header_comment()
        + table(header, rows)
        + "\n"
        + r.method_note()
        + " From each phase's own counters (`loop._queue_stats()`), read after the run. *Lock "
        "hold*: how long the loop held the queue lock per take; p50 and p99 are upper bounds "
        "from a power-of-two histogram (hence ≤, and a p99 above the max). *Contended pushes*: "
        "`call_soon_threadsafe` calls that found the lock held; they wait for it with the GIL "
        "released. Phases 3.1.1–3.1.3 run a batch (up to 128 callbacks) while holding the lock; "
        "3.1.4 and later take it only to move callbacks out. " + GIL_FOOTNOTE + "\n"
    )


def gc_md(r: Results) -> str:
    if not (r.has("single") and r.has("single_gc_off")):
        return r.header_comment() + "(no GC runs in this results file)\n"
    tracked = {e["id"]: e.get("handle_gc_tracked") for e in r.doc["loops"]}
    header = [
        "loop",
        "handles tracked by the GC",
        "GC on: per callback",
        "GC off: per callback",
        "GC off × faster",
        "GC on: drain",
        "GC off: drain",
    ]
    rows = []
    for lid in r.loops:
        on = r.cell("single", lid, "us_per_callback")
        off = r.cell("single_gc_off", lid, "us_per_callback")
        ratio = None
        if on and off:
            vals = [a / b for a, b in zip(on["values"], off["values"], strict=False) if a and b]
            if vals:
                ratio = {
                    "median": statistics.median(vals),
                    "min": min(vals),
                    "max": max(vals),
                    "n": len(vals),
                }
        rows.append(
            [
                r.name(lid),
                {True: "yes", False: "no"}.get(tracked.get(lid), DASH),
                r.show("single", lid, "us_per_callback", True),
                r.show("single_gc_off", lid, "us_per_callback", True),
                r.show_ratio(ratio),
                r.show("single", lid, "drain_us"),
                r.show("single_gc_off", lid, "drain_us"),
            ]
        )
    return (
        r.header_comment()
        + table(header, rows)
        + "\n"
        + r.method_note()
        + " The single-thread scenario run twice in each repetition, the second time with "
        "`gc.disable()` around it; the ratio pairs the two runs of the same repetition. *Handles "
        "tracked by the GC* is checked at run time (`gc.is_tracked` on a `call_soon` handle): "
        "every tracked allocation counts towards the next collection, and 50k pending tracked "
        "handles are 50k objects for each older-generation collection to traverse.\n"
    )


def scaling_md(r: Results) -> str:
    sweep = r.sweep()
    header = ["loop"] + [f"{n} thread{'s' if n > 1 else ''}" for n in sweep] + ["16 vs 1 thread"]
    rows = []
    for lid in r.loops:
        row = [r.name(lid)]
        for n in sweep:
            row.append(r.show("scaling", lid, f"cb_per_s_{n}", n in (1, 16)))
        a = r.cell("scaling", lid, "cb_per_s_16")
        b = r.cell("scaling", lid, "cb_per_s_1")
        sp = None
        if a and b:
            vals = [x / y for x, y in zip(a["values"], b["values"], strict=False) if x and y]
            if vals:
                sp = {
                    "median": statistics.median(vals),
                    "min": min(vals),
                    "max": max(vals),
                    "n": len(vals),
                }
        row.append(r.show_ratio(sp))
        rows.append(row)
    total = r.scen["scaling"]["params"]["total"]
    cpu_rows = [
        [r.name(lid)] + [r.show("scaling", lid, f"cpu_us_{n}") for n in sweep] for lid in r.loops
    ]
    contended = []
    for p in r.phases:
        vals = [r.show("scaling", p, f"contended_pct_{n}") for n in sweep]
        contended.append([r.name(p)] + vals)
    return (
        r.header_comment()
        + table(header, rows)
        + f"\n{total:,} `call_soon_threadsafe` callbacks in all, split evenly over the producer "
        "threads, each count on a fresh loop; callbacks/s from the producers' release to the last "
        "callback run. *16 vs 1*: throughput with 16 producers over that with 1, paired per "
        "repetition (Amdahl's speed-up; above ×1 more threads helped). "
        + r.method_note()
        + " "
        + GIL_FOOTNOTE
        + "\n\nCPU time per callback, all of the process's threads (loop and producers), over "
        "the same runs. Unlike the wall-clock rate above, it does not count time a thread spends "
        "waiting to be scheduled or for the GIL, so it moves much less on a busy machine:\n\n"
        + table(["loop"] + [str(n) for n in sweep], cpu_rows)
        + "\nContended pushes (share of all pushes that found the queue lock held), per phase:"
        "\n\n" + table(["phase"] + [str(n) for n in sweep], contended)
    )


def phase_md(r: Results, phase: str) -> str:
    """One phase's measured rows, for its chapter."""
    items: list[tuple[str, str, str]] = [
        ("single", "us_per_callback", "0.298 µs" if phase == "3.1.4" else ""),
        ("chained", "us_per_callback", ""),
        ("registration", "pushes_per_s", "2.54M/s" if phase == "3.1.4" else ""),
        ("registration", "push_max_us", "30.67 µs" if phase == "3.1.4" else ""),
        ("contention", "callbacks_per_s", "4.47M/s" if phase == "3.1.4" else ""),
        (
            "latency",
            "p99_us",
            "0.37 µs" if phase == "3.1.4" else ("~2–5 µs" if phase == "3.1.3" else ""),
        ),
        ("mixed", "ops_per_s", "6.27M/s" if phase == "3.1.4" else ""),
        ("wakeup", "p50_us", "7 µs" if phase == "3.1.4" else ""),
        ("timers", "us_per_timer", ""),
        ("pingpong", "us_per_round_trip", ""),
        ("gather", "us_per_coroutine", ""),
        ("fairness", "max_gap", ""),
        ("slow", "push_mean_us", ""),
        ("scaling", "cb_per_s_1", ""),
        ("scaling", "cb_per_s_16", ""),
    ]
    claim = SUMMARY_PHASES.get(phase)
    if claim and phase != "3.1.4":
        items[0] = ("single", "us_per_callback", f"{claim['us']} µs")
    rows = []
    for scen, key, claimed in items:
        if not r.has(scen) or phase not in r.scen[scen]["results"]:
            continue
        m = r.metric(scen, key)
        rows.append(
            [
                r.scen[scen]["title"] + (" ¹" if r.scen[scen]["multithread"] else ""),
                m["label"],
                r.show(scen, phase, key, True),
                r.show_ratio(r.paired(scen, key, phase, "asyncio"), False),
                r.show_ratio(r.paired(scen, key, phase, "uvloop"), False),
                r.show_ratio(r.paired(scen, key, phase, "rloop"), False),
                claimed or DASH,
            ]
        )
    counters = []
    for scen, label in (
        ("contention", "10 × 5k no-op callbacks"),
        ("slow", slow_label(r)),
    ):
        if r.has(scen) and phase in r.scen[scen]["results"]:
            n = r.med(scen, phase, "contended_pushes")
            counters.append(
                f"{label}: lock held at most {r.show(scen, phase, 'hold_max_us')} "
                f"(p99 {r.show(scen, phase, 'hold_p99_us')}), "
                + (
                    f"{fmt(n, 'count')} contended pushes waiting "
                    f"{r.show(scen, phase, 'wait_mean_us')} on average"
                    if n
                    else "no push ever waited for the lock"
                )
            )
    return (
        r.header_comment(f"Phase {phase}.")
        + table(
            [
                "scenario",
                "figure",
                f"{phase}",
                "× asyncio",
                "× uvloop",
                "× rloop",
                "summary claimed",
            ],
            rows,
            "llrrrrr",
        )
        + "\n"
        + ("Queue counters — " + "; ".join(counters) + ". " if counters else "")
        + r.method_note()
        + " Every loop's row is in [Measuring honestly](measuring-python.md).\n\n¹ "
        + GIL_FOOTNOTE
        + "\n"
    )


# ---------------------------------------------------------------------------------------------
# plots


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams.update(
        {
            "svg.hashsalt": "pyloop",  # stable element ids: same JSON, same file
            "svg.fonttype": "none",  # text as text
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    return plt


PEER_COLOURS = {"asyncio": "#8c8c8c", "uvloop": "#5b8fd1", "rloop": "#d98b3a"}


def _colour(r: Results, lid: str) -> str:
    if lid in PEER_COLOURS:
        return PEER_COLOURS[lid]
    i = r.phases.index(lid) if lid in r.phases else 0
    shades = ["#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#e6ab02", "#17becf"]
    return shades[i % len(shades)]


def _plain_log(ax: Any, axis: str = "y") -> None:
    """A log axis labelled 0.5, 1, 2, 10 ... rather than 5 x 10^-1."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    which = ax.yaxis if axis == "y" else ax.xaxis
    which.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    which.set_minor_formatter(NullFormatter())


def _save(r: Results, fig: Any, path: Path, what: str) -> None:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    svg = buf.getvalue()
    # The comment goes first, so the XML declaration (which must be first if present) goes.
    if svg.startswith("<?xml"):
        svg = svg.split("?>", 1)[1].lstrip()
    comment = r.header_comment(what).replace("-->\n", "-->")
    path.write_text(comment + "\n" + svg)


def _bars(r: Results, ax: Any, scen: str, key: str, title: str, log: bool = False) -> None:
    loops = [lid for lid in r.loops if r.cell(scen, lid, key)]
    meds = [r.med(scen, lid, key) or 0 for lid in loops]
    lo = [m - (r.med(scen, lid, key, "min") or m) for lid, m in zip(loops, meds, strict=True)]
    hi = [(r.med(scen, lid, key, "max") or m) - m for lid, m in zip(loops, meds, strict=True)]
    unit = r.metric(scen, key)["unit"]
    scale, suffix = (1e6, "M/s") if unit == "1/s" else (1, {"us": "µs", "ms": "ms"}.get(unit, ""))
    ax.bar(
        range(len(loops)),
        [m / scale for m in meds],
        yerr=[[x / scale for x in lo], [x / scale for x in hi]],
        color=[_colour(r, lid) for lid in loops],
        capsize=2,
        error_kw={"linewidth": 0.8},
    )
    ax.set_xticks(range(len(loops)))
    ax.set_xticklabels(loops, rotation=45, ha="right")
    better = "lower" if r.metric(scen, key)["better"] == "lower" else "higher"
    ax.set_title(f"{title}\n({suffix}, {better} is better)", fontsize=9)
    if log:
        ax.set_yscale("log")
        _plain_log(ax)


def plot_bars(r: Results, out: Path) -> None:
    plt = _plt()
    panels = [
        ("single", "us_per_callback", "single thread: per callback", False),
        ("chained", "us_per_callback", "chained call_soon: per turn", False),
        ("contention", "callbacks_per_s", "10 × 5k contention: callbacks/s ¹", False),
        ("latency", "p99_us", "5 × 1k registration p99 ¹", True),
        ("wakeup", "p50_us", "idle wake-up p50 ¹", True),
        ("slow", "push_mean_us", "slow callbacks: mean registration ¹", True),
    ]
    panels = [p for p in panels if r.has(p[0])]
    cols = 3
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(10, 3.4 * rows), squeeze=False)
    for ax, (scen, key, title, log) in zip(axes.flat, panels, strict=False):
        _bars(r, ax, scen, key, title, log)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(
        f"Every loop, medians of {r.reps} repetitions (bars: min–max); "
        "¹ threads take turns under the GIL",
        fontsize=9,
    )
    fig.tight_layout()
    _save(r, fig, out / "py_bars.svg", "Per-loop bars.")
    plt.close(fig)


def plot_latency(r: Results, out: Path) -> None:
    if not r.has("latency") or "distribution" not in r.scen["latency"]:
        return
    plt = _plt()
    dist = r.scen["latency"]["distribution"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for lid in r.loops:
        d = dist.get(lid)
        if not d:
            continue
        xs = [max(v, 1e-3) for v in d["value"]]
        ax.plot(
            xs,
            d["q"],
            label=r.labels[lid],
            color=_colour(r, lid),
            linestyle="--" if lid in r.peers else "-",
            linewidth=1.2,
        )
    ax.set_xscale("log")
    _plain_log(ax, "x")
    ax.set_xlabel("duration of one call_soon_threadsafe (µs, log scale)")
    ax.set_ylabel("fraction of registrations")
    n = r.scen["latency"]["params"]
    ax.set_title(
        f"Registration latency, {n['producers']} threads × {n['per_producer']:,}, pooled over "
        f"{r.reps} repetitions\n(threads take turns under the GIL)",
        fontsize=9,
    )
    ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    _save(r, fig, out / "py_latency.svg", "Registration latency CDF.")
    plt.close(fig)


def plot_scaling(r: Results, out: Path) -> None:
    if not r.has("scaling"):
        return
    sweep = r.sweep()
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for lid in r.loops:
        meds = [r.med("scaling", lid, f"cb_per_s_{n}") for n in sweep]
        if any(m is None for m in meds):
            continue
        ax.plot(
            sweep,
            [m / 1e6 for m in meds],
            marker="o",
            markersize=3,
            color=_colour(r, lid),
            label=r.labels[lid],
            linestyle="--" if lid in r.peers else "-",
            linewidth=1.2,
        )
    ax.set_yscale("log")
    _plain_log(ax)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sweep)
    ax.set_xticklabels([str(n) for n in sweep])
    ax.set_xlabel("producer threads")
    ax.set_ylabel("callbacks/s (millions, log scale)")
    total = r.scen["scaling"]["params"]["total"]
    ax.set_title(
        f"Scaling: {total:,} callbacks split over the producers (medians; ranges in "
        "the table)\n"
        "threads take turns under the GIL",
        fontsize=9,
    )
    ax.grid(True, linewidth=0.3, alpha=0.5)
    ax.legend(fontsize=8, frameon=False, ncol=2)
    fig.tight_layout()
    _save(r, fig, out / "py_scaling.svg", "Scaling curves.")
    plt.close(fig)


def plot_slow(r: Results, out: Path) -> None:
    if not r.has("slow"):
        return
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    _bars(r, axes[0], "slow", "push_mean_us", "slow callbacks: mean registration", True)
    _bars(r, axes[1], "slow", "push_max_us", "slow callbacks: max registration", True)
    fig.suptitle(slow_label(r) + " (threads take turns under the GIL)", fontsize=9)
    fig.tight_layout()
    _save(r, fig, out / "py_slow.svg", "Slow-callback registration.")
    plt.close(fig)


# ---------------------------------------------------------------------------------------------


def write_all(r: Results, out: Path, plots: bool = True) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {
        "py_machine.md": machine_md(r),
        "py_summary_claims.md": claims_md(r),
        "py_phase_evolution.md": phase_evolution_md(r),
        "py_best_vs_peers.md": best_vs_peers_md(r),
        "py_counters.md": counters_md(r),
        "py_gc.md": gc_md(r),
    }
    for key in r.scen:
        if key != "scaling":
            files[f"py_{key}.md"] = scenario_md(r, key)
    if r.has("scaling"):
        files["py_scaling.md"] = scaling_md(r)
    for p in r.phases:
        files[f"py_phase_{p.replace('.', '_')}.md"] = phase_md(r, p)
    written = []
    for name, text in files.items():
        path = out / name
        path.write_text(text)
        written.append(path)
    if plots:
        for plot in (plot_bars, plot_latency, plot_scaling, plot_slow):
            plot(r, out)
        written += sorted(out.glob("py_*.svg"))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", nargs="?", type=Path, default=DEFAULT_JSON)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--no-plots", action="store_true", help="tables only (no matplotlib)")
    args = ap.parse_args(argv)
    doc = json.loads(args.json.read_text())
    try:
        source = str(args.json.resolve().relative_to(REPO))
    except ValueError:
        source = args.json.name
    r = Results(doc, source)
    written = write_all(r, args.out, plots=not args.no_plots)
    print(phase_evolution_md(r).split("\n", 1)[1])
    print(f"tables.py: wrote {len(written)} files to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
