"""The method of the Python-level benchmarks, shared by every script in this folder.

One process runs every loop (stock asyncio, uvloop, rloop and each PyLoop phase) on every
selected scenario. A *repetition* is one pass over all scenarios; within it each scenario runs
every loop once, in an order rotated by one place per repetition, so that no loop always runs
first or right after the same other one. Repetition 0 is a warm-up and is discarded. Each loop
run uses a fresh event loop, closed afterwards, and starts after a ``gc.collect()`` (not timed).
A scenario whose single run is short runs ``inner`` times per repetition and the repetition keeps
the median of those runs.

Every figure is reported as the median over repetitions with its minimum and maximum, and every
per-repetition value is kept. Ratios (to asyncio, and of the best PyLoop phase to uvloop and
rloop) are *paired*: computed per repetition from values measured back to back in the same pass,
then summarised the same way. A ratio is always "times better", whichever way the metric goes:
above 1 means the first loop did better.

The GIL: Python threads never call ``call_soon_threadsafe`` in parallel. Producer threads take
turns holding the interpreter lock, so the multi-thread scenarios measure each loop's cross-thread
path with serialised producers. The queue lock under really parallel producers is measured by the
Rust-level benchmarks (``benchmarks/``; tables ``book/src/generated/core_*.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import gc
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import procfs  # noqa: E402  (benchmarks/procfs.py: the one /proc reader)

SCHEMA = 1

GIL_NOTE = (
    "Python threads register one at a time under the GIL: the multi-thread figures measure each "
    "loop's cross-thread path with producers that take turns, never the queue lock under parallel "
    "producers. For the lock itself see the Rust-level tables (book/src/generated/core_*.md, "
    "from benchmarks/results/core.json)."
)

MODES = ("full", "quick", "smoke")
#: Repetitions measured (after one warm-up pass, when ``warmup`` is 1) per mode.
REPS = {"full": 7, "quick": 3, "smoke": 1}
WARMUP = {"full": 1, "quick": 1, "smoke": 0}


# ---------------------------------------------------------------------------------------------
# loops


@dataclasses.dataclass(frozen=True)
class LoopSpec:
    """One event loop under test."""

    id: str  # "asyncio", "uvloop", "rloop", or a PyLoop phase tag such as "3.1.4"
    label: str
    kind: str  # "peer" or "phase"
    factory: Callable[[], asyncio.AbstractEventLoop]
    version: str

    @property
    def is_phase(self) -> bool:
        return self.kind == "phase"

    def new(self) -> asyncio.AbstractEventLoop:
        return self.factory()


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def all_loops() -> list[LoopSpec]:
    """Every loop, peers first: asyncio, uvloop, rloop, then the PyLoop phases, oldest first.

    A loop that cannot be imported is an error, not a silent omission: a benchmark run that
    quietly lacks a peer would publish a table with a hole. Use ``--loops`` to leave one out."""
    import pyloop
    import rloop
    import uvloop

    py = platform.python_version()
    specs = [
        LoopSpec("asyncio", "asyncio", "peer", asyncio.SelectorEventLoop, f"CPython {py}"),
        LoopSpec("uvloop", "uvloop", "peer", uvloop.new_event_loop, _version("uvloop")),
        LoopSpec("rloop", "rloop", "peer", rloop.new_event_loop, _version("rloop")),
    ]
    for tag in pyloop.phases():
        specs.append(
            LoopSpec(
                tag,
                f"pyloop {tag}",
                "phase",
                lambda tag=tag: pyloop.new_event_loop(phase=tag),
                tag,
            )
        )
    return specs


def select_loops(loops: list[LoopSpec], wanted: str | None) -> list[LoopSpec]:
    """``wanted``: comma-separated ids (``asyncio,3.1.4``) or ``pyloop`` for every phase."""
    if not wanted:
        return loops
    keys = [w.strip() for w in wanted.split(",") if w.strip()]
    chosen = [
        spec
        for spec in loops
        if spec.id in keys or (spec.is_phase and ("pyloop" in keys or f"pyloop-{spec.id}" in keys))
    ]
    known = {s.id for s in loops} | {"pyloop"} | {f"pyloop-{s.id}" for s in loops if s.is_phase}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise SystemExit(f"unknown loop(s) {unknown}: known {sorted(known)}")
    return chosen


# ---------------------------------------------------------------------------------------------
# scenarios: the declarations the scenario modules fill in


@dataclasses.dataclass(frozen=True)
class Metric:
    """One figure a scenario reports.

    ``better`` is "lower", "higher" or "" (no direction: no ratios). ``sign`` is "positive"
    (every loop must report a finite value > 0), "nonneg" (0 is a real result, e.g. a count of
    contended pushes) or "any" (e.g. a timer's lateness: a timer may fire early). ``phases_only``
    marks the PyLoop queue counters, which the peers do not have."""

    key: str
    label: str
    unit: str  # "us", "ms", "1/s", "count", "%", "x"
    better: str = "lower"
    sign: str = "positive"
    phases_only: bool = False


Params = dict[str, Any]
RunResult = dict[str, Any]  # metric key -> float; optional "_samples": list[float] (µs)


@dataclasses.dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    group: str  # "event_loop" or "scaling"
    description: str
    metrics: tuple[Metric, ...]
    headline: str  # the metric key the summary tables use
    params: dict[str, Params]  # mode -> parameters (sizes)
    run: Callable[[LoopSpec, Params], RunResult]
    multithread: bool = False
    inner: dict[str, int] = dataclasses.field(default_factory=dict)  # mode -> runs per rep

    def metric(self, key: str) -> Metric:
        return next(m for m in self.metrics if m.key == key)

    def metrics_for(self, spec: LoopSpec) -> list[Metric]:
        return [m for m in self.metrics if spec.is_phase or not m.phases_only]


# ---------------------------------------------------------------------------------------------
# helpers for scenario code


class BenchTimeout(RuntimeError):
    """A loop did not finish a scenario in time (a lost wake-up, a deadlock...)."""


def run_forever(loop: asyncio.AbstractEventLoop, limit: float = 120.0) -> None:
    """``loop.run_forever()`` with a watchdog thread that stops the loop after ``limit``
    seconds and raises :class:`BenchTimeout`. The watchdog sleeps in a condition wait and
    needs the GIL only if it fires, so it does not disturb the measurement."""
    fired: list[bool] = []

    def fire() -> None:
        fired.append(True)
        loop.call_soon_threadsafe(loop.stop)

    watchdog = threading.Timer(limit, fire)
    watchdog.daemon = True
    watchdog.start()
    try:
        loop.run_forever()
    finally:
        watchdog.cancel()
        watchdog.join()
    if fired:
        raise BenchTimeout(f"the loop did not finish within {limit:.0f} s")


def run_until_complete(loop: asyncio.AbstractEventLoop, coro: Any, limit: float = 120.0) -> Any:
    """``loop.run_until_complete(coro)`` under :func:`run_forever`'s watchdog."""
    task = loop.create_task(coro)
    task.add_done_callback(lambda _: loop.stop())
    try:
        run_forever(loop, limit)
    except BenchTimeout:
        task.cancel()
        raise
    return task.result()


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of already sorted values, by nearest rank."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def summarise(values: Sequence[float | None]) -> dict[str, Any]:
    """Median, min and max of the finite values, and every value (None where not finite)."""
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    clean = [float(v) if v is not None and math.isfinite(v) else None for v in values]
    if not kept:
        return {"median": None, "min": None, "max": None, "n": 0, "values": clean}
    return {
        "median": statistics.median(kept),
        "min": min(kept),
        "max": max(kept),
        "n": len(kept),
        "values": clean,
    }


def better_ratio(metric: Metric, mine: float | None, other: float | None) -> float | None:
    """How many times better ``mine`` is than ``other`` (> 1: mine is better)."""
    if mine is None or other is None or not metric.better:
        return None
    if metric.better == "lower":
        num, den = other, mine
    else:
        num, den = mine, other
    if den <= 0 or num < 0 or not math.isfinite(num) or not math.isfinite(den):
        return None
    return num / den


# ---------------------------------------------------------------------------------------------
# the machine record


def _run(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _cpu_model() -> str:
    return procfs.cpu_model() or platform.processor() or "?"


def handle_gc_tracked(spec: LoopSpec) -> bool:
    """Whether the loop's ``call_soon`` handles are tracked by the cyclic GC."""
    loop = spec.new()
    try:
        handle = loop.call_soon(lambda: None)
        tracked = gc.is_tracked(handle)
        handle.cancel()
    finally:
        loop.close()
    return tracked


def _clock_overhead_ns() -> float:
    pc = time.perf_counter_ns
    gaps = []
    for _ in range(10_001):
        t0 = pc()
        gaps.append(pc() - t0)
    return float(statistics.median(gaps))


def machine_record() -> dict[str, Any]:
    """Where and from what the results come: machine, interpreter, toolchain, peers, commit."""
    import pyloop

    head = _run(["git", "rev-parse", "HEAD"])
    tracked = _run(["git", "status", "--porcelain", "--untracked-files=no"])
    measured = _run(
        ["git", "status", "--porcelain", "--", "crates", "benchmarks/pyloop", "Cargo.lock"]
    )
    native = Path(pyloop._native.__file__)
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": affinity,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "python_build": platform.python_implementation() + " " + " ".join(platform.python_build()),
        "rustc": _run(["rustc", "-V"]),
        "peers": {"uvloop": _version("uvloop"), "rloop": _version("rloop")},
        "pyloop_version": pyloop.__version__,
        "pyloop_phases": list(pyloop.phases()),
        "pyloop_native": str(native.relative_to(REPO) if native.is_relative_to(REPO) else native),
        "pyloop_native_built": datetime.datetime.fromtimestamp(
            native.stat().st_mtime, datetime.UTC
        ).isoformat(timespec="seconds"),
        "git_commit": head,
        # Tracked files that differ from the commit, anywhere in the tree.
        "git_dirty": bool(tracked) if tracked is not None else None,
        # The measured code (the extension's crates, Cargo.lock, these scripts), untracked
        # files included.
        "git_dirty_measured": bool(measured) if measured is not None else None,
        # What reading the clock adds to every individually timed call (median of 10,001).
        "clock_overhead_ns": _clock_overhead_ns(),
        "gc_threshold": list(gc.get_threshold()),
        "switch_interval_s": sys.getswitchinterval(),
        "load_average_start": list(os.getloadavg()),
    }


# ---------------------------------------------------------------------------------------------
# other processes on a shared machine


def _busy_cpu_s() -> float | None:
    """CPU seconds the whole machine has been busy (all processes), from /proc/stat."""
    seconds = procfs.machine_cpu_seconds()
    return None if seconds is None else seconds[0]


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


class OthersMeter:
    """How many cores other processes kept busy while we measured (0 on an idle machine)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.t0 = time.perf_counter()
        self.busy0 = _busy_cpu_s()
        self.own0 = _own_cpu_s()

    def cores(self) -> float | None:
        busy = _busy_cpu_s()
        if busy is None or self.busy0 is None:
            return None
        wall = time.perf_counter() - self.t0
        others = (busy - self.busy0) - (_own_cpu_s() - self.own0)
        return max(0.0, others / wall) if wall > 0 else None


def wait_for_quiet(limit_s: float, threshold: float, log: Callable[[str], None]) -> float | None:
    """Waits (at most ``limit_s``) until other processes use less than ``threshold`` cores over a
    1 s sample; returns the last sample."""
    deadline = time.monotonic() + limit_s
    while True:
        meter = OthersMeter()
        time.sleep(1.0)
        others = meter.cores()
        if others is None or others < threshold or time.monotonic() >= deadline:
            if others is not None and others >= threshold:
                log(f"machine still busy ({others:.2f} cores used by others): measuring anyway")
            return others
        log(f"other processes use {others:.2f} cores: waiting for a quieter machine")
        time.sleep(2.0)


# ---------------------------------------------------------------------------------------------
# running


def _one(scenario: Scenario, spec: LoopSpec, params: Params, inner: int) -> RunResult:
    """``inner`` runs of ``scenario`` on ``spec``, each on a fresh loop; per metric the median."""
    runs: list[RunResult] = []
    for _ in range(inner):
        gc.collect()
        runs.append(scenario.run(spec, params))
    merged: RunResult = {}
    for m in scenario.metrics_for(spec):
        vals = [r[m.key] for r in runs if r.get(m.key) is not None]
        merged[m.key] = statistics.median(vals) if vals else None
    samples = [s for r in runs for s in r.get("_samples", ())]
    if samples:
        merged["_samples"] = samples
    return merged


def rotated(items: list[LoopSpec], k: int) -> list[LoopSpec]:
    k %= len(items)
    return items[k:] + items[:k]


def run_all(
    scenarios: list[Scenario],
    loops: list[LoopSpec],
    mode: str,
    reps: int,
    warmup: int,
    log: Callable[[str], None],
    wait_idle_s: float = 0.0,
) -> dict[str, Any]:
    """Runs the repetitions and returns the results document (see module docstring)."""
    started = time.perf_counter()
    # values[scenario][loop][metric] -> one value per measured repetition
    values: dict[str, dict[str, dict[str, list[float | None]]]] = {
        s.key: {spec.id: {m.key: [] for m in s.metrics_for(spec)} for spec in loops}
        for s in scenarios
    }
    samples: dict[str, dict[str, list[float]]] = {s.key: {} for s in scenarios}
    orders: list[list[str]] = []
    noise: list[dict[str, Any]] = []
    for rep in range(-warmup, reps):
        label = "warm-up" if rep < 0 else f"repetition {rep + 1}/{reps}"
        order = rotated(loops, rep + warmup)
        if rep >= 0:
            orders.append([s.id for s in order])
        before = wait_for_quiet(wait_idle_s, 0.25, log) if wait_idle_s > 0 else None
        meter = OthersMeter()
        t_rep = time.perf_counter()
        for s in scenarios:
            params = s.params[mode]
            inner = s.inner.get(mode, 1)
            for spec in order:
                try:
                    result = _one(s, spec, params, inner)
                except Exception as exc:
                    raise RuntimeError(f"{s.key} on {spec.id} ({label}) failed: {exc!r}") from exc
                if rep < 0:
                    continue
                for m in s.metrics_for(spec):
                    values[s.key][spec.id][m.key].append(result.get(m.key))
                if "_samples" in result:
                    samples[s.key].setdefault(spec.id, []).extend(result["_samples"])
        others = meter.cores()
        took = time.perf_counter() - t_rep
        noise.append(
            {
                "repetition": rep + 1 if rep >= 0 else "warm-up",
                "seconds": round(took, 2),
                "others_cores": None if others is None else round(others, 3),
                "others_cores_before": None if before is None else round(before, 3),
                "load_average": [round(x, 2) for x in os.getloadavg()],
            }
        )
        busy = f"; other processes used {others:.2f} cores" if others is not None else ""
        log(f"{label}: {took:.1f} s{busy}")

    doc_scenarios = []
    by_id = {spec.id: spec for spec in loops}
    for s in scenarios:
        results = {
            lid: {mk: summarise(v) for mk, v in per_metric.items()}
            for lid, per_metric in values[s.key].items()
        }
        entry: dict[str, Any] = {
            "key": s.key,
            "title": s.title,
            "group": s.group,
            "description": s.description,
            "multithread": s.multithread,
            "params": dict(s.params[mode], inner_runs=s.inner.get(mode, 1)),
            "headline": s.headline,
            "metrics": [dataclasses.asdict(m) for m in s.metrics],
            "results": results,
            "vs_asyncio": _vs_asyncio(s, values[s.key], by_id),
            "best_phase": _best_phase(s, values[s.key], results, by_id),
        }
        if samples[s.key]:
            entry["distribution"] = {
                lid: _quantile_grid(sorted(v)) for lid, v in samples[s.key].items()
            }
        doc_scenarios.append(entry)
    return {
        "elapsed_s": round(time.perf_counter() - started, 1),
        "orders": orders,
        # Per pass (warm-up included): how busy the rest of the machine was.
        "noise": noise,
        "scenarios": doc_scenarios,
    }


QUANTILE_GRID = [i / 200 for i in range(1, 200)] + [0.995, 0.999, 1.0]


def _quantile_grid(sorted_samples: list[float]) -> dict[str, Any]:
    """The pooled samples' quantiles (for the distribution plots) and their count."""
    return {
        "n": len(sorted_samples),
        "q": QUANTILE_GRID,
        "value": [quantile(sorted_samples, q) for q in QUANTILE_GRID],
    }


def _paired(metric: Metric, mine: list[float | None], other: list[float | None]) -> dict:
    return summarise([better_ratio(metric, a, b) for a, b in zip(mine, other, strict=True)])


def _vs_asyncio(s: Scenario, vals: dict, by_id: dict[str, LoopSpec]) -> dict[str, Any]:
    """metric -> loop -> paired ratio to asyncio (times better than asyncio)."""
    if "asyncio" not in vals:
        return {}
    out: dict[str, Any] = {}
    for m in s.metrics:
        if not m.better or m.phases_only:
            continue
        ref = vals["asyncio"][m.key]
        out[m.key] = {lid: _paired(m, per[m.key], ref) for lid, per in vals.items() if m.key in per}
    return out


def _best_phase(s: Scenario, vals: dict, results: dict, by_id: dict[str, LoopSpec]) -> dict:
    """metric -> the phase with the best median, and its paired ratios to every peer."""
    out: dict[str, Any] = {}
    phases = [lid for lid in vals if by_id[lid].is_phase]
    peers = [lid for lid in vals if not by_id[lid].is_phase]
    for m in s.metrics:
        if not m.better or m.phases_only or not phases:
            continue
        medians = {p: results[p][m.key]["median"] for p in phases}
        medians = {p: v for p, v in medians.items() if v is not None}
        if not medians:
            continue
        pick = min if m.better == "lower" else max
        best = pick(medians, key=lambda p: medians[p])
        out[m.key] = {
            "phase": best,
            "vs": {peer: _paired(m, vals[best][m.key], vals[peer][m.key]) for peer in peers},
        }
    return out


# ---------------------------------------------------------------------------------------------
# the command line


def parse_args(argv: Sequence[str] | None, prog: str, doc: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    g = ap.add_mutually_exclusive_group()
    g.add_argument(
        "--full",
        dest="mode",
        action="store_const",
        const="full",
        help="the published run: the summary's sizes, 7 repetitions",
    )
    g.add_argument(
        "--quick",
        dest="mode",
        action="store_const",
        const="quick",
        help="smaller sizes, 3 repetitions: well under two minutes (default)",
    )
    g.add_argument(
        "--smoke",
        dest="mode",
        action="store_const",
        const="smoke",
        help="tiny sizes, 1 repetition, no warm-up: checks that everything runs",
    )
    ap.set_defaults(mode="quick")
    ap.add_argument("--reps", type=int, help="measured repetitions (default: by mode)")
    ap.add_argument("--warmup", type=int, help="warm-up passes, discarded (default: by mode)")
    ap.add_argument(
        "--loops",
        help="comma-separated loop ids: asyncio,uvloop,rloop,3.1.4 or "
        "pyloop for every phase (default: all)",
    )
    ap.add_argument(
        "--scenarios", help="comma-separated scenario keys (default: all of the script's)"
    )
    ap.add_argument("--out", type=Path, help="write the results JSON here")
    ap.add_argument(
        "--wait-idle",
        type=float,
        help="before each repetition, wait at most this many seconds for other processes to "
        "use less than a quarter of a core (default: 30 in full mode, else 0)",
    )
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return ap.parse_args(argv)


def main(
    all_scenarios: Iterable[Scenario],
    argv: Sequence[str] | None = None,
    prog: str = "bench",
    doc: str = "",
    default_out: Callable[[str], Path | None] = lambda mode: None,
) -> dict[str, Any]:
    args = parse_args(argv, prog, doc)
    scenarios = list(all_scenarios)
    if args.list:
        for s in scenarios:
            print(f"{s.key:14} {s.title}")
        raise SystemExit(0)
    if args.scenarios:
        keys = [k.strip() for k in args.scenarios.split(",") if k.strip()]
        unknown = sorted(set(keys) - {s.key for s in scenarios})
        if unknown:
            raise SystemExit(f"unknown scenario(s) {unknown}: try --list")
        scenarios = [s for s in scenarios if s.key in keys]
    loops = select_loops(all_loops(), args.loops)
    mode = args.mode
    reps = args.reps if args.reps is not None else REPS[mode]
    warmup = args.warmup if args.warmup is not None else WARMUP[mode]
    if reps < 1 or warmup < 0:
        raise SystemExit("--reps must be >= 1 and --warmup >= 0")
    # Decided before measuring, so that a refusal costs nothing.
    out = args.out or default_out(mode)

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"[{prog}] {msg}", file=sys.stderr, flush=True)

    machine = machine_record()
    log(
        f"{mode} mode: {len(scenarios)} scenarios x {len(loops)} loops, {warmup} warm-up + "
        f"{reps} repetitions; load average {machine['load_average_start']}"
    )
    wait_idle = args.wait_idle if args.wait_idle is not None else (30.0 if mode == "full" else 0)
    body = run_all(scenarios, loops, mode, reps, warmup, log, wait_idle)
    machine["load_average_end"] = list(os.getloadavg())
    doc_out = {
        "schema": SCHEMA,
        "generator": f"benchmarks/pyloop/{prog}",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "config": {
            "mode": mode,
            "repetitions": reps,
            "warmup": warmup,
            "gc": "on (except where a scenario says off)",
            "order": "loops rotated by one place per repetition; each loop run on a fresh loop",
            "wait_idle_s": wait_idle,
        },
        "notes": [GIL_NOTE],
        "loops": [
            {
                "id": s.id,
                "label": s.label,
                "kind": s.kind,
                "version": s.version,
                "handle_gc_tracked": handle_gc_tracked(s),
            }
            for s in loops
        ],
        **body,
    }
    amdahl = amdahl_block(doc_out)
    if amdahl:
        doc_out["amdahl"] = amdahl
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc_out, indent=1) + "\n")
        log(f"wrote {out}")
    print_report(doc_out)
    log(f"total {body['elapsed_s']} s")
    return doc_out


def amdahl_block(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The thread-count sweep as plain lists, for the Amdahl notebook: per loop, callbacks/s
    at each producer count (median, min, max, and every repetition's value)."""
    scen = next((s for s in doc["scenarios"] if s["key"] == "scaling"), None)
    if scen is None:
        return None
    threads = [
        int(m["key"].rsplit("_", 1)[1]) for m in scen["metrics"] if m["key"].startswith("cb_")
    ]
    loops = {}
    for lid, res in scen["results"].items():
        cells = [res[f"cb_per_s_{n}"] for n in threads]
        loops[lid] = {
            "callbacks_per_s": [c["median"] for c in cells],
            "min": [c["min"] for c in cells],
            "max": [c["max"] for c in cells],
            "per_repetition": [c["values"] for c in cells],
        }
    return {
        "threads": threads,
        "total_callbacks": scen["params"]["total"],
        "note": "strong scaling: the same total split over the producers; " + GIL_NOTE,
        "loops": loops,
    }


def print_report(doc: dict[str, Any]) -> None:
    """A plain-text look at the headline figures (the book's tables come from tables.py)."""
    loops = [entry["id"] for entry in doc["loops"]]
    print(
        f"\nPython-level benchmarks, {doc['config']['mode']} mode: medians of "
        f"{doc['config']['repetitions']} repetitions [min-max]; x = times better than asyncio "
        "(paired per repetition)"
    )
    for s in doc["scenarios"]:
        metric = next(m for m in s["metrics"] if m["key"] == s["headline"])
        print(f"\n{s['title']} -- {metric['label']} ({metric['unit']})")
        ratios = s["vs_asyncio"].get(metric["key"], {})
        for lid in loops:
            cell = s["results"].get(lid, {}).get(metric["key"])
            if cell is None or cell["median"] is None:
                continue
            r = ratios.get(lid, {}).get("median")
            ratio = f"  x{r:.2f}" if r is not None else ""
            print(
                f"  {lid:8} {_num(cell['median']):>10}  [{_num(cell['min'])}-"
                f"{_num(cell['max'])}]{ratio}"
            )
        best = s["best_phase"].get(metric["key"])
        if best:
            vs = ", ".join(
                f"vs {peer} x{v['median']:.2f}"
                for peer, v in best["vs"].items()
                if v["median"] is not None
            )
            print(f"  best phase {best['phase']}: {vs}")
    print("\nNote: " + GIL_NOTE)


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.2f}M"
    if abs(x) >= 1e4:
        return f"{x / 1e3:.1f}k"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def run_script(scenarios: Iterable[Scenario], prog: str, doc: str, **kw: Any) -> None:
    """Entry point of a benchmark script: run, and exit 1 with a short message on failure."""
    try:
        main(scenarios, prog=prog, doc=doc, **kw)
    except RuntimeError as exc:
        traceback.print_exc()
        raise SystemExit(f"{prog}: {exc}") from None


__all__ = [
    "GIL_NOTE",
    "BenchTimeout",
    "LoopSpec",
    "Metric",
    "Scenario",
    "quantile",
    "run_forever",
    "run_until_complete",
    "run_script",
]
