#!/usr/bin/env python3
"""Write the book's tables and figures from a results file of `core_scenarios`.

Usage:
    python3 benchmarks/tables.py benchmarks/results/core.json --out book/src/generated

Writes, under --out:
    core_overview.md      every phase and peer, one headline figure per scenario (six columns)
    core_phase_<tag>.md   one phase against the one before it, for its chapter (tag with
                          underscores: core_phase_3_1_4.md)
    core_facts.md         single figures by anchor, for sentences of the chapters
    core_bars.svg         bar charts of the headline figures, every contender
    core_phases.md        the wide all-scenarios table (appendix)
    core_<scenario>.md    one full table per scenario (single, registration, contention,
                          latency, mixed, wakeup), for the appendix
    core_lock_hold.md     the lock counters, with working and with empty callbacks (appendix)
    core_machine.md       where and from what the results were measured

and prints the overview to stdout. Needs matplotlib for the figure (`--no-plots` skips it).
Each file opens with an HTML comment naming the command and the JSON it came from:
regenerate, never edit.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tablefmt import (  # noqa: E402
    DASH,
    DISTURBED_SHARE,
    better_in,
    fmt_count,
    fmt_ms,
    fmt_ns,
    fmt_pct,
    fmt_rate,
    fmt_ratio,
    paired_ratios,
    summary,
    table,
    versus_table,
)

Doc = dict[str, Any]
SHARE = f"{100 * DISTURBED_SHARE:.0f} %"
Fmt = Callable[[float | None], str]


# ---------------------------------------------------------------------------
# number formats


def fmt_us_of_ns(x: float | None) -> str:
    """Nanoseconds shown in microseconds (milliseconds from 1 ms)."""
    if x is None:
        return DASH
    return f"{x / 1e3:,.1f} µs" if x < 1_000_000 else f"{x / 1e6:,.2f} ms"


def fmt_bound(x: float | None) -> str:
    """An upper bound read off a power-of-two histogram."""
    return DASH if x is None else "≤ " + fmt_ns(x)


UNIT_FORMATS: dict[str, Fmt] = {
    "ns": fmt_ns,
    "ms": fmt_ms,
    "1/s": lambda x: fmt_rate(x, ""),
    "%": fmt_pct,
    "count": fmt_count,
}


class Core:
    """The results document of `core_scenarios`, with the look-ups the tables need."""

    def __init__(self, doc: Doc, source: str) -> None:
        self.doc = doc
        self.source = source
        self.scen = {s["key"]: s for s in doc["scenarios"]}
        self.contenders = list(doc["contenders"])
        self.labels = {c["id"]: c["label"] for c in self.contenders}
        self.phases = [c["id"] for c in self.contenders if c["kind"] == "phase"]
        self.reps = doc["config"]["repetitions"]

    def has(self, scen: str, contender: str | None = None) -> bool:
        s = self.scen.get(scen)
        return s is not None and (contender is None or contender in s["results"])

    def metric(self, scen: str, key: str) -> Doc:
        return next(m for m in self.scen[scen]["metrics"] if m["key"] == key)

    def value(self, scen: str, contender: str, metric: str, stat: str = "median") -> float | None:
        s = self.scen.get(scen)
        if s is None:
            return None
        cell = s["results"].get(contender, {}).get(metric)
        if cell is None:
            return None
        x = cell[stat]
        return None if x is None or (isinstance(x, float) and x != x) else float(x)

    def reps_of(self, scen: str, contender: str, metric: str) -> list[float | None]:
        cell = self.scen.get(scen, {}).get("results", {}).get(contender, {}).get(metric)
        return list(cell.get("reps", [])) if cell else []

    def fmt(self, scen: str, key: str) -> Fmt:
        if key == "callbacks_per_batch":
            return lambda x: DASH if x is None else f"{x:,.1f}"
        if key in ("hold_p50_ns", "hold_p99_ns"):
            return fmt_bound
        if scen == "wakeup":
            return fmt_us_of_ns
        return UNIT_FORMATS.get(self.metric(scen, key)["unit"], lambda x: f"{x:g}")

    def cell(self, scen: str, contender: str, metric: str) -> str:
        x = self.value(scen, contender, metric)
        return DASH if x is None else self.fmt(scen, metric)(x)

    def range_cell(self, scen: str, contender: str, metric: str) -> str:
        lo = self.value(scen, contender, metric, "min")
        hi = self.value(scen, contender, metric, "max")
        if lo is None or hi is None:
            return DASH
        f = self.fmt(scen, metric)
        return f"{f(lo)} – {f(hi)}"

    def paired(self, scen: str, metric: str, mine: str, other: str) -> list[float]:
        """Per repetition, how many times better ``mine`` did than ``other``."""
        better = self.metric(scen, metric)["better"]
        if better not in ("lower", "higher"):
            return []
        return paired_ratios(
            self.reps_of(scen, mine, metric),
            self.reps_of(scen, other, metric),
            lower_is_better=better == "lower",
        )

    def name(self, contender: str) -> str:
        label = self.labels.get(contender, contender)
        return f"**{label}**" if contender in self.phases else label

    # -- the run ------------------------------------------------------------

    def loads(self) -> list[float]:
        """Other processes' share of the CPUs (percent) during each published repetition."""
        load = self.doc.get("background_load_pct") or {}
        return [x for x in load.get("published_per_repetition", []) if x is not None]

    def disturbed(self) -> int:
        return sum(1 for x in self.loads() if x > 100 * DISTURBED_SHARE)

    def run_name(self) -> str:
        """The run, as every comparison names it."""
        m = self.doc["machine"]
        date = str(m.get("date_utc", "?")).replace("T", " ").rstrip("Z")[:16]
        return (
            f"`{self.source}`, {self.doc['config']['mode']} run of {date} UTC, commit "
            f"`{(m.get('git_commit') or '?')[:7]}`"
        )

    def reps_note(self, sliced: bool = True) -> str:
        """Where the medians come from; with `sliced`, that producers outnumber the cores."""
        cpus = self.doc["machine"].get("logical_cpus")
        note = (
            f"Run: {self.run_name()}, {cpus} cores; medians of {self.reps} repetitions"
            + self.disturbed_note()
            + f" Item: {self.doc['config']['item']}."
        )
        if sliced:
            note += f" With {cpus} cores, the producer threads (and the consumer) are time-sliced."
        return note

    def disturbed_note(self) -> str:
        n = self.disturbed()
        if not self.loads():
            return " (outside load not recorded)."
        if n == 0:
            return f", none of them disturbed (other processes under {SHARE} of the CPUs)."
        loads = ", ".join(f"{x:.0f} %" for x in self.loads() if x > 100 * DISTURBED_SHARE)
        return (
            f", {n} of them disturbed (other processes above {SHARE} of the CPUs"
            f" while they ran: {loads})."
        )


# ---------------------------------------------------------------------------
# the overview and the per-phase tables


def overview(c: Core) -> str:
    """Every contender, one headline per scenario: six columns, for the measuring chapter."""
    header = [
        "contender",
        "single thread, per callback",
        "contention, callbacks/s",
        "working callbacks: longest lock hold",
        "… longest push wait",
        "idle wake-up p50",
    ]
    rows = []
    for cont in c.contenders:
        cid = cont["id"]
        rows.append(
            [
                c.name(cid),
                c.cell("single", cid, "total_ns"),
                c.cell("contention", cid, "callbacks_per_s"),
                c.cell("lock_hold", cid, "hold_max_ns"),
                c.cell("lock_hold", cid, "push_wait_max_ns"),
                c.cell("wakeup", cid, "p50_ns"),
            ]
        )
    return (
        table(header, rows)
        + f"\n{c.reps_note()} Phases in bold; the lock-free channels have no lock to hold. "
        "Every figure of every scenario, with its range, is in the appendix "
        "([Rust-level tables](appendix/core-tables.md)).\n"
    )


# Per phase: what it is compared with, and the figures its chapter shows (scenario, metric,
# label). 3.1.1 has no phase before it; it is set beside a lock-free channel instead.
PHASE_ROWS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "3.1.1": (
        "crossbeam",
        [
            ("single", "total_ns", "single thread: push + run, per callback"),
            ("contention", "callbacks_per_s", "10 producers, no-op callbacks: callbacks/s"),
            ("lock_hold", "callbacks_per_s", "10 producers, 200 ns callbacks: callbacks/s"),
            ("latency", "p99_ns", "5 producers: p99 of one push"),
            ("wakeup", "p50_ns", "idle wake-up: p50"),
            ("wakeup", "p99_ns", "idle wake-up: p99"),
        ],
    ),
    "3.1.2": (
        "3.1.1",
        [
            ("wakeup", "p50_ns", "idle wake-up (2–3 ms gaps): p50"),
            ("wakeup", "p99_ns", "idle wake-up (2–3 ms gaps): p99"),
            ("wakeup", "mean_ns", "idle wake-up (2–3 ms gaps): mean"),
            ("contention", "callbacks_per_s", "10 producers, no-op callbacks: callbacks/s"),
            ("single", "total_ns", "single thread: push + run, per callback"),
        ],
    ),
    "3.1.3": (
        "3.1.2",
        [
            ("wakeup", "p50_ns", "idle wake-up: p50"),
            ("wakeup", "p99_ns", "idle wake-up: p99"),
            ("wakeup", "max_ns", "idle wake-up: longest"),
            ("lock_hold", "hold_max_ns", "200 ns callbacks: longest lock hold"),
            ("contention", "callbacks_per_s", "10 producers, no-op callbacks: callbacks/s"),
        ],
    ),
    "3.1.4": (
        "3.1.3",
        [
            ("lock_hold", "hold_mean_ns", "200 ns callbacks: mean lock hold"),
            ("lock_hold", "hold_max_ns", "200 ns callbacks: longest lock hold"),
            ("lock_hold", "push_wait_mean_ns", "200 ns callbacks: mean wait of a contended push"),
            ("lock_hold", "push_wait_max_ns", "200 ns callbacks: longest push wait"),
            ("lock_hold", "callbacks_per_s", "200 ns callbacks: callbacks/s"),
            ("contention", "callbacks_per_s", "no-op callbacks: callbacks/s"),
            ("registration", "pushes_per_s", "10 × 1,000 registration: pushes/s"),
            ("latency", "p99_ns", "5 × 1,000: p99 of one push"),
            ("mixed", "ops_per_s", "10 writers + the loop: ops/s"),
            ("single", "total_ns", "single thread: push + run, per callback"),
        ],
    ),
    "3.1.5": (
        "3.1.4",
        [
            ("single", "total_ns", "single thread: push + run, per callback"),
            ("single", "drain_ns", "single thread: run alone, per callback"),
            ("contention", "lock_takes", "no-op callbacks: times the loop took the lock"),
            ("contention", "hold_max_ns", "no-op callbacks: longest lock hold"),
            ("contention", "callbacks_per_s", "no-op callbacks: callbacks/s"),
            ("mixed", "ops_per_s", "10 writers + the loop: ops/s"),
        ],
    ),
    "3.2.1": (
        "3.1.5",
        [
            ("wakeup", "p50_ns", "idle wake-up: p50"),
            ("wakeup", "p99_ns", "idle wake-up: p99"),
            ("single", "total_ns", "single thread: push + run, per callback"),
            ("contention", "callbacks_per_s", "no-op callbacks: callbacks/s"),
            ("mixed", "ops_per_s", "10 writers + the loop: ops/s"),
        ],
    ),
    "3.3.1": (
        "3.2.1",
        [
            ("registration", "pushes_per_s", "10 × 1,000 registration: pushes/s"),
            ("contention", "callbacks_per_s", "no-op callbacks: callbacks/s"),
            ("mixed", "ops_per_s", "10 writers + the loop: ops/s"),
            ("single", "total_ns", "single thread: push + run, per callback"),
            ("wakeup", "p50_ns", "idle wake-up: p50"),
        ],
    ),
}


def phase_table(c: Core, phase: str) -> str:
    """One phase against the one before it: at most five columns, every row paired per
    repetition."""
    before, rows_spec = PHASE_ROWS[phase]
    # The before column is named by the contender's id ("3.1.3", "crossbeam").
    body = versus_table("figure (Rust level)", before, phase, rows_spec, c.has, c.cell, c.paired)
    return (
        body + f"\n{c.reps_note(sliced=False)} *vs*: how many times better {phase} did, paired per "
        f"repetition (median of the per-repetition ratios; below ×1 it did worse); *better in*: "
        "in how many repetitions it did better. Every contender's rows, with ranges, are in "
        "the [appendix](appendix/core-tables.md).\n"
    )


def facts(c: Core) -> str:
    """Single figures, each between `ANCHOR:` markers, for sentences in the chapters:
    `{{#include generated/core_facts.md:<phase>_<scenario>_<metric>}}` gives the median,
    `..._vs` the paired ratio against the phase before it with how often it did better,
    `..._change` the change of the median in per cent."""
    out = []

    def put(name: str, text: str) -> None:
        out.append(f"<!-- ANCHOR: {name} -->\n{text}\n<!-- ANCHOR_END: {name} -->\n")

    wanted = sorted({(s, k) for _, rows in PHASE_ROWS.values() for s, k, _ in rows})
    for phase in c.phases + ["crossbeam", "std-mpsc", "swap-all"]:
        tag = phase.replace(".", "_").replace("-", "_")
        for scen, key in wanted:
            if not c.has(scen, phase):
                continue
            put(f"{tag}_{scen}_{key}", c.cell(scen, phase, key))
            before = PHASE_ROWS.get(phase, (None, []))[0]
            if before and c.has(scen, before):
                ratios = c.paired(scen, key, phase, before)
                s = summary(ratios)
                if s:
                    put(
                        f"{tag}_{scen}_{key}_vs",
                        f"{fmt_ratio(s['median'])} (better in {better_in(ratios)} repetitions)",
                    )
                a, b = c.value(scen, phase, key), c.value(scen, before, key)
                if a is not None and b:
                    put(f"{tag}_{scen}_{key}_change", f"{100 * (a / b - 1):+.0f} %")
    put("run", c.run_name())
    put("disturbed", f"{c.disturbed()} of {c.reps}")
    return "".join(out)


# ---------------------------------------------------------------------------
# the appendix's full tables


def phases_table(c: Core) -> str:
    reg = "registration"

    def size(key: str, a: str, b: str) -> str:
        s = c.scen.get(key)
        return f"{s['params'][a]}×{s['params'][b]:,}" if s else ""

    header = [
        "contender",
        "single: per callback",
        "single: drain per cb",
        f"{size(reg, 'producers', 'per_producer')} registration: pushes/s",
        "vs 3.1.4",
        "vs crossbeam",
        f"{size('contention', 'producers', 'per_producer')} contention: callbacks/s",
        f"{size('latency', 'producers', 'per_producer')} push p99",
        f"{size('mixed', 'writers', 'per_writer')} mixed: ops/s",
        "wake-up p50",
        "wake-up p99",
    ]
    ref_414 = c.value(reg, "3.1.4", "pushes_per_s")
    ref_cb = c.value(reg, "crossbeam", "pushes_per_s")
    rows = []
    for cont in c.contenders:
        cid = cont["id"]
        mine = c.value(reg, cid, "pushes_per_s")

        def ratio(ref: float | None, mine: float | None = mine) -> str:
            return fmt_ratio(mine / ref) if mine is not None and ref else DASH

        rows.append(
            [
                c.name(cid),
                c.cell("single", cid, "total_ns"),
                c.cell("single", cid, "drain_ns"),
                c.cell(reg, cid, "pushes_per_s"),
                ratio(ref_414),
                ratio(ref_cb),
                c.cell("contention", cid, "callbacks_per_s"),
                c.cell("latency", cid, "p99_ns"),
                c.cell("mixed", cid, "ops_per_s"),
                c.cell("wakeup", cid, "p50_ns"),
                c.cell("wakeup", cid, "p99_ns"),
            ]
        )
    notes = (
        f'\n{c.reps_note()} Rates are per second; "vs" columns divide the median '
        "registration throughput by that of 3.1.4 and of crossbeam-channel in the "
        "same run. Push p99 is the time of one push. Phases in bold.\n"
    )
    return table(header, rows) + notes


# Which metrics each per-scenario table shows, and the column titles.
SCENARIO_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "single": [
        ("total_ns", "push + run, per callback"),
        ("push_ns", "push, per callback"),
        ("drain_ns", "run (drain), per callback"),
    ],
    "registration": [
        ("pushes_per_s", "pushes/s"),
        ("push_mean_ns", "mean push"),
        ("push_max_ns", "max push"),
    ],
    "contention": [
        ("callbacks_per_s", "callbacks/s"),
        ("total_ms", "all run after"),
        ("pushes_per_s", "pushes/s"),
        ("contended_pct", "contended pushes"),
        ("push_wait_mean_ns", "mean wait of a contended push"),
    ],
    "latency": [
        ("mean_ns", "mean"),
        ("p50_ns", "p50"),
        ("p95_ns", "p95"),
        ("p99_ns", "p99"),
        ("max_ns", "max"),
    ],
    "mixed": [
        ("ops_per_s", "ops/s (push + run)"),
        ("callbacks_per_s", "callbacks/s"),
        ("total_ms", "all run after"),
    ],
    "wakeup": [
        ("p50_ns", "p50"),
        ("p99_ns", "p99"),
        ("mean_ns", "mean"),
        ("max_ns", "max"),
    ],
}


def describe_params(s: Doc) -> str:
    p = s["params"]
    key = s["key"]
    inner = p.get("inner_runs")
    runs = f"; each repetition the median of {inner} runs" if inner else ""
    if key == "single":
        return f"{p['callbacks']:,} callbacks pushed by one thread, then run by it{runs}."
    if key in ("registration", "contention", "latency", "lock_hold"):
        work = p.get("work_ns", 0)
        does = f"each callback spins {work} ns" if work else "callbacks do nothing"
        return (
            f"{p['producers']} producer threads × {p['per_producer']:,} pushes, the "
            f"consumer running meanwhile; {does}{runs}."
        )
    if key == "mixed":
        return f"{p['writers']} writers × {p['per_writer']:,} pushes, one reader running{runs}."
    if key == "wakeup":
        return (
            f"{p['samples']} samples: the consumer idles, another thread waits "
            f"{p['gap_us'] / 1000:g}–{(p['gap_us'] + p['gap_spread_us']) / 1000:g} ms, "
            "pushes one callback; time until it runs."
        )
    return ""


def scenario_table(c: Core, key: str) -> str:
    s = c.scen[key]
    columns = SCENARIO_COLUMNS[key]
    head_key, head_title = columns[0]
    header = ["contender"] + [t for _, t in columns] + [f"{head_title}: range"]
    rows = []
    for cont in c.contenders:
        cid = cont["id"]
        row = [c.name(cid)]
        row += [c.cell(key, cid, k) for k, _ in columns]
        row.append(c.range_cell(key, cid, head_key))
        rows.append(row)
    whats = {m["key"]: m["what"] for m in s["metrics"]}
    legend = "\n".join(f"- *{t}*: {whats[k]}." for k, t in columns)
    return (
        f"*{s['title']}.* {describe_params(s)}\n\n"
        + table(header, rows)
        + f"\n{c.reps_note(key not in ('single', 'wakeup'))} "
        + "The range is the smallest and largest repetition.\n\n"
        + legend
        + "\n"
    )


LOCK_COLUMNS: list[tuple[str, str]] = [
    ("callbacks_per_s", "callbacks/s"),
    ("lock_takes", "lock takes"),
    ("callbacks_per_batch", "callbacks/turn"),
    ("hold_mean_ns", "hold mean"),
    ("hold_p50_ns", "hold p50 (bound)"),
    ("hold_p99_ns", "hold p99 (bound)"),
    ("hold_max_ns", "hold max"),
    ("contended_pushes", "contended pushes"),
    ("contended_pct", "share"),
    ("push_wait_mean_ns", "mean push wait"),
    ("push_wait_max_ns", "max push wait"),
]


def lock_table(c: Core, key: str) -> str:
    header = ["contender"] + [t for _, t in LOCK_COLUMNS]
    rows = []
    for cont in c.contenders:
        cid = cont["id"]
        rows.append([c.name(cid)] + [c.cell(key, cid, k) for k, _ in LOCK_COLUMNS])
    return f"{describe_params(c.scen[key])}\n\n" + table(header, rows)


def lock_hold_page(c: Core) -> str:
    parts = []
    if c.has("lock_hold"):
        parts.append(
            f"**Callbacks that work ({c.scen['lock_hold']['params']['work_ns']} ns each).** "
            + lock_table(c, "lock_hold")
        )
    if c.has("contention"):
        parts.append("**Callbacks that do nothing.** " + lock_table(c, "contention"))
    notes = (
        f"{c.reps_note()}\n\n"
        "Counters of each queue (`pyloop_core::Stats`, and the same counters kept by the "
        "`swap-all` peer); the lock-free channels have none. *Hold*: how long the consumer "
        "held the queue lock per take; p50/p99 are upper bounds read off a power-of-two "
        "histogram (capped at the max). *Lock takes*: consumer turns that took the lock; "
        "3.1.5 takes it only when its own buffer is empty, and serves the other turns "
        "without it. *Contended pushes*: pushes that found the lock taken (by the consumer "
        "or by another producer); *push wait*: how long those waited, including any time "
        "the lock holder spent descheduled.\n"
    )
    return "\n".join(parts) + "\n" + notes


def background(c: Core) -> str:
    """The share of the CPUs other processes used while the run went on."""
    load = c.doc.get("background_load_pct") or {}
    whole = load.get("whole_run")
    if whole is None:
        return "not recorded"
    published = c.loads()
    spread = (
        f"; in the published repetitions {', '.join(f'{x:.0f}' for x in published)} %"
        if published
        else ""
    )
    ran = load.get("repetitions_run")
    counts = (
        f"; {ran} repetitions run, {load.get('repetitions_published')} published" if ran else ""
    )
    loaded = " **Loaded run: read with care.**" if load.get("loaded") else ""
    return f"{whole:.0f} % of all cores over the whole run{spread}{counts}.{loaded}"


def machine_page(c: Core) -> str:
    m = c.doc["machine"]
    cfg = c.doc["config"]
    dirty = m.get("git_dirty_measured")
    rows = [
        ["CPU", str(m.get("cpu_model"))],
        ["logical CPUs", str(m.get("logical_cpus"))],
        ["OS", f"{m.get('os')} ({m.get('arch')})"],
        ["rustc", f"`{m.get('rustc')}`"],
        ["build", f"{m.get('profile')} (workspace release profile)"],
        ["crossbeam-channel", str(m.get("crossbeam_channel"))],
        ["commit", f"`{m.get('git_commit')}`"],
        [
            "measured code differs from the commit",
            "yes" if dirty else "no" if dirty is not None else "unknown",
        ],
        ["date (UTC)", str(m.get("date_utc"))],
        ["mode", f"{cfg['mode']}, {cfg['repetitions']} repetitions after a discarded warm-up"],
        ["order", cfg["order"]],
        ["item", cfg["item"]],
        ["batch limit", str(cfg["batch_limit"])],
        ["run time", f"{c.doc.get('elapsed_s', 0):.0f} s"],
        ["other processes' CPU use", background(c)],
        [
            "disturbed repetitions",
            f"{c.disturbed()} of {c.reps} (other processes above {SHARE} of the CPUs)",
        ],
        ["publishing rule", str((c.doc.get("background_load_pct") or {}).get("policy", DASH))],
        ["results file", f"`{c.source}`"],
    ]
    return table(["", ""], rows, "ll") + f"\n{m.get('note', '')}.\n"


# ---------------------------------------------------------------------------
# the figure


def bars_figure(c: Core, path: Path, comment: str) -> None:
    """Four panels of horizontal bars, every contender: the headline figures of the book."""
    import bookplot

    panels = [
        ("single", "total_ns", "One thread: push + run, per callback", "ns", False, 1.0),
        (
            "lock_hold",
            "hold_max_ns",
            "Longest lock hold (200 ns callbacks)",
            "µs, log scale",
            True,
            1e-3,
        ),
        (
            "lock_hold",
            "push_wait_max_ns",
            "Longest push wait (200 ns callbacks)",
            "ms, log scale",
            True,
            1e-6,
        ),
        ("wakeup", "p50_ns", "Idle wake-up, p50", "µs, log scale", True, 1e-3),
    ]
    ids = [cont["id"] for cont in c.contenders]
    short = [{"std-mpsc": "std mpsc"}.get(i, i) for i in ids]
    fig, axes = bookplot.figure(
        2, 2, height_in=bookplot.panel_height(len(ids), 2) + 0.3, sharey=True
    )
    for ax, (scen, key, title, unit, log, scale) in zip(axes.flat, panels, strict=True):
        vals = [c.value(scen, i, key) for i in ids]
        lows = [c.value(scen, i, key, "min") for i in ids]
        highs = [c.value(scen, i, key, "max") for i in ids]

        def sc(xs: list[float | None], scale: float = scale) -> list[float | None]:
            return [None if x is None else x * scale for x in xs]

        bookplot.hbars(
            ax,
            short,
            ids,
            sc(vals),
            sc(lows),
            sc(highs),
            title,
            unit,
            log=log,
            fmt=lambda v: f"{v:.3g}",
            missing="no lock" if scen == "lock_hold" else "not measured",
        )
    fig.suptitle(
        f"Rust level, every contender: medians of {c.reps} repetitions, whiskers min–max "
        "(lower is better)",
        x=0.01,
        ha="left",
        fontsize=bookplot.FONT_PT,
    )
    bookplot.save(fig, path, comment)


# ---------------------------------------------------------------------------
# main


def header_comment(command: str, c: Core) -> str:
    m = c.doc["machine"]
    return (
        f"<!-- Generated by `{command}` from {c.source} "
        f"({c.doc['config']['mode']} run of {m.get('date_utc')}, commit "
        f"{(m.get('git_commit') or '?')[:10]}). Do not edit: regenerate. -->\n\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="JSON written by core_scenarios")
    parser.add_argument("--out", type=Path, required=True, help="directory for the .md files")
    parser.add_argument("--no-plots", action="store_true", help="tables only (no matplotlib)")
    args = parser.parse_args(argv)

    doc = json.loads(args.results.read_text(encoding="utf-8"))
    c = Core(doc, args.results.as_posix())
    command = "python3 benchmarks/tables.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    head = header_comment(command, c)

    pages: dict[str, str] = {
        "core_overview.md": overview(c),
        "core_phases.md": phases_table(c),
        "core_facts.md": facts(c),
    }
    for phase in c.phases:
        if phase in PHASE_ROWS:
            pages[f"core_phase_{phase.replace('.', '_')}.md"] = phase_table(c, phase)
    for key in SCENARIO_COLUMNS:
        if c.has(key):
            pages[f"core_{key}.md"] = scenario_table(c, key)
    pages["core_lock_hold.md"] = lock_hold_page(c)
    pages["core_machine.md"] = machine_page(c)

    args.out.mkdir(parents=True, exist_ok=True)
    for name, body in pages.items():
        (args.out / name).write_text(head + body, encoding="utf-8")
    if not args.no_plots:
        bars_figure(c, args.out / "core_bars.svg", head.strip())
    print(pages["core_overview.md"], end="")
    written = len(pages) + (0 if args.no_plots else 1)
    print(f"\nwrote {written} files to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
