#!/usr/bin/env python3
"""Where each loop spends a callback: instruction counts per function under callgrind, and
where the CPU time goes in a real cross-thread run.

    python benchmarks/profile/callgrind.py --out benchmarks/results/callgrind.json   # ~10 min
    python benchmarks/profile/callgrind.py --tables benchmarks/results/callgrind.json \\
        --book book/src/generated                                                    # tables
    python benchmarks/profile/callgrind.py --tables ... --book ... --check           # unchanged?

**Instructions** (valgrind's callgrind): each loop runs each workload of
``benchmarks/instr/workloads.py`` (``single``, ``single_gc_off``, ``threadsafe``) in its own
process, at two sizes N and 2N; everything outside the callbacks
(start-up, imports, making the loop) is the same at both sizes, so (I(2N) − I(N)) / N is the
instruction count of one callback, per function. Instruction counts do not move with the
machine's load; for one thread they repeat to within a fraction of a per cent. The cross-thread
workload is run twice: valgrind runs one thread at a time, so where it switches between the
producer and the loop can move, and the two runs show by how much.

**CPU time** (``--cpu``, with ``perf`` if installed): instructions are not time. In a real run
the producer and the loop thread share Python objects and the queue across two cores, and what
that costs (cache misses, the GIL changing hands, system calls) does not show in an instruction
count. The script runs the cross-thread workload natively, each loop in its own process, several
times, and records user and system CPU time per callback and, with ``perf record -e cpu-clock``,
the share of samples in each shared object.

The results file records the machine, versions and commit. ``--tables`` writes
``profile_*.md`` for the book. Standard library only (valgrind and perf are Debian packages).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from tablefmt import DASH, table  # noqa: E402

LOOPS = ["asyncio", "uvloop", "rloop", "3.2.1", "3.1.3"]
KINDS = ["single", "single_gc_off", "threadsafe"]
SCRIPT = "benchmarks/profile/callgrind.py"


# ---------------------------------------------------------------------------------------------
# callgrind output


def exclusive_costs(path: Path) -> tuple[int, dict[tuple[str, str, str], int]]:
    """The total and the exclusive instruction count of every (object, source file, function)
    of a callgrind output file (``positions: line``, one event)."""
    names: dict[str, dict[str, str]] = {"ob": {}, "fl": {}, "fn": {}}
    cur = {"ob": "???", "fl": "???", "fn": "???"}
    costs: dict[tuple[str, str, str], int] = defaultdict(int)
    total = 0
    skip_next = False
    compressed = re.compile(r"^\((\d+)\)(?: (.*))?$")

    def name(kind: str, value: str) -> str:
        m = compressed.match(value)
        if not m:
            return value
        ident, text = m.group(1), m.group(2)
        table_ = names["fl" if kind in ("fi", "fe") else kind]
        if text is not None:
            table_[ident] = text
        return table_.get(ident, "???")

    for line in path.read_text(errors="replace").splitlines():
        if not line or line[0] == "#":
            continue
        if line[0].isdigit() or line[0] in "+-*":
            parts = line.split()
            if len(parts) >= 2:
                if skip_next:
                    skip_next = False
                    continue
                costs[(cur["ob"], cur["fl"], cur["fn"])] += int(parts[1])
            continue
        key, _, value = line.partition("=")
        if key in ("ob", "fl", "fn"):
            cur[key] = name(key, value)
            if key == "fn":
                pass
        elif key in ("fi", "fe"):
            cur["fl"] = name(key, value)
        elif key in ("cob", "cfi", "cfl", "cfn"):
            name({"cob": "ob", "cfi": "fl", "cfl": "fl", "cfn": "fn"}[key], value)
        elif key == "calls":
            skip_next = True
        elif line.startswith("summary:") or line.startswith("totals:"):
            total = int(line.split()[1])
    return total, dict(costs)


def short_object(ob: str) -> str:
    base = os.path.basename(ob)
    if base.startswith("libpython"):
        return "libpython"
    if base.startswith("_native."):
        return "pyloop (_native)"
    if base.startswith("_rloop."):
        return "rloop (_rloop)"
    if base.startswith("loop.cpython"):
        return "uvloop (loop)"
    if base.startswith("libc.") or base.startswith("libm."):
        return "libc"
    if base.startswith("ld-linux"):
        return "ld.so"
    return "other" if base else "???"


def category(ob: str, fl: str, fn: str) -> str:
    """Where an instruction was spent, in words the book uses."""
    obj = short_object(ob)
    src = os.path.basename(fl)
    if obj == "libpython":
        if src == "gcmodule.c":
            return "CPython: cyclic GC"
        if src == "obmalloc.c":
            return "CPython: allocator"
        if src in ("context.c", "hamt.c"):
            return "CPython: contextvars"
        if src in ("ceval.c", "ceval_gil.h", "ceval_gil.c"):
            return "CPython: interpreter and GIL"
        return "CPython: other"
    if obj == "pyloop (_native)" and fn.startswith("pyloop_core::"):
        return "the phase's queue (pyloop-core)"
    if obj in ("pyloop (_native)", "rloop (_rloop)", "uvloop (loop)"):
        return "the loop's own code"
    if obj == "libc":
        return "libc (malloc, locks)"
    return "other"


def run_callgrind(loop: str, kind: str, n: int, workdir: Path) -> tuple[int, dict]:
    out = workdir / f"cg.{loop}.{kind}.{n}.out"
    cmd = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        str(REPO / "benchmarks" / "instr" / "workloads.py"),
        loop,
        kind,
        str(n),
    ]
    subprocess.run(cmd, check=True, capture_output=True, cwd=REPO, timeout=3600)
    total, costs = exclusive_costs(out)
    out.unlink()
    return total, costs


def per_callback(small: tuple[int, dict], big: tuple[int, dict], n: int) -> dict[str, Any]:
    """(I(2N) − I(N)) / N, in total, per category, per object and per function."""
    total = (big[0] - small[0]) / n
    by_fn: dict[tuple[str, str, str], float] = {}
    for key in set(small[1]) | set(big[1]):
        d = (big[1].get(key, 0) - small[1].get(key, 0)) / n
        if abs(d) >= 0.05:
            by_fn[key] = d
    by_cat: dict[str, float] = defaultdict(float)
    by_obj: dict[str, float] = defaultdict(float)
    for (ob, fl, fn), d in by_fn.items():
        by_cat[category(ob, fl, fn)] += d
        by_obj[short_object(ob)] += d
    top = sorted(by_fn.items(), key=lambda kv: -abs(kv[1]))[:40]
    return {
        "total": round(total, 1),
        "categories": {k: round(v, 1) for k, v in sorted(by_cat.items())},
        "objects": {k: round(v, 1) for k, v in sorted(by_obj.items())},
        "top": [
            {
                "object": short_object(ob),
                "file": os.path.basename(fl),
                "function": fn,
                "per_callback": round(d, 1),
            }
            for (ob, fl, fn), d in top
        ],  # fmt: skip
    }


# ---------------------------------------------------------------------------------------------
# CPU time and perf in a real run


CPU_PROBE = """
import resource, sys
sys.path.insert(0, {here!r})
import workloads
n = int(sys.argv[2])
r0 = resource.getrusage(resource.RUSAGE_SELF)
workloads.main([sys.argv[1], "threadsafe", str(n)])
r1 = resource.getrusage(resource.RUSAGE_SELF)
print((r1.ru_utime - r0.ru_utime) * 1e6 / n, (r1.ru_stime - r0.ru_stime) * 1e6 / n,
      r1.ru_nvcsw - r0.ru_nvcsw, r1.ru_nivcsw - r0.ru_nivcsw)
"""


def cpu_runs(loop: str, n: int, reps: int, workdir: Path) -> dict[str, Any]:
    probe = workdir / "cpu_probe.py"
    probe.write_text(CPU_PROBE.format(here=str(REPO / "benchmarks" / "instr")))
    user, system, vol, invol = [], [], [], []
    for _ in range(reps):
        out = subprocess.run(
            [sys.executable, str(probe), loop, str(n)],
            check=True,
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=600,
        ).stdout.split()
        user.append(float(out[0]))
        system.append(float(out[1]))
        vol.append(int(out[2]))
        invol.append(int(out[3]))
    result: dict[str, Any] = {
        "user_us": user,
        "sys_us": system,
        "voluntary_switches": vol,
        "involuntary_switches": invol,
    }
    if shutil.which("perf"):
        data = workdir / f"perf.{loop}.data"
        subprocess.run(
            ["perf", "record", "-q", "-e", "cpu-clock", "-F", "5000", "-o", str(data),
             sys.executable, str(probe), loop, str(n * 4)],
            check=True, capture_output=True, cwd=REPO, timeout=600,
        )  # fmt: skip
        report = subprocess.run(
            ["perf", "report", "-i", str(data), "--stdio", "--sort", "dso"],
            check=True, capture_output=True, text=True, timeout=600,
        ).stdout  # fmt: skip
        shares: dict[str, float] = defaultdict(float)
        for line in report.splitlines():
            m = re.match(r"\s*([\d.]+)%\s+(\S.*)$", line)
            if m:
                dso = m.group(2).strip()
                key = "kernel" if dso.startswith("[kernel") else short_object(dso)
                shares[key] += float(m.group(1))
        result["perf_dso_pct"] = {k: round(v, 1) for k, v in sorted(shares.items())}
        data.unlink(missing_ok=True)
    return result


# ---------------------------------------------------------------------------------------------
# the machine


def machine() -> dict[str, Any]:
    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "?"

    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break

    def version(pkg: str) -> str:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    status = out(["git", "-C", str(REPO), "status", "--porcelain", "--", "crates", "benchmarks"])
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "valgrind": out(["valgrind", "--version"]),
        "perf": out(["perf", "--version"]) if shutil.which("perf") else None,
        "rustc": out(["rustc", "-V"]),
        "versions": {p: version(p) for p in ("uvloop", "rloop", "pyloop")},
        "commit": out(["git", "-C", str(REPO), "rev-parse", "HEAD"]),
        "tree_differs_from_commit": bool(status),
        "load_average": list(os.getloadavg()),
    }


# ---------------------------------------------------------------------------------------------
# tables


def _n(x: float | None) -> str:
    return DASH if x is None else f"{x:,.0f}"


def tables(doc: dict[str, Any], source: str) -> dict[str, str]:
    m = doc["machine"]
    head = (
        f"<!-- Generated by {SCRIPT} from {source} (run of {m['date']}, commit "
        f"{m['commit'][:10]}). Do not edit: regenerate. -->\n\n"
    )
    loops = doc["params"]["loops"]
    n = doc["params"]["n"]
    cg = doc["callgrind"]
    differs = " (the measured code differed from it)" if m.get("tree_differs_from_commit") else ""
    run = (
        f"Run: `{source}`, {m['date'][:16].replace('T', ' ')} UTC, commit `{m['commit'][:7]}`"
        f"{differs}; "
        f"{m['valgrind']}, CPython {m['python']}, uvloop {m['versions']['uvloop']}, rloop "
        f"{m['versions']['rloop']}."
    )
    rows = []
    for lp in loops:
        c = cg[lp]
        ts = c["threadsafe"]
        rows.append(
            [
                lp,
                _n(c["single"]["total"]),
                _n(c["single_gc_off"]["total"]),
                " / ".join(_n(r["total"]) for r in ts),
            ]
        )
    summary = (
        head
        + table(
            ["loop", "one thread, GC on", "one thread, GC off", "from another thread (two runs)"],
            rows,
        )
        + f"\nInstructions per callback, (I(2N) − I(N)) / N with N = {n:,}, each loop in its "
        "own process under callgrind; `call_soon` (one thread, scheduled then run) or "
        "`call_soon_threadsafe` from one producer thread while the loop runs. " + run + "\n"
    )
    cats = sorted({k for lp in loops for k in cg[lp]["threadsafe"][0]["categories"]})
    where_rows = []
    for cat in cats:
        where_rows.append(
            [cat]
            + [_n(cg[lp]["threadsafe"][0]["categories"].get(cat)) for lp in loops if lp != "3.1.3"]
        )
    where_rows.append(
        ["**all**"]
        + [f"**{_n(cg[lp]['threadsafe'][0]['total'])}**" for lp in loops if lp != "3.1.3"]
    )
    where = (
        head
        + table(["where (cross-thread)"] + [lp for lp in loops if lp != "3.1.3"], where_rows)
        + "\nInstructions per callback sent with `call_soon_threadsafe` from one other thread, "
        "by where they were spent (the first of the two runs). *The loop's own code*: the "
        "extension module of each loop (asyncio has none: its loop is Python, counted in "
        "CPython); for PyLoop, the functions of `pyloop-core` that the compiler kept as "
        "functions are counted apart as *the phase's queue* (what it inlined into the "
        "extension's own functions stays there). " + run + "\n"
    )
    gc_rows = []
    for lp in loops:
        on = cg[lp]["single"]["categories"]
        off = cg[lp]["single_gc_off"]["categories"]
        gc_rows.append(
            [
                lp,
                _n(on.get("CPython: cyclic GC")),
                _n(off.get("CPython: cyclic GC")),
                _n(on.get("CPython: allocator")),
                _n(on.get("CPython: contextvars")),
            ]
        )
    gc_table = (
        head
        + table(["loop", "GC, GC on", "GC, GC off", "allocator", "contextvars"], gc_rows)
        + "\nInstructions per callback in the collector, the allocator and contextvars, one "
        "thread, `call_soon` then run. " + run + "\n"
    )

    def short_fn(name: str, obj: str) -> tuple[str, str]:
        """A function's name without its module path (at most 40 characters), and where it
        is: the crate for a Rust function, else the object."""
        base = re.sub(r"<[^<>]*>", "", name)  # generic arguments and trait qualifiers
        parts = [p for p in base.split("::") if p]
        where = parts[0] if len(parts) > 1 and obj.startswith("pyloop") else obj
        short = "::".join(parts[-2:]) if len(parts) > 1 else base
        return (short if len(short) <= 40 else short[:39] + "…"), where

    top_rows = []
    for lp in ("3.2.1", "rloop"):
        for f in cg[lp]["threadsafe"][0]["top"][:12]:
            fn, home = short_fn(f["function"], f["object"])
            top_rows.append([lp, f"`{fn}`", home, _n(f["per_callback"])])
    top = (
        head
        + table(["loop", "function", "in", "per callback"], top_rows, "lllr")
        + "\nThe functions with the most instructions per cross-thread callback. "
        + run
        + "\n"
    )
    cpu_rows = []
    for lp in loops:
        c = doc.get("cpu", {}).get(lp)
        if not c:
            continue
        shares = c.get("perf_dso_pct", {})
        cpu_rows.append(
            [
                lp,
                f"{statistics.median(c['user_us']):.2f}",
                f"{statistics.median(c['sys_us']):.2f}",
                f"{shares.get('libpython', 0):.0f} %" if shares else DASH,
                f"{shares.get('kernel', 0):.0f} %" if shares else DASH,
                f"{sum(v for k, v in shares.items() if k not in ('libpython', 'kernel')):.0f} %"
                if shares
                else DASH,
            ]
        )
    cpu = (
        head
        + table(
            [
                "loop",
                "user µs/callback",
                "system µs/callback",
                "in CPython",
                "in the kernel",
                "elsewhere",
            ],
            cpu_rows,
        )  # fmt: skip
        + f"\nThe cross-thread workload run natively, each loop in its own process, "
        f"{doc['params']['cpu_reps']} times ({doc['params']['cpu_n']:,} callbacks): CPU time "
        "per callback (medians), and where `perf record -e cpu-clock` found the process "
        "(all threads) in one more run. Load average at the start: "
        + ", ".join(f"{x:.2f}" for x in m["load_average"])
        + ". "
        + run
        + "\n"
    )
    facts = [head]

    def put(name: str, value: str) -> None:
        facts.append(f"<!-- ANCHOR: {name} -->\n{value}\n<!-- ANCHOR_END: {name} -->\n")

    def slug(s: str) -> str:
        return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")

    for lp in loops:
        tag = slug(lp)
        for kind in KINDS:
            entry = cg[lp][kind]
            first = entry[0] if isinstance(entry, list) else entry
            put(f"{tag}_{kind}", _n(first["total"]))
            for cat, v in first["categories"].items():
                put(f"{tag}_{kind}_{slug(cat)}", _n(v))
        c = doc.get("cpu", {}).get(lp)
        if c:
            put(f"{tag}_cpu_user", f"{statistics.median(c['user_us']):.2f}")
            put(f"{tag}_cpu_sys", f"{statistics.median(c['sys_us']):.2f}")
            per_k = [1000 * v / doc["params"]["cpu_n"] for v in c["voluntary_switches"]]
            put(f"{tag}_cpu_switches_per_1000", f"{statistics.median(per_k):.1f}")
    if "3.2.1" in cg and "rloop" in cg and doc.get("cpu", {}).get("rloop"):
        ours, theirs = doc["cpu"]["3.2.1"], doc["cpu"]["rloop"]
        put(
            "cpu_ratio_3_2_1_rloop",
            f"{statistics.median(ours['user_us']) / statistics.median(theirs['user_us']):.1f}×",
        )
        put(
            "instr_ratio_3_2_1_rloop",
            f"{cg['3.2.1']['threadsafe'][0]['total'] / cg['rloop']['threadsafe'][0]['total']:.1f}×",
        )
    put("run", run)
    return {
        "profile_facts.md": "".join(facts),
        "profile_instructions.md": summary,
        "profile_where.md": where,
        "profile_gc.md": gc_table,
        "profile_top.md": top,
        "profile_cpu.md": cpu,
    }


# ---------------------------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, Any]:
    loops = args.loops.split(",")
    doc: dict[str, Any] = {
        "schema": 1,
        "kind": "profile",
        "machine": machine(),
        "params": {
            "loops": loops,
            "n": args.n,
            "cpu_n": args.cpu_n,
            "cpu_reps": args.cpu_reps,
            "workload": "benchmarks/instr/workloads.py",
        },
        "callgrind": {},
        "cpu": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for lp in loops:
            doc["callgrind"][lp] = {}
            for kind in KINDS:
                runs = 2 if kind == "threadsafe" else 1
                results = []
                for _ in range(runs):
                    small = run_callgrind(lp, kind, args.n, work)
                    big = run_callgrind(lp, kind, 2 * args.n, work)
                    results.append(per_callback(small, big, args.n))
                    print(f"{lp} {kind}: {results[-1]['total']:.0f} instructions per callback",
                          file=sys.stderr)  # fmt: skip
                doc["callgrind"][lp][kind] = results if kind == "threadsafe" else results[0]
            if args.cpu_reps:
                doc["cpu"][lp] = cpu_runs(lp, args.cpu_n, args.cpu_reps, work)
    return doc


def before_after(before: dict[str, Any], before_source: str, after: dict, source: str) -> str:
    """PyLoop's default phase before and after a change, by category, with rloop as measured
    in the later run: where the instructions of one callback went."""
    phase = "3.2.1"
    b, a = before["callgrind"][phase], after["callgrind"][phase]
    r = after["callgrind"].get("rloop")
    kinds = [("single", "one thread, GC on"), ("threadsafe", "from another thread")]

    def entry(c: dict, kind: str) -> dict:
        e = c[kind]
        return e[0] if isinstance(e, list) else e

    cats = sorted(
        {k for c in (b, a, r) if c for kind, _ in kinds for k in entry(c, kind)["categories"]}
    )
    rows = []
    for kind, label in kinds:
        for cat in cats:
            vals = [entry(c, kind)["categories"].get(cat) if c else None for c in (b, a, r)]
            if all(v is None or abs(v) < 5 for v in vals):
                continue
            rows.append([label, cat, *(_n(v) for v in vals)])
        totals = [f"**{_n(entry(c, kind)['total'])}**" if c else DASH for c in (b, a, r)]
        rows.append([label, "**all**", *totals])
    mb, ma = before["machine"], after["machine"]
    return (
        f"<!-- Generated by {SCRIPT} from {before_source} and {source}. Do not edit: "
        "regenerate. -->\n\n"
        + table(["workload", "where", f"{phase} before", f"{phase} after", "rloop"], rows, "llrrr")
        + f"\nInstructions per callback by where they were spent, each loop in its own process "
        f"under callgrind, (I(2N) − I(N)) / N. *Before*: `{before_source}`, commit "
        f"`{mb['commit'][:7]}` (the extension of 57b79b8); *after* and rloop: `{source}`, "
        f"commit `{ma['commit'][:7]}`. The cross-thread figures are the first of two runs "
        "(valgrind runs one thread at a time, so they move a little between runs).\n"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="measure, and write the results JSON here")
    ap.add_argument("--loops", default=",".join(LOOPS))
    ap.add_argument("--n", type=int, default=20_000, help="callbacks at the smaller size")
    ap.add_argument("--cpu-n", type=int, default=96_000, help="callbacks per native run")
    ap.add_argument("--cpu-reps", type=int, default=5, help="native runs per loop (0: none)")
    ap.add_argument("--tables", type=Path, help="a results JSON to write the book's tables from")
    ap.add_argument("--book", type=Path, default=REPO / "book" / "src" / "generated")
    ap.add_argument("--check", action="store_true", help="with --tables: compare, do not write")
    ap.add_argument(
        "--before",
        type=Path,
        help="with --tables: an earlier run to compare with (profile_before_after.md), whose own "
        "tables are written as profile_before_*.md",
    )
    args = ap.parse_args()
    if args.out:
        doc = measure(args)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
        args.tables = args.tables or args.out
    if args.tables:
        doc = json.loads(args.tables.read_text())
        try:
            source = str(args.tables.resolve().relative_to(REPO))
        except ValueError:
            source = args.tables.name
        stale = []
        written = tables(doc, source)
        if args.before:
            before = json.loads(args.before.read_text())
            try:
                before_source = str(args.before.resolve().relative_to(REPO))
            except ValueError:
                before_source = args.before.name
            written["profile_before_after.md"] = before_after(before, before_source, doc, source)
            # the earlier run's own tables, for the chapter that diagnosed it
            for name, text in tables(before, before_source).items():
                written[name.replace("profile_", "profile_before_", 1)] = text
        for name, text in written.items():
            path = args.book / name
            if args.check:
                if not path.is_file() or path.read_text() != text:
                    stale.append(name)
            else:
                path.write_text(text)
        if stale:
            print(f"callgrind.py: out of date: {', '.join(stale)}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
