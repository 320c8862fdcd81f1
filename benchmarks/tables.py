#!/usr/bin/env python3
"""Write the book's markdown tables from a results file of `core_scenarios`.

Usage:
    python3 benchmarks/tables.py benchmarks/results/core.json --out book/src/generated

Writes, under --out:
    core_phases.md        every phase and peer, the headline figure of each scenario
    core_<scenario>.md    one per scenario (single, registration, contention, latency,
                          mixed, wakeup)
    core_lock_hold.md     the lock counters, with working and with empty callbacks
    core_machine.md       where and from what the results were measured

and prints the phase table to stdout. Standard library only (Python 3.11).
Each file opens with an HTML comment naming the command and the JSON it came from:
regenerate, never edit.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Doc = dict[str, Any]
Fmt = Callable[[float], str]

DASH = "—"


# ---------------------------------------------------------------------------
# number formats


def fmt_rate(x: float) -> str:
    """Items per second, as 12.3M/s or 456k/s."""
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.0f}k"
    return f"{x:.0f}"


def fmt_ns(x: float) -> str:
    """Nanoseconds: one decimal below 100 ns, whole ns below 10 µs, then µs, then ms."""
    if x < 100:
        return f"{x:.1f} ns"
    if x < 10_000:
        return f"{x:,.0f} ns"
    if x < 1_000_000:
        return f"{x / 1e3:,.1f} µs"
    return f"{x / 1e6:,.2f} ms"


def fmt_us(x: float) -> str:
    """Nanoseconds shown in microseconds (milliseconds from 1 ms)."""
    return f"{x / 1e3:,.1f} µs" if x < 1_000_000 else f"{x / 1e6:,.2f} ms"


def fmt_ms(x: float) -> str:
    return f"{x:.2f} ms"


def fmt_count(x: float) -> str:
    return f"{x:,.0f}"


def fmt_mean_count(x: float) -> str:
    return f"{x:,.1f}"


def fmt_pct(x: float) -> str:
    return f"{x:.1f} %"


def fmt_ratio(x: float) -> str:
    return f"×{x:.2f}"


UNIT_FORMATS: dict[str, Fmt] = {
    "ns": fmt_ns,
    "ms": fmt_ms,
    "1/s": fmt_rate,
    "%": fmt_pct,
    "count": fmt_count,
}


def fmt_bound(x: float) -> str:
    """An upper bound read off a power-of-two histogram."""
    return "≤ " + fmt_ns(x)


def metric_format(scenario: Doc, key: str) -> Fmt:
    if key == "callbacks_per_batch":
        return fmt_mean_count
    if key in ("hold_p50_ns", "hold_p99_ns"):
        return fmt_bound
    if scenario["key"] == "wakeup":
        return fmt_us
    unit = next(m["unit"] for m in scenario["metrics"] if m["key"] == key)
    return UNIT_FORMATS.get(unit, lambda x: f"{x:g}")


# ---------------------------------------------------------------------------
# access


def scenario(doc: Doc, key: str) -> Doc | None:
    return next((s for s in doc["scenarios"] if s["key"] == key), None)


def value(doc: Doc, scen: str, contender: str, metric: str, stat: str = "median") -> float | None:
    s = scenario(doc, scen)
    if s is None:
        return None
    cell = s["results"].get(contender, {}).get(metric)
    if cell is None:
        return None
    x = cell[stat]
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def cell(doc: Doc, scen: str, contender: str, metric: str, fmt: Fmt | None = None) -> str:
    x = value(doc, scen, contender, metric)
    if x is None:
        return DASH
    s = scenario(doc, scen)
    assert s is not None
    return (fmt or metric_format(s, metric))(x)


def range_cell(doc: Doc, scen: str, contender: str, metric: str) -> str:
    lo = value(doc, scen, contender, metric, "min")
    hi = value(doc, scen, contender, metric, "max")
    if lo is None or hi is None:
        return DASH
    s = scenario(doc, scen)
    assert s is not None
    fmt = metric_format(s, metric)
    return f"{fmt(lo)} – {fmt(hi)}"


def contenders(doc: Doc) -> list[Doc]:
    return list(doc["contenders"])


def row_name(c: Doc) -> str:
    name = c["label"].replace("|", "\\|")
    return f"**{name}**" if c["kind"] == "phase" else name


def table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    align = align or ["l"] + ["r"] * (len(header) - 1)
    marks = {"l": "---", "r": "--:", "c": ":-:"}
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(marks[a] for a in align) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def reps_note(doc: Doc, sliced: bool = True) -> str:
    """Where the medians come from; with `sliced`, that producers outnumber the cores."""
    cfg = doc["config"]
    m = doc["machine"]
    cpus = m.get("logical_cpus")
    note = (
        f"Medians of {cfg['repetitions']} repetitions ({cfg['mode']} run, item: "
        f"{cfg['item']}, {cpus} cores, commit `{(m.get('git_commit') or '?')[:10]}`)."
    )
    if sliced:
        note += f" With {cpus} cores, the producer threads (and the consumer) are time-sliced."
    return note


# ---------------------------------------------------------------------------
# tables


def phases_table(doc: Doc) -> str:
    reg = "registration"

    def size(key: str, a: str, b: str) -> str:
        s = scenario(doc, key)
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
    ref_414 = value(doc, reg, "3.1.4", "pushes_per_s")
    ref_cb = value(doc, reg, "crossbeam", "pushes_per_s")
    rows = []
    for c in contenders(doc):
        cid = c["id"]
        mine = value(doc, reg, cid, "pushes_per_s")

        def ratio(ref: float | None, mine: float | None = mine) -> str:
            return fmt_ratio(mine / ref) if mine is not None and ref else DASH

        rows.append(
            [
                row_name(c),
                cell(doc, "single", cid, "total_ns"),
                cell(doc, "single", cid, "drain_ns"),
                cell(doc, reg, cid, "pushes_per_s"),
                ratio(ref_414),
                ratio(ref_cb),
                cell(doc, "contention", cid, "callbacks_per_s"),
                cell(doc, "latency", cid, "p99_ns"),
                cell(doc, "mixed", cid, "ops_per_s"),
                cell(doc, "wakeup", cid, "p50_ns"),
                cell(doc, "wakeup", cid, "p99_ns"),
            ]
        )
    notes = (
        f'\n{reps_note(doc)} Rates are per second; "vs" columns divide the '
        "registration throughput by that of 3.1.4 and of crossbeam-channel in the "
        f"same run. Push p99 is the time of one push. Phases in bold.\n"
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


def scenario_table(doc: Doc, key: str) -> str:
    s = scenario(doc, key)
    assert s is not None
    columns = SCENARIO_COLUMNS[key]
    head_key, head_title = columns[0]
    header = ["contender"] + [t for _, t in columns] + [f"{head_title}: range"]
    rows = []
    for c in contenders(doc):
        cid = c["id"]
        row = [row_name(c)]
        row += [cell(doc, key, cid, k) for k, _ in columns]
        row.append(range_cell(doc, key, cid, head_key))
        rows.append(row)
    whats = {m["key"]: m["what"] for m in s["metrics"]}
    legend = "\n".join(f"- *{t}*: {whats[k]}." for k, t in columns)
    return (
        f"*{s['title']}.* {describe_params(s)}\n\n"
        + table(header, rows)
        + f"\n{reps_note(doc, key not in ('single', 'wakeup'))} "
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


def lock_table(doc: Doc, key: str) -> str:
    s = scenario(doc, key)
    assert s is not None
    header = ["contender"] + [t for _, t in LOCK_COLUMNS]
    rows = []
    for c in contenders(doc):
        cid = c["id"]
        rows.append([row_name(c)] + [cell(doc, key, cid, k) for k, _ in LOCK_COLUMNS])
    return f"{describe_params(s)}\n\n" + table(header, rows)


def lock_hold_page(doc: Doc) -> str:
    parts = []
    work = scenario(doc, "lock_hold")
    if work is not None:
        parts.append(
            f"**Callbacks that work ({work['params']['work_ns']} ns each).** "
            + lock_table(doc, "lock_hold")
        )
    if scenario(doc, "contention") is not None:
        parts.append("**Callbacks that do nothing.** " + lock_table(doc, "contention"))
    notes = (
        f"{reps_note(doc)}\n\n"
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


def background(doc: Doc) -> str:
    """The share of the CPUs other processes used while the run went on."""
    load = doc.get("background_load_pct") or {}
    whole = load.get("whole_run")
    if whole is None:
        return "not recorded"
    published = [x for x in load.get("published_per_repetition", []) if x is not None]
    spread = (
        f"; in the published repetitions {min(published):.0f}–{max(published):.0f} %"
        if published
        else ""
    )
    ran = load.get("repetitions_run")
    counts = (
        f"; {ran} repetitions run, {load.get('repetitions_published')} published" if ran else ""
    )
    loaded = " **Loaded run: read with care.**" if load.get("loaded") else ""
    return f"{whole:.0f} % of all cores over the whole run{spread}{counts}.{loaded}"


def machine_page(doc: Doc, json_name: str) -> str:
    m = doc["machine"]
    cfg = doc["config"]
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
        ["work tree clean", "no" if m.get("git_dirty") else "yes"],
        ["date (UTC)", str(m.get("date_utc"))],
        ["mode", f"{cfg['mode']}, {cfg['repetitions']} repetitions after a discarded warm-up"],
        ["order", cfg["order"]],
        ["item", cfg["item"]],
        ["batch limit", str(cfg["batch_limit"])],
        ["run time", f"{doc.get('elapsed_s', 0):.0f} s"],
        ["other processes' CPU use", background(doc)],
        ["publishing rule", str((doc.get("background_load_pct") or {}).get("policy", DASH))],
        ["results file", f"`{json_name}`"],
    ]
    return table(["", ""], rows, ["l", "l"]) + f"\n{m.get('note', '')}.\n"


# ---------------------------------------------------------------------------
# main


def header_comment(command: str, json_name: str, doc: Doc) -> str:
    m = doc["machine"]
    return (
        f"<!-- Generated by `{command}` from {json_name} "
        f"({doc['config']['mode']} run of {m.get('date_utc')}, commit "
        f"{(m.get('git_commit') or '?')[:10]}). Do not edit: regenerate. -->\n\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="JSON written by core_scenarios")
    parser.add_argument("--out", type=Path, required=True, help="directory for the .md files")
    args = parser.parse_args(argv)

    doc = json.loads(args.results.read_text(encoding="utf-8"))
    json_name = args.results.as_posix()
    command = "python3 benchmarks/tables.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    head = header_comment(command, json_name, doc)

    pages: dict[str, str] = {"core_phases.md": phases_table(doc)}
    for key in SCENARIO_COLUMNS:
        if scenario(doc, key) is not None:
            pages[f"core_{key}.md"] = scenario_table(doc, key)
    pages["core_lock_hold.md"] = lock_hold_page(doc)
    pages["core_machine.md"] = machine_page(doc, json_name)

    args.out.mkdir(parents=True, exist_ok=True)
    for name, body in pages.items():
        (args.out / name).write_text(head + body, encoding="utf-8")
    print(pages["core_phases.md"], end="")
    print(f"\nwrote {len(pages)} files to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
