#!/usr/bin/env python3
"""Write the book's tables and plots from a results file of the Python-level benchmarks.

    python benchmarks/pyloop/tables.py                                   # the published run
    python benchmarks/pyloop/tables.py benchmarks/results/quick/python.json --out /tmp/t
    python benchmarks/pyloop/tables.py ... --no-plots                     # tables only

Defaults: benchmarks/results/python.json -> book/src/generated/. Writes (all prefixed py_):

  for the chapters (at most six columns each)
    py_summary_claims.md    every figure of the 3.1.4 summary: "summary claimed" beside
                            "measured here" for 3.1.4 and the three peers
    py_phase_evolution.md   the summary's phase evolution table, measured
    py_phase_<tag>.md       one phase against the one before it (tag with underscores)
    py_vs_peers.md          the default phase against asyncio, uvloop and rloop, one headline
                            figure per scenario
    py_counters.md          PyLoop's queue counters after the slow-callback run
    py_gc.md                the single-thread scenario with the GC on and off
    py_synthesis.md         the closing chapter's table, with the Rust-level run (--core;
                            default: core.json beside the JSON), when there is one
    py_facts.md             single figures between ANCHOR markers, for sentences of the text
  for the appendix
    py_machine.md           where, with what and how the results were measured
    py_<scenario>.md        one table per scenario, every loop and figure
    py_best_vs_peers.md     the default phase against the peers, every figure of every scenario
    py_phase_evolution_full.md, py_counters_full.md, py_scaling.md
  plots (unless --no-plots; matplotlib)
    py_bars.svg, py_latency.svg, py_scaling.svg, py_slow.svg

and prints the phase evolution table. Every file opens with a comment naming this script and
the JSON it came from: regenerate, never edit. The same JSON gives the same files, byte for byte.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import bookplot  # noqa: E402
from tablefmt import (  # noqa: E402
    DASH,
    DISTURBED_SHARE,
    better_in,
    fmt_count,
    fmt_ms,
    fmt_pct,
    fmt_rate,
    fmt_ratio,
    fmt_us,
    paired_ratios,
    show_ratio,
    summary,
    table,
    versus_table,
)

DEFAULT_JSON = REPO / "benchmarks" / "results" / "python.json"
DEFAULT_OUT = REPO / "book" / "src" / "generated"

Doc = dict[str, Any]
SCRIPT = "benchmarks/pyloop/tables.py"

# The phase compared with the peers: the default one, which `pyloop.install()` gives. Where the
# phases do the same work (one thread), picking the best of six noisy medians would flatter us.
DEFAULT_PHASE = "3.2.1"


def gil_note(base: str = "") -> str:
    """The footnote of every multi-thread figure; the explanation is one chapter."""
    return (
        "¹ Python threads take turns under the GIL: what a multi-thread figure from Python "
        f"measures, and what it cannot, is in [The GIL and the numbers]({base}gil.md)."
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
# The summary never states its asyncio baseline; each of its "× asyncio" ratios implies one
# (per-callback time × ratio), and they disagree with each other.
IMPLIED_ASYNCIO_US = sorted(v["us"] * v["x"] for v in SUMMARY_PHASES.values())
IMPLIED_ASYNCIO = f"{IMPLIED_ASYNCIO_US[0]:.1f}–{IMPLIED_ASYNCIO_US[-1]:.1f} µs (implied)"

# (row label, claimed text, scenario, metric, note number or 0). The measured columns show
# the summary's phase (3.1.4) and the three peers, for that scenario and metric.
CLAIMS: list[tuple[str, str, str, str, int]] = [
    ("one thread: per callback", "0.298 µs", "single", "us_per_callback", 1),
    ("one thread: × asyncio", "×45.75", "single", "x_asyncio", 0),
    ("asyncio, one thread: per callback", IMPLIED_ASYNCIO, "single", "asyncio", 2),
    ("10 × 1,000 registration ¹", "2.54M/s", "registration", "pushes_per_s", 0),
    ("… longest registration ¹", "30.67 µs", "registration", "push_max_us", 0),
    ("10 × 5,000 contention ¹", "4.47M/s", "contention", "callbacks_per_s", 0),
    ("5 × 1,000 latency: p50 ¹", "0.17 µs", "latency", "p50_us", 0),
    ("5 × 1,000 latency: p99 ¹", "0.37 µs", "latency", "p99_us", 0),
    ("mixed: ops/s ¹", "6.27M/s", "mixed", "ops_per_s", 3),
    ("longest lock hold, 3.1.4 ¹", "< 10 µs", "slow", "hold_max_us", 4),
    ("uvloop, one thread", "~0.7 µs (estimated)", "single", "uvloop", 5),
    ("uvloop, contention ¹", "~1–2M/s (estimated)", "contention", "uvloop", 5),
    ("uvloop, latency p99 ¹", "~100 µs (estimated)", "latency", "uvloop_p99", 5),
    ("response latency, 3.1.4 ¹", "7 µs", "wakeup", "p50_us", 6),
]
CLAIM_NOTES = {
    1: "In PyLoop a `call_soon` on the loop's thread goes to the loop's own lane, not to the "
    "phase's queue: every phase does the same work here, and 3.1.4 stands for all of them.",
    2: 'The summary gives no asyncio figure; its four "× asyncio" ratios imply four different '
    "ones, in this range.",
    3: "Its 6.38 ms × 6.27M/s is 40,000 operations, 20,000 callbacks pushed and run, not ten "
    "writers × 20,000; here the test is ten writers × 20,000.",
    4: "Here: the longest hold in the slow-callback run (50 µs callbacks), from the counters.",
    5: "The summary's uvloop figures were estimates; the uvloop column is measured.",
    6: "Here: the wake-up of an idle loop from another thread, p50.",
}

# Metrics left out of the best-vs-peers table: rates that restate a time in the same table.
SKIP_VS = {
    ("single", "callbacks_per_s"),
    ("single_gc_off", "callbacks_per_s"),
    ("chained", "callbacks_per_s"),
    ("pingpong", "round_trips_per_s"),
    ("future_roundtrip", "round_trips_per_s"),
    ("gather", "coroutines_per_s"),
    ("registration", "callbacks_per_s"),
    ("mixed", "callbacks_per_s"),
}

# The headline figure of each scenario for the compact table against the peers.
HEADLINES: list[tuple[str, str, str]] = [
    ("single", "us_per_callback", "one thread: call_soon + run, per callback"),
    ("single_gc_off", "us_per_callback", "… with the GC off"),
    ("chained", "us_per_callback", "chained call_soon, per turn"),
    ("pingpong", "us_per_round_trip", "Future ping-pong, per round trip"),
    ("future_roundtrip", "us_per_round_trip", "create_future + call_soon(set_result) + await"),
    ("gather", "us_per_coroutine", "gather of 10k coroutines, per coroutine"),
    ("timers", "us_per_timer", "call_later timers, per timer"),
    ("scaling", "cpu_us_1", "1 producer thread: CPU per callback ¹"),
    ("scaling", "cb_per_s_1", "1 producer thread: callbacks/s ¹"),
    ("contention", "callbacks_per_s", "10 × 5k contention: callbacks/s ¹"),
    (
        "contention_explicit_context",
        "callbacks_per_s",
        "… the same with context= (no copy) ¹",
    ),
    ("latency", "p99_us", "5 × 1k registration: p99 ¹"),
    ("wakeup", "p50_us", "idle wake-up from a thread: p50 ¹"),
    ("slow", "push_mean_us", "slow callbacks: mean registration ¹"),
    ("fairness", "max_gap", "flood callbacks between two loop-thread runs ¹"),
]

# Per phase: what it is compared with, and the figures its chapter shows.
PHASE_ROWS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "3.1.1": (
        "asyncio",
        [
            ("single", "us_per_callback", "one thread: call_soon + run, per callback"),
            ("scaling", "cpu_us_1", "1 producer thread: CPU per callback ¹"),
            ("scaling", "cb_per_s_1", "1 producer thread: callbacks/s ¹"),
            ("wakeup", "p50_us", "idle wake-up from a thread: p50 ¹"),
            ("slow", "push_mean_us", "slow callbacks: mean registration ¹"),
            ("fairness", "max_gap", "flood callbacks between two loop-thread runs ¹"),
        ],
    ),
    "3.1.2": (
        "3.1.1",
        [
            ("wakeup", "p50_us", "idle wake-up from a thread: p50 ¹"),
            ("wakeup", "p99_us", "idle wake-up from a thread: p99 ¹"),
            ("scaling", "cpu_us_1", "1 producer thread: CPU per callback ¹"),
            ("scaling", "cb_per_s_1", "1 producer thread: callbacks/s ¹"),
            ("single", "us_per_callback", "one thread (same work on both)"),
        ],
    ),
    "3.1.3": (
        "3.1.2",
        [
            ("wakeup", "p50_us", "idle wake-up from a thread: p50 ¹"),
            ("wakeup", "p99_us", "idle wake-up from a thread: p99 ¹"),
            ("scaling", "cpu_us_1", "1 producer thread: CPU per callback ¹"),
            ("slow", "hold_max_us", "slow callbacks: longest lock hold ¹"),
            ("slow", "contended_pct", "slow callbacks: pushes that found it held ¹"),
        ],
    ),
    "3.1.4": (
        "3.1.3",
        [
            ("slow", "hold_max_us", "slow callbacks: longest lock hold ¹"),
            ("slow", "contended_pct", "slow callbacks: pushes that found it held ¹"),
            ("slow", "push_mean_us", "slow callbacks: mean registration ¹"),
            ("slow", "push_max_us", "slow callbacks: longest registration ¹"),
            ("scaling", "cpu_us_1", "1 producer thread: CPU per callback ¹"),
            ("mixed", "ops_per_s", "10 writers + the loop: ops/s ¹"),
            ("single", "us_per_callback", "one thread (same work on both)"),
        ],
    ),
    "3.1.5": (
        "3.1.4",
        [
            ("scaling", "cpu_us_1", "1 producer thread: CPU per callback ¹"),
            ("scaling", "cb_per_s_1", "1 producer thread: callbacks/s ¹"),
            ("contention", "callbacks_per_s", "10 × 5k contention: callbacks/s ¹"),
            ("mixed", "ops_per_s", "10 writers + the loop: ops/s ¹"),
            ("slow", "hold_max_us", "slow callbacks: longest lock hold ¹"),
        ],
    ),
    "3.2.1": (
        "3.1.5",
        [
            ("wakeup", "p50_us", "idle wake-up from a thread: p50 ¹"),
            ("wakeup", "p99_us", "idle wake-up from a thread: p99 ¹"),
            ("scaling", "cpu_us_1", "1 producer thread: CPU per callback ¹"),
            ("timers", "us_per_timer", "call_later timers, per timer"),
            ("single", "us_per_callback", "one thread (same work on both)"),
        ],
    ),
    "3.3.1": (
        "3.2.1",
        [
            ("scaling", "cb_per_s_1", "1 producer thread: callbacks/s ¹"),
            ("registration", "pushes_per_s", "10 × 1k registration: registrations/s ¹"),
            ("contention", "callbacks_per_s", "10 × 5k contention: callbacks/s ¹"),
            ("mixed", "ops_per_s", "10 writers + the loop: ops/s ¹"),
            ("wakeup", "p50_us", "idle wake-up from a thread: p50 ¹"),
        ],
    ),
}

# The closing chapter's table: what each phase is, fixed and cost, in words; the measured
# columns are computed from the results.
STORY: dict[str, tuple[str, str, str]] = {
    "3.1.1": (
        "at most 128 callbacks a turn, run under the queue lock; idle: 1 ms naps",
        "a flood from other threads can no longer starve timers, I/O and the loop's own callbacks",
        "producers wait for whole batches; a push to an idle loop waits for the nap to end",
    ),
    "3.1.2": (
        "idle: spin, yield, then sleeps doubling to 1 ms",
        "short gaps between bursts are noticed at once",
        "a spinning core; after a long idle spell it still polls at 1 ms",
    ),
    "3.1.3": (
        "idle: sleep on a condition variable, woken by the push",
        "polling, without losing a wake-up (both sides decide under the lock)",
        "a futex wake per push to a sleeping loop; batches still run under the lock",
    ),
    "3.1.4": (
        "move the batch out under the lock, run it after releasing it",
        "producers no longer wait for callbacks to run; no GIL/lock deadlock",
        "an allocation and a second pass per turn",
    ),
    "3.1.5": (
        "swap the whole queue for the loop's empty one, run 128 a turn from it",
        "3.1.4's allocation and per-item work under the lock; one lock take per queue-full",
        "callbacks taken by a swap wait in the loop's hands; memory of the largest burst",
    ),
    "3.2.1": (
        "3.1.5's queue; idle: sleep in epoll_wait, woken through an eventfd",
        "one wait for callbacks, timers and sockets: the loop can do I/O",
        "a system call per turn when sockets are open; ms timeout resolution",
    ),
    "3.3.1": (
        "producers claim a slot in a list of blocks with one compare-and-swap; no lock",
        "producers no longer wait for each other (no convoy when one is preempted)",
        "a claimed but unwritten slot stops the batch; blocks of 31 slots to manage",
    ),
}

# ---------------------------------------------------------------------------------------------
# formats (shared with the other table scripts: benchmarks/tablefmt.py)


def fmt(x: float | None, unit: str) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return DASH
    if unit == "us":
        return fmt_us(x)
    if unit == "ms":
        return fmt_ms(x)
    if unit == "1/s":
        return fmt_rate(x)
    if unit == "%":
        return fmt_pct(x)
    if unit == "count":
        return fmt_count(x)
    return f"{x:g}"


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
        self.default = DEFAULT_PHASE if DEFAULT_PHASE in self.phases else self.phases[-1]

    def sweep(self) -> list[int]:
        """The producer counts of the scaling sweep, from its metric keys."""
        keys = [m["key"] for m in self.scen["scaling"]["metrics"]]
        return [int(k.rsplit("_", 1)[1]) for k in keys if k.startswith("cb_per_s_")]

    def has(self, scen: str, loop: str | None = None) -> bool:
        s = self.scen.get(scen)
        return s is not None and (loop is None or loop in s["results"])

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
            lo, hi = fmt(c["min"], unit), fmt(c["max"], unit)
            text += f" ({lo} – {hi})"
        return text

    def ratios(self, scen: str, key: str, mine: str, other: str) -> list[float]:
        """Per repetition, how many times better ``mine`` did than ``other``."""
        a = self.cell(scen, mine, key)
        b = self.cell(scen, other, key)
        better = self.metric(scen, key)["better"] if self.has(scen) else ""
        if a is None or b is None or better not in ("lower", "higher"):
            return []
        return paired_ratios(a["values"], b["values"], lower_is_better=better == "lower")

    def paired(self, scen: str, key: str, mine: str, other: str) -> Doc | None:
        """How many times better ``mine`` is than ``other``, per repetition, summarised."""
        return summary(self.ratios(scen, key, mine, other))

    def name(self, loop: str) -> str:
        label = self.labels.get(loop, loop)
        return f"**{label}**" if loop in self.phases else label

    def short(self, loop: str) -> str:
        """A loop's name for a narrow column: the phase tag, or the peer's name."""
        return loop

    def header_comment(self, what: str = "") -> str:
        m = self.doc["machine"]
        commit = (m.get("git_commit") or "?")[:10]
        dirty = " (tree modified)" if m.get("git_dirty_measured") else ""
        extra = f" {what}" if what else ""
        return (
            f"<!-- Generated by {SCRIPT} from {self.source} ({self.mode} run "
            f"of {self.doc['date']}, commit {commit}{dirty}).{extra} Do not edit: regenerate. "
            "-->\n"
        )

    # -- the run ------------------------------------------------------------------------------

    def noise(self) -> list[tuple[int, float]]:
        """(repetition, other processes' share of all CPUs) for every measured repetition."""
        ncpu = self.doc["machine"].get("logical_cpus") or 1
        out = []
        for n in self.doc.get("noise", []):
            if n.get("repetition") == "warm-up" or n.get("others_cores") is None:
                continue
            out.append((int(n["repetition"]), n["others_cores"] / ncpu))
        return out

    def disturbed(self) -> list[tuple[int, float]]:
        return [(rep, share) for rep, share in self.noise() if share > DISTURBED_SHARE]

    def run_name(self) -> str:
        m = self.doc["machine"]
        date = str(self.doc["date"]).replace("T", " ")[:16]
        return (
            f"`{self.source}`, {self.mode} run of {date} UTC, commit "
            f"`{(m.get('git_commit') or '?')[:7]}`"
        )

    def disturbed_note(self) -> str:
        noise = self.noise()
        if not noise:
            return "Outside load was not recorded."
        bad = self.disturbed()
        limit = f"{100 * DISTURBED_SHARE:.0f} %"
        if not bad:
            return (
                f"No repetition was disturbed (other processes stayed under {limit} of the CPUs)."
            )
        which = ", ".join(f"{rep} ({100 * share:.0f} %)" for rep, share in bad)
        return (
            f"{len(bad)} of the {len(noise)} repetitions were disturbed, other processes taking "
            f"over {limit} of the CPUs: repetition {which}."
        )

    def method_note(self, brief: bool = False) -> str:
        m = self.doc["machine"]
        quick = (
            " **This is a quick run** (smaller sizes, fewer repetitions): noisy, for a look."
            if self.mode != "full"
            else ""
        )
        run = (
            f"Run: {self.run_name()}; {m.get('logical_cpus')} cores, CPython {m.get('python')}, "
            f"GC on unless stated; medians of {self.reps} repetitions. "
            + self.disturbed_note()
            + quick
        )
        if brief:
            return run
        return (
            run + " All loops run in one process, in an order rotated per repetition, warm-up "
            'discarded; ratios are paired per repetition and read "times better" (above ×1 '
            "the first loop did better)."
        )


# ---------------------------------------------------------------------------------------------
# for the chapters


def compact_pair(r: Results, phase: str, before: str, rows: list[tuple[str, str, str]]) -> str:
    return versus_table("figure (from Python)", before, phase, rows, r.has, r.show, r.ratios)


def phase_md(r: Results, phase: str) -> str:
    """One phase against the one before it, for its chapter."""
    before, rows = PHASE_ROWS.get(phase, (r.phases[0], []))
    if before not in r.loops:
        before = "asyncio"
    return (
        r.header_comment(f"Phase {phase}.")
        + compact_pair(r, phase, before, rows)
        + f"\n{r.method_note(brief=True)} *vs*: paired ratio, times better (below ×1 {phase} "
        "did worse); *better in*: in how many repetitions. Every loop's figures are in the "
        "[appendix](appendix/python-tables.md).\n\n" + gil_note() + "\n"
    )


def claims_md(r: Results) -> str:
    header = ["figure", "summary claimed", "3.1.4 here", "asyncio", "uvloop", "rloop"]
    rows = []
    notes_used: list[int] = []
    for label, claimed, scen, key, note in CLAIMS:
        if not r.has(scen):
            continue
        if note and note not in notes_used:
            notes_used.append(note)
        mark = f" [{note}]" if note else ""
        if key == "x_asyncio":
            ra = r.paired(scen, "us_per_callback", "3.1.4", "asyncio")
            rows.append([label + mark, claimed, show_ratio(ra), "×1", DASH, DASH])
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
                    label + mark,
                    claimed,
                    DASH,
                    r.show(scen, "asyncio", mkey) if peer == "asyncio" else DASH,
                    r.show(scen, "uvloop", mkey) if peer == "uvloop" else DASH,
                    DASH,
                ]
            )
            continue
        only = r.metric(scen, key)["phases_only"]
        rows.append(
            [
                label + mark,
                claimed,
                r.show(scen, "3.1.4", key),
                DASH if only else r.show(scen, "asyncio", key),
                DASH if only else r.show(scen, "uvloop", key),
                DASH if only else r.show(scen, "rloop", key),
            ]
        )
    extra = []
    if r.has("slow"):
        extra.append(
            'The summary\'s lock hold before the change, "~30–50 µs" for 3.1.3, measured the '
            f"same way: {r.show('slow', '3.1.3', 'hold_max_us')}."
        )
    if r.has("mixed"):
        gain = r.ratios("mixed", "ops_per_s", "3.1.4", "3.1.3")
        extra.append(
            'Its multi-thread gain of 3.1.4 over 3.1.3 ("2.5–3×", from its Amdahl model), '
            f"measured on mixed ops/s: {show_ratio(summary(gain))}, better in "
            f"{better_in(gain)} repetitions."
        )
    notes = "\n".join(f"{n}. {CLAIM_NOTES[n]}" for n in sorted(notes_used))
    return (
        r.header_comment()
        + table(header, rows)
        + "\n"
        + " ".join(extra)
        + "\n\n"
        + notes
        + "\n\n"
        + r.method_note()
        + " The summary's sizes are used throughout (a quick run uses smaller ones).\n\n"
        + gil_note()
        + "\n"
    )


def phase_evolution_md(r: Results) -> str:
    """The summary's phase evolution table, measured: six columns."""
    header = [
        "phase",
        "summary: one thread",
        "here: one thread",
        "1 producer thread: CPU per callback ¹",
        "slow callbacks: mean registration ¹",
        "idle wake-up p50 ¹",
    ]
    rows = []
    for p in r.phases + r.peers:
        claim = SUMMARY_PHASES.get(p)
        if claim:
            claimed = f"{claim['us']} µs (×{claim['x']:g})"
        elif p == "asyncio":
            claimed = IMPLIED_ASYNCIO
        elif p == "uvloop":
            claimed = "~0.7 µs (estimated)"
        else:
            claimed = DASH
        rows.append(
            [
                r.name(p),
                claimed,
                r.show("single", p, "us_per_callback"),
                r.show("scaling", p, "cpu_us_1"),
                r.show("slow", p, "push_mean_us"),
                r.show("wakeup", p, "p50_us"),
            ]
        )
    single_n = r.scen["single"]["params"]["callbacks"] if r.has("single") else 0
    return (
        r.header_comment()
        + table(header, rows)
        + f"\n*One thread*: {single_n:,} `call_soon` scheduled and run on one thread; in "
        "PyLoop these go to the loop's own lane, so every phase does the same work and the "
        "differences between phases are noise. *1 producer thread*: the same callbacks pushed "
        "with `call_soon_threadsafe` from one other thread, through the phase's queue; the "
        "process's CPU time per callback (waiting for a core or for the GIL does not count). "
        f"*Slow callbacks*: {slow_label(r)}. Every figure, with its range, is in the "
        "[appendix](appendix/python-tables.md). "
        + r.method_note(brief=True)
        + "\n\n"
        + gil_note()
        + "\n"
    )


def vs_peers_md(r: Results) -> str:
    """The default phase against the peers, one headline per scenario: five columns."""
    p = r.default
    header = ["figure", p, f"{p} vs asyncio", f"{p} vs uvloop", f"{p} vs rloop"]
    rows = []
    for scen, key, label in HEADLINES:
        if not r.has(scen, p):
            continue
        cells = [label, r.show(scen, p, key)]
        for peer in ("asyncio", "uvloop", "rloop"):
            ratios = r.ratios(scen, key, p, peer)
            s = summary(ratios)
            if s is None:
                cells.append(DASH)
                continue
            text = f"{fmt_ratio(s['median'])} ({better_in(ratios)})"
            cells.append(f"**{text}**" if s["median"] < 1 else text)
        rows.append(cells)
    return (
        r.header_comment()
        + table(header, rows)
        + f"\n{p} is the default phase, the one `pyloop.install()` gives. Each cell: the paired "
        f"ratio (times better; **bold** where {p} did worse) and in how many repetitions {p} "
        "did better. Every figure of every scenario is in the "
        "[appendix](appendix/python-tables.md). "
        + r.method_note(brief=True)
        + "\n\n"
        + gil_note()
        + "\n"
    )


def counters_md(r: Results) -> str:
    """The phases' counters after the slow-callback run: six columns."""
    if not r.has("slow"):
        return r.header_comment() + "(no slow-callback run in this results file)\n"
    header = [
        "phase",
        "longest lock hold",
        "pushes that found it held",
        "their mean wait",
        "their longest wait",
        "mean registration, all pushes",
    ]
    rows = []
    for p in r.phases:
        n = r.med("slow", p, "contended_pushes")
        pct = r.med("slow", p, "contended_pct")
        rows.append(
            [
                r.name(p),
                r.show("slow", p, "hold_max_us"),
                f"{fmt(n, 'count')} ({fmt(pct, '%')})" if n is not None else DASH,
                r.show("slow", p, "wait_mean_us") if n else "never waited",
                r.show("slow", p, "wait_max_us") if n else DASH,
                r.show("slow", p, "push_mean_us"),
            ]
        )
    return (
        r.header_comment()
        + table(header, rows)
        + f"\n{slow_label(r)}, from each phase's own counters (`loop._queue_stats()`), read "
        "after the run. A push that finds the lock held waits for it with the GIL released, "
        "and then for the GIL. " + r.method_note(brief=True) + "\n"
    )


def gc_md(r: Results) -> str:
    if not (r.has("single") and r.has("single_gc_off")):
        return r.header_comment() + "(no GC runs in this results file)\n"
    tracked = {e["id"]: e.get("handle_gc_tracked") for e in r.doc["loops"]}
    header = ["loop", "handles tracked", "GC on", "GC off", "GC off: × faster"]
    rows = []
    for lid in r.loops:
        on = r.cell("single", lid, "us_per_callback")
        off = r.cell("single_gc_off", lid, "us_per_callback")
        ratio = None
        if on and off:
            ratio = summary(
                [a / b for a, b in zip(on["values"], off["values"], strict=False) if a and b]
            )
        rows.append(
            [
                r.name(lid),
                {True: "yes", False: "no"}.get(tracked.get(lid), DASH),
                r.show("single", lid, "us_per_callback"),
                r.show("single_gc_off", lid, "us_per_callback"),
                show_ratio(ratio),
            ]
        )
    return (
        r.header_comment()
        + table(header, rows)
        + "\nPer callback, 50,000 `call_soon` scheduled then run on one thread; the second "
        "run of each repetition with `gc.disable()` around it, and the ratio pairs the two "
        "runs of one repetition. *Handles tracked* is checked at run time (`gc.is_tracked` on "
        "a handle). " + r.method_note(brief=True) + "\n"
    )


def _core_tables() -> Any:
    """benchmarks/tables.py as a module (its name clashes with this script's)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("core_tables", REPO / "benchmarks" / "tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthesis_md(r: Results, core: Doc | None, core_source: str) -> str | None:
    """The closing chapter's table: one row per phase, six columns."""
    if core is None:
        return None
    c = _core_tables().Core(core, core_source)

    def change(scen: str, key: str, phase: str, before: str, label: str) -> str:
        a, b = c.cell(scen, before, key), c.cell(scen, phase, key)
        ratios = c.paired(scen, key, phase, before)
        tail = f" ({better_in(ratios)})" if ratios else ""
        return f"{label} {a} → {b}{tail}"

    effects = {
        "3.1.1": lambda: (
            f"idle wake-up p50 {c.cell('wakeup', '3.1.1', 'p50_ns')}; longest lock hold "
            f"{c.cell('lock_hold', '3.1.1', 'hold_max_ns')} (200 ns callbacks)"
        ),
        "3.1.2": lambda: change("wakeup", "p50_ns", "3.1.2", "3.1.1", "wake-up p50"),
        "3.1.3": lambda: change("wakeup", "p50_ns", "3.1.3", "3.1.2", "wake-up p50"),
        "3.1.4": lambda: (
            change("lock_hold", "hold_max_ns", "3.1.4", "3.1.3", "longest hold")
            + "; "
            + change("single", "total_ns", "3.1.4", "3.1.3", "one thread")
        ),
        "3.1.5": lambda: (
            change("single", "total_ns", "3.1.5", "3.1.4", "one thread")
            + "; "
            + change("contention", "lock_takes", "3.1.5", "3.1.4", "lock takes")
        ),
        "3.2.1": lambda: change("wakeup", "p50_ns", "3.2.1", "3.1.5", "wake-up p50"),
    }

    def vs(p: str) -> str:
        parts = []
        for scen, key, what in (
            ("scaling", "cpu_us_1", "CPU per callback"),
            ("wakeup", "p50_us", "wake-up"),
        ):
            cells = []
            for peer in ("uvloop", "rloop"):
                s = summary(r.ratios(scen, key, p, peer))
                cells.append(fmt_ratio(s["median"]) if s else DASH)
            parts.append(f"{what} {', '.join(cells)}")
        return "; ".join(parts)

    header = [
        "phase",
        "idea",
        "what it fixed",
        "what it cost",
        "measured (Rust level)",
        "× uvloop, × rloop (from Python)",
    ]
    rows = []
    for p in r.phases:
        if p not in STORY:
            continue
        idea, fixed, cost = STORY[p]
        effect = effects[p]() if p in effects and c.has("single", p) else DASH
        rows.append([f"**{p}**", idea, fixed, cost, effect, vs(p)])
    return (
        r.header_comment(f"With {core_source}.")
        + table(header, rows, "llllll")
        + f"\n*Measured*: medians from {c.run_name()} ({c.reps} repetitions, {c.disturbed()} "
        "disturbed), each against the phase before it, with in brackets in how many "
        "repetitions it did better. *× uvloop, × rloop*: paired ratios, times better (below "
        "×1 PyLoop did worse), of the CPU time per callback sent from one producer thread "
        f"and of the idle wake-up p50, from {r.run_name()} ({r.reps} repetitions, "
        f"{len(r.disturbed())} disturbed).\n"
    )


def facts_md(r: Results) -> str:
    """Single figures between ANCHOR markers, for sentences of the chapters:
    `<loop>_<scenario>_<metric>` (median), `..._range`, and `<loop>_vs_<other>_<scenario>_<metric>`
    (paired ratio with how often it was better) for the pairs the tables compare."""
    out = [r.header_comment()]

    def put(name: str, text: str) -> None:
        out.append(f"<!-- ANCHOR: {name} -->\n{text}\n<!-- ANCHOR_END: {name} -->\n")

    def tag(loop: str) -> str:
        return loop.replace(".", "_").replace("-", "_")

    for s in r.doc["scenarios"]:
        for m in s["metrics"]:
            for lid in r.loops:
                if r.cell(s["key"], lid, m["key"]) is None:
                    continue
                put(f"{tag(lid)}_{s['key']}_{m['key']}", r.show(s["key"], lid, m["key"]))
                c = r.cell(s["key"], lid, m["key"])
                if c and c["n"] > 1:
                    put(
                        f"{tag(lid)}_{s['key']}_{m['key']}_range",
                        f"{fmt(c['min'], m['unit'])} – {fmt(c['max'], m['unit'])}",
                    )
            pairs = [(p, PHASE_ROWS[p][0]) for p in r.phases if p in PHASE_ROWS]
            pairs += [(r.default, peer) for peer in r.peers]
            for mine, other in pairs:
                ratios = r.ratios(s["key"], m["key"], mine, other)
                sm = summary(ratios)
                if sm:
                    put(
                        f"{tag(mine)}_vs_{tag(other)}_{s['key']}_{m['key']}",
                        f"{fmt_ratio(sm['median'])} (better in {better_in(ratios)} repetitions)",
                    )
    put("run", r.run_name())
    put("disturbed", f"{len(r.disturbed())} of {len(r.noise())}")
    put("implied_asyncio", IMPLIED_ASYNCIO.replace(" (implied)", ""))
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# for the appendix


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
        [
            "one clock read",
            f"{m.get('clock_overhead_ns', '?')} ns (in every individually timed call)",
        ],
        ["load average", f"{la0} at the start, {la1} at the end (1, 5, 15 min)"],
        ["other processes", _noise_text(r)],
        ["disturbed repetitions", r.disturbed_note()],
        ["loops", loops],
    ]
    return r.header_comment() + table(["record", "value"], rows, "ll")


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
    noise = r.noise()
    if not noise:
        return "not recorded"
    ncpu = r.doc["machine"].get("logical_cpus") or 1
    return (
        "per repetition, other processes kept busy "
        + ", ".join(f"{share * ncpu:.2f}" for _, share in noise)
        + f" of the {ncpu} cores"
    )


def phase_evolution_full_md(r: Results) -> str:
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
    for p in r.phases + r.peers:
        claim = SUMMARY_PHASES.get(p)
        claim_single = f"{claim['us']} µs (×{claim['x']:g})" if claim else DASH
        if p == "asyncio":
            claim_single = IMPLIED_ASYNCIO
        elif p == "uvloop":
            claim_single = "~0.7 µs (estimated)"
        if claim and claim.get("multi"):
            claim_multi = fmt(claim["multi"], "1/s").replace("/s", " ops/s")
        elif claim:
            claim_multi = "N/A"
        else:
            claim_multi = "~1–2M/s (estimated)" if p == "uvloop" else DASH
        one = r.med("scaling", p, "cb_per_s_1")
        rows.append(
            [
                r.name(p),
                claim_single,
                r.show("single", p, "us_per_callback", True),
                show_ratio(r.paired("single", "us_per_callback", p, "asyncio"), False),
                fmt(1e6 / one, "us") if one else DASH,
                r.show("scaling", p, "cpu_us_1"),
                r.show("registration", p, "pushes_per_s"),
                r.show("contention", p, "callbacks_per_s"),
                r.show("mixed", p, "ops_per_s"),
                claim_multi,
                r.show("slow", p, "push_mean_us"),
                r.show("slow", p, "hold_max_us") if p in r.phases else DASH,
                r.show("wakeup", p, "p50_us"),
            ]
        )
    return (
        r.header_comment()
        + table(header, rows)
        + "\n"
        + r.method_note()
        + " *1 producer thread*: wall time per callback at the 1-thread point of the scaling "
        "sweep; *its CPU time*: the process's CPU time per callback in that run. *Lock hold "
        "max*: longest time the loop held the queue lock, from the phase's counters.\n\n"
        + gil_note("../")
        + "\n"
    )


def best_vs_peers_md(r: Results) -> str:
    """The default phase against the peers, every figure of every scenario (appendix)."""
    p = r.default
    header = [
        "scenario",
        "figure",
        p,
        "asyncio",
        "uvloop",
        "rloop",
        f"{p} × asyncio",
        f"{p} × uvloop",
        f"{p} × rloop",
    ]
    rows = []
    for s in r.doc["scenarios"]:
        for m in s["metrics"]:
            if not m["better"] or m["phases_only"] or (s["key"], m["key"]) in SKIP_VS:
                continue
            if not r.has(s["key"], p):
                continue
            ratios = {peer: r.paired(s["key"], m["key"], p, peer) for peer in r.peers}
            rows.append(
                [
                    s["title"] + (" ¹" if s["multithread"] else ""),
                    m["label"] + (" (lower is better)" if m["better"] == "lower" else ""),
                    r.show(s["key"], p, m["key"]),
                    r.show(s["key"], "asyncio", m["key"]),
                    r.show(s["key"], "uvloop", m["key"]),
                    r.show(s["key"], "rloop", m["key"]),
                    _mark(show_ratio(ratios.get("asyncio")), ratios.get("asyncio")),
                    _mark(show_ratio(ratios.get("uvloop")), ratios.get("uvloop")),
                    _mark(show_ratio(ratios.get("rloop")), ratios.get("rloop")),
                ]
            )
    return (
        r.header_comment()
        + table(header, rows, "llrrrrrrr")
        + f"\n{p} is the default phase. Ratios below ×1, where it did worse, are in bold. "
        + r.method_note()
        + "\n\n"
        + gil_note("../")
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
            row.append(show_ratio(r.paired(key, vs_key, lid, "asyncio")))
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
        + r.method_note(brief=True)
    )
    if key == "fairness":
        text += (
            " PyLoop runs the loop's own ready callbacks, then at most 128 from the cross-thread "
            "queue, each turn: a callback the loop schedules for itself waits for at most 128 "
            "others. A loop that never ran it during the flood shows the whole flood as its gap."
        )
    if s["multithread"]:
        text += "\n\n" + gil_note("../")
    return text + "\n"


def counters_full_md(r: Results) -> str:
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
        "3.1.4 and later take it only to move callbacks out.\n\n" + gil_note("../") + "\n"
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
            sp = summary([x / y for x, y in zip(a["values"], b["values"], strict=False) if x and y])
        row.append(show_ratio(sp))
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
        + "\n\nCPU time per callback, all of the process's threads (loop and producers), over "
        "the same runs. Unlike the wall-clock rate above, it does not count time a thread spends "
        "waiting to be scheduled or for the GIL, so it moves much less on a busy machine:\n\n"
        + table(["loop"] + [str(n) for n in sweep], cpu_rows)
        + "\nContended pushes (share of all pushes that found the queue lock held), per phase:"
        "\n\n"
        + table(["phase"] + [str(n) for n in sweep], contended)
        + "\n"
        + gil_note("../")
        + "\n"
    )


# ---------------------------------------------------------------------------------------------
# plots


def _hbars(r: Results, ax: Any, scen: str, key: str, title: str, log: bool = False) -> None:
    loops = [lid for lid in r.loops if r.cell(scen, lid, key)]
    unit = r.metric(scen, key)["unit"]
    scale, suffix = (1e6, "M/s") if unit == "1/s" else (1, {"us": "µs", "ms": "ms"}.get(unit, ""))

    def get(stat: str) -> list[float | None]:
        out = []
        for lid in loops:
            v = r.med(scen, lid, key, stat)
            out.append(None if v is None else v / scale)
        return out

    better = "lower" if r.metric(scen, key)["better"] == "lower" else "higher"
    bookplot.hbars(
        ax,
        [lid.replace("pyloop ", "") for lid in loops],
        loops,
        get("median"),
        get("min"),
        get("max"),
        title,
        f"{suffix}{', log scale' if log else ''}; {better} is better",
        log=log,
        fmt=(lambda v: fmt_us(v).replace(" µs", "")) if unit == "us" else (lambda v: f"{v:.3g}"),
    )


def plot_bars(r: Results, out: Path) -> None:
    panels = [
        ("single", "us_per_callback", "One thread: call_soon + run", False),
        ("scaling", "cpu_us_1", "1 producer thread: CPU per callback ¹", False),
        ("contention", "callbacks_per_s", "10 × 5k contention ¹", False),
        ("wakeup", "p50_us", "Idle wake-up from a thread, p50 ¹", True),
        ("latency", "p99_us", "5 × 1k registration, p99 ¹", True),
        ("slow", "push_mean_us", "Slow callbacks: mean registration ¹", True),
    ]
    panels = [p for p in panels if r.has(p[0])]
    cols = 2
    rows = math.ceil(len(panels) / cols)
    fig, axes = bookplot.figure(
        rows, cols, height_in=bookplot.panel_height(len(r.loops), rows) + 0.4, sharey=True
    )
    for ax, (scen, key, title, log) in zip(axes.flat, panels, strict=False):
        _hbars(r, ax, scen, key, title, log)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(
        f"Every loop, medians of {r.reps} repetitions, whiskers min–max. "
        "¹ threads take turns under the GIL",
        x=0.01,
        ha="left",
        fontsize=bookplot.FONT_PT,
    )
    bookplot.save(fig, out / "py_bars.svg", r.header_comment("Per-loop bars."))


def plot_latency(r: Results, out: Path) -> None:
    """The registration latency distribution as a tail: the share of registrations slower than
    x, on log axes, so that the p99 and p99.9 are as visible as the median."""
    if not r.has("latency") or "distribution" not in r.scen["latency"]:
        return
    dist = r.scen["latency"]["distribution"]
    fig, axes = bookplot.figure(1, 1, height_in=3.6)
    ax = axes[0][0]
    for i, lid in enumerate(r.loops):
        d = dist.get(lid)
        if not d:
            continue
        pts = [(max(v, 1e-3), 1 - q) for v, q in zip(d["value"], d["q"], strict=True) if q < 1]
        ax.step(
            [p[0] for p in pts],
            [p[1] for p in pts],
            where="post",
            label=r.labels[lid].replace("pyloop ", ""),
            **{k: v for k, v in bookplot.line_style(lid, i).items() if k != "marker"},
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(5e-4, 1.05)
    bookplot.plain_log(ax, "x")
    bookplot.plain_log(ax, "y")
    ax.set_xlabel("time of one call_soon_threadsafe (µs, log scale)")
    ax.set_ylabel("share of registrations slower")
    n = r.scen["latency"]["params"]
    ax.set_title(
        f"Registration latency tail, {n['producers']} threads × {n['per_producer']:,},\n"
        f"pooled over {r.reps} repetitions (threads take turns under the GIL)"
    )
    ax.grid(True, which="major", linewidth=0.3, alpha=0.6)
    ax.axhline(0.01, color="#888888", linewidth=0.6, linestyle=":")
    ax.text(ax.get_xlim()[0] * 1.1, 0.011, "p99", fontsize=bookplot.FONT_PT - 1, color="#555555")
    ax.legend(ncol=3, frameon=False, loc="lower left")
    bookplot.save(fig, out / "py_latency.svg", r.header_comment("Registration latency tail."))


def plot_scaling(r: Results, out: Path) -> None:
    if not r.has("scaling"):
        return
    sweep = r.sweep()
    fig, axes = bookplot.figure(1, 1, height_in=3.6)
    ax = axes[0][0]
    for i, lid in enumerate(r.loops):
        meds = [r.med("scaling", lid, f"cb_per_s_{n}") for n in sweep]
        if any(m is None for m in meds):
            continue
        ax.plot(
            sweep,
            [m / 1e6 for m in meds if m is not None],
            label=r.labels[lid].replace("pyloop ", ""),
            **bookplot.line_style(lid, i),
        )
    ax.set_yscale("log")
    bookplot.plain_log(ax, "y")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sweep)
    ax.set_xticklabels([str(n) for n in sweep])
    ax.set_xlabel("producer threads")
    ax.set_ylabel("callbacks/s (millions, log scale)")
    total = r.scen["scaling"]["params"]["total"]
    ax.set_title(
        f"{total:,} callbacks split over the producers; medians (ranges in the table).\n"
        "Threads take turns under the GIL"
    )
    ax.grid(True, linewidth=0.3, alpha=0.6)
    ax.legend(fontsize=bookplot.FONT_PT - 0.5, frameon=False, ncol=3)
    bookplot.save(fig, out / "py_scaling.svg", r.header_comment("Scaling curves."))


def plot_slow(r: Results, out: Path) -> None:
    if not r.has("slow"):
        return
    fig, axes = bookplot.figure(
        1, 2, height_in=bookplot.panel_height(len(r.loops)) + 0.4, sharey=True
    )
    _hbars(r, axes[0][0], "slow", "push_mean_us", "Mean registration", True)
    _hbars(r, axes[0][1], "slow", "push_max_us", "Longest registration", True)
    fig.suptitle(
        slow_label(r) + " (threads take turns under the GIL)",
        x=0.01,
        ha="left",
        fontsize=bookplot.FONT_PT,
    )
    bookplot.save(fig, out / "py_slow.svg", r.header_comment("Slow-callback registration."))


# ---------------------------------------------------------------------------------------------


def write_all(
    r: Results, out: Path, plots: bool = True, core: Doc | None = None, core_source: str = ""
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {
        "py_machine.md": machine_md(r),
        "py_summary_claims.md": claims_md(r),
        "py_phase_evolution.md": phase_evolution_md(r),
        "py_phase_evolution_full.md": phase_evolution_full_md(r),
        "py_best_vs_peers.md": best_vs_peers_md(r),
        "py_vs_peers.md": vs_peers_md(r),
        "py_counters.md": counters_md(r),
        "py_counters_full.md": counters_full_md(r),
        "py_gc.md": gc_md(r),
        "py_facts.md": facts_md(r),
    }
    for key in r.scen:
        if key != "scaling":
            files[f"py_{key}.md"] = scenario_md(r, key)
    if r.has("scaling"):
        files["py_scaling.md"] = scaling_md(r)
    for p in r.phases:
        files[f"py_phase_{p.replace('.', '_')}.md"] = phase_md(r, p)
    synthesis = synthesis_md(r, core, core_source)
    if synthesis is not None:
        files["py_synthesis.md"] = synthesis
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


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return path.name


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", nargs="?", type=Path, default=DEFAULT_JSON)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--no-plots", action="store_true", help="tables only (no matplotlib)")
    ap.add_argument(
        "--core",
        type=Path,
        default=None,
        help="the Rust-level results for the synthesis table (default: core.json beside JSON)",
    )
    args = ap.parse_args(argv)
    doc = json.loads(args.json.read_text())
    r = Results(doc, _relative(args.json))
    core_path = args.core or args.json.parent / "core.json"
    core = json.loads(core_path.read_text()) if core_path.is_file() else None
    written = write_all(r, args.out, not args.no_plots, core, _relative(core_path))
    print(phase_evolution_md(r).split("\n", 1)[1])
    print(f"tables.py: wrote {len(written)} files to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
