#!/usr/bin/env python3
"""The I/O benchmarks: an echo server (raw sockets, streams, protocol) and HTTP through
uvicorn, on stock asyncio, uvloop, rloop and PyLoop 3.2.1, in one run.

    python benchmarks/io/run.py           # quick (the default), < 2 min
                                          # -> benchmarks/results/quick/io.json
    python benchmarks/io/run.py --full --out benchmarks/results/io.json
                                          # ~12 min, the published run: --full writes only
                                          # where --out says
    python benchmarks/io/tables.py benchmarks/results/io.json   # the book's tables

Method. Every measurement runs the server in its own process (``echo_server.py``, or uvicorn
with ``--loop <factory>``) and the load in another (``echo_client.py``, or wrk), both on
127.0.0.1; the machine has 2 cores, so the server and its load each get one: by default
the server is pinned to the last CPU and the load to the first (``--pin off`` leaves the
placement to the kernel, which may move them, or put both on one core, during a run). In
full mode each
repetition first waits (at most 30 s) for the machine to be quiet (under 25 % busy). A
*repetition* runs every benchmark on every loop once, in an order rotated by one place per
repetition (no loop always goes first, or right after the same other one). Figures are medians
over repetitions with their minimum and maximum; ratios are *paired*: computed within a
repetition, between runs made back to back, then their median is taken. The echo client does
its own untimed warm-up; uvicorn gets a one-second wrk warm-up before each timed run.

Each record carries the machine's load during the run: the share of both CPUs busy (from
/proc/stat), and the share used by *other* processes, that is everything but the server (its
/proc/<pid>/stat) and the load generator (its rusage): other engineers' builds share the
machine, and a run beside one is not the same experiment. The machine, versions, commit and
whether the tree differed from it go into the JSON beside the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import loops  # noqa: E402
import procfs  # noqa: E402  (benchmarks/procfs.py: the one /proc reader)

SCHEMA = 1
ECHO_MODES = ("raw", "streams", "protocol")
SIZES = (1024, 10 * 1024, 100 * 1024)
PARAMS = {
    "quick": {
        "reps": 1,
        "conns": 8,
        "round_trips": {1024: 3000, 10240: 2000, 102400: 400},
        "http_conns": 64,
        "http_seconds": 3,
        "http_warmup_seconds": 1,
        "quiet_wait_s": 0,
    },
    "full": {
        "reps": 5,
        "conns": 8,
        "round_trips": {1024: 60000, 10240: 40000, 102400: 8000},
        "http_conns": 64,
        "http_seconds": 10,
        "http_warmup_seconds": 1,
        "quiet_wait_s": 30,
    },
}
DEFAULT_LOOPS = ("asyncio", "uvloop", "rloop", "pyloop", "pyloop-asyncio-transport")
PYTHON = sys.executable


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# --- the machine --------------------------------------------------------------------------


def _cmd(*args: str) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict:
    cpu = procfs.cpu_model() or ""
    wrk = shutil.which("wrk")
    native = ""
    with contextlib.suppress(Exception):
        import hashlib

        import pyloop._native as native_module

        native = hashlib.sha256(Path(native_module.__file__).read_bytes()).hexdigest()[:16]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "rustc": _cmd("rustc", "-V"),
        "versions": {
            name: loops.version(name)
            for name in ("pyloop", "uvloop", "rloop", "uvicorn", "httptools")
        },
        "wrk": _cmd("wrk", "--version").splitlines()[0].strip() if wrk else None,
        # the extension measured (the tree may be rebuilt while a run goes on): its hash
        "pyloop_native_sha256": native,
        "commit": _cmd("git", "-C", str(REPO), "rev-parse", "HEAD"),
        "tree_differs_from_commit": bool(
            _cmd("git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no")
        ),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def _cpu_seconds() -> tuple[float, float]:
    """The machine's (busy, total) CPU seconds since boot."""
    seconds = procfs.machine_cpu_seconds()
    if seconds is None:
        raise RuntimeError("cannot read /proc/stat")
    return seconds


#: CPU sets for the server and its load (``--pin``): one core each, so that the kernel does
#: not move them onto one core, or swap them, in the middle of a run. None: not pinned.
PINS: dict[str, set[int] | None] = {"server": None, "load": None}


def _pinned(role: str):
    cpus = PINS[role]
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def run_measured(cmd: list[str], timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    """``subprocess.run`` of the load generator that also returns its CPU seconds (from
    ``wait4``)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=err, preexec_fn=_pinned("load"))
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(
            cmd, proc.returncode, out.read().decode(), err.read().decode()
        )
    return done, usage.ru_utime + usage.ru_stime


class CpuBusy:
    """The share of all CPUs busy between enter and exit (0..1), and how much of it was
    other processes': everything but the server (``pid``) and the load generator, whose
    CPU seconds the caller adds to ``ours`` before exit."""

    def __init__(self, server: Server | None = None) -> None:
        self.server = server
        self.ours = 0.0

    def __enter__(self):
        self.server0 = self.server.cpu_seconds() if self.server else 0.0
        self.start = _cpu_seconds()
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        busy, total = _cpu_seconds()
        dt = total - self.start[1]
        self.value = (busy - self.start[0]) / dt if dt > 0 else None
        self.server_cpu = 0.0
        if self.server:
            self.server_cpu = self.server.cpu_seconds() - self.server0
            self.ours += self.server_cpu
        capacity = (time.monotonic() - self.t0) * (os.cpu_count() or 1)
        busy_s = busy - self.start[0]
        self.others = max(0.0, (busy_s - self.ours) / capacity) if capacity > 0 else None
        return False


def wait_for_quiet(limit: float, threshold: float = 0.25, window: float = 0.5) -> dict:
    """Wait, at most ``limit`` seconds, until the CPUs are less than ``threshold`` busy over
    ``window`` seconds (other engineers' builds share this machine). Returns what it saw."""
    start = time.monotonic()
    busy = None
    while True:
        with CpuBusy() as probe:
            time.sleep(window)
        busy = probe.value
        waited = time.monotonic() - start
        if busy is not None and busy < threshold:
            return {"waited_s": round(waited, 1), "busy_before": busy, "quiet": True}
        if waited >= limit:
            return {"waited_s": round(waited, 1), "busy_before": busy, "quiet": False}


# --- servers ------------------------------------------------------------------------------


class Server:
    """A server process that prints ``READY <port>`` (echo) or accepts on a known port
    (uvicorn). Stopped by closing its stdin and SIGTERM; killed if it lingers."""

    def __init__(self, cmd: list[str], env: dict, port: int | None = None) -> None:
        self._err = tempfile.TemporaryFile(mode="w+")  # a pipe could fill up and block it
        self.stderr = ""
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            preexec_fn=_pinned("server"),
        )
        self.asks_cpu = port is None
        if port is None:
            line = self.proc.stdout.readline()
            if not line.startswith("READY "):
                self.stop()
                raise RuntimeError(f"server did not start: {line!r} {self.stderr}")
            port = int(line.split()[1])
        else:
            self._wait_accepting(port)
        self.port = port

    def cpu_seconds(self) -> float:
        """The server's own CPU time: asked over its stdin (echo servers, microsecond
        resolution), else read from /proc (uvicorn, 10 ms ticks)."""
        if self.asks_cpu:
            self.proc.stdin.write("cpu\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            if line.startswith("CPU "):
                return float(line.split()[1])
        return procfs.process_cpu_seconds(self.proc.pid) or 0.0

    def _wait_accepting(self, port: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"server exited: {self.stderr}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not accept on port {port} within {timeout}s")

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self._err.seek(0)
        self.stderr = self._err.read()
        self._err.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- echo ---------------------------------------------------------------------------------


def run_echo(loop_id: str, mode: str, params: dict, rep: int) -> list[dict]:
    """One server process, then one client process per message size against it."""
    server = Server(
        [PYTHON, str(HERE / "echo_server.py"), "--loop", loop_id, "--mode", mode],
        loops.server_env(loop_id),
    )
    rows = []
    try:
        for size in params["sizes"]:
            cmd = [
                PYTHON, str(HERE / "echo_client.py"), "--port", str(server.port),
                "--sizes", str(size), "--round-trips", str(params["round_trips"][size]),
                "--conns", str(params["conns"]),
            ]  # fmt: skip
            with CpuBusy(server) as busy:
                out, client_cpu = run_measured(cmd, timeout=600)
                busy.ours += client_cpu
            if out.returncode != 0:
                raise RuntimeError(f"echo client failed on {loop_id}/{mode}: {out.stderr[-2000:]}")
            result = json.loads(out.stdout)
            served = result["round_trips"] + result["warmup_round_trips"]
            rows.append(
                {
                    "loop": loop_id,
                    "mode": mode,
                    "rep": rep,
                    "cpu_busy": busy.value,
                    "cpu_others": busy.others,
                    # the server's CPU time (user + system) per round trip, warm-up included:
                    # what the loop costs, whatever the scheduling of the load was
                    "server_cpu_us": 1e6 * busy.server_cpu / served,
                    **result,
                }
            )
    finally:
        server.stop()
    return rows


# --- HTTP ---------------------------------------------------------------------------------

_WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_LAT = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_WRK_ERR = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def _wrk(port: int, conns: int, seconds: float) -> tuple[dict, float]:
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/"]
    out, cpu = run_measured(cmd, timeout=seconds + 60)
    text = out.stdout
    rps = _WRK_RPS.search(text)
    if out.returncode != 0 or rps is None:
        raise RuntimeError(f"wrk failed: {text} {out.stderr}")
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    lat = {p: float(v) * scale[u] for p, v, u in _WRK_LAT.findall(text)}
    socket_errors = _WRK_ERR.search(text)
    errors = sum(int(x) for x in socket_errors.groups()) if socket_errors else 0
    non2xx = _WRK_NON2XX.search(text)
    return {
        "requests_per_s": float(rps.group(1)),
        "p50_ms": lat.get("50"),
        "p99_ms": lat.get("99"),
        "errors": errors + (int(non2xx.group(1)) if non2xx else 0),
    }, cpu


def _python_load(port: int, conns: int, seconds: float) -> tuple[dict, float]:
    cmd = [
        PYTHON, str(HERE / "http_load.py"), "--port", str(port), "--conns", str(conns),
        "--duration", str(seconds),
    ]  # fmt: skip
    out, cpu = run_measured(cmd, timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(f"http_load failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout), cpu


def run_http(loop_id: str, params: dict, rep: int, load: str) -> dict:
    port = free_port()
    cmd = [
        PYTHON, "-m", "uvicorn", "asgi_app:app", "--app-dir", str(HERE),
        "--host", "127.0.0.1", "--port", str(port), "--loop", loops.uvicorn_loop_arg(loop_id),
        "--http", "httptools", "--no-access-log", "--log-level", "warning", "--lifespan", "off",
    ]  # fmt: skip
    server = Server(cmd, loops.server_env(loop_id), port=port)
    generate = _wrk if load == "wrk" else _python_load
    try:
        generate(port, params["http_conns"], params["http_warmup_seconds"])
        with CpuBusy(server) as busy:
            started = time.monotonic()
            result, load_cpu = generate(port, params["http_conns"], params["http_seconds"])
            wall = time.monotonic() - started
            busy.ours += load_cpu
    finally:
        server.stop()
    if "Traceback" in server.stderr:
        raise RuntimeError(f"uvicorn on {loop_id} failed: {server.stderr[-2000:]}")
    return {
        "loop": loop_id,
        "rep": rep,
        "load": load,
        "cpu_busy": busy.value,
        "cpu_others": busy.others,
        # the server's CPU time per request answered during the timed run
        "server_cpu_us": 1e6 * busy.server_cpu / max(1.0, result["requests_per_s"] * wall),
        **result,
    }


# --- summary ------------------------------------------------------------------------------


def _stats(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
        "values": values,
    }


def summarise(echo: list[dict], http: list[dict], loop_ids: list[str]) -> dict:
    """Medians per cell and paired ratios (per repetition, then the median)."""
    out: dict = {"echo": {}, "http": {}}
    pairs = [("pyloop", "asyncio"), ("pyloop", "uvloop"), ("pyloop", "rloop"),
             ("uvloop", "asyncio"), ("rloop", "asyncio"),
             ("pyloop-asyncio-transport", "asyncio"),
             ("pyloop", "pyloop-asyncio-transport")]  # fmt: skip

    def cell(rows: list[dict], metric: str) -> dict:
        per_loop = {}
        for lid in loop_ids:
            vals = [r[metric] for r in rows if r["loop"] == lid]
            if vals:
                per_loop[lid] = _stats(vals)
        ratios = {}
        for a, b in pairs:
            paired = []
            for rep in sorted({r["rep"] for r in rows}):
                va = [r[metric] for r in rows if r["loop"] == a and r["rep"] == rep]
                vb = [r[metric] for r in rows if r["loop"] == b and r["rep"] == rep]
                if va and vb:
                    paired.append(va[0] / vb[0])
            if paired:
                ratios[f"{a}/{b}"] = _stats(paired)
        return {"loops": per_loop, "ratios": ratios}

    for mode in ECHO_MODES:
        for size in SIZES:
            rows = [r for r in echo if r["mode"] == mode and r["size"] == size]
            if rows:
                out["echo"][f"{mode}/{size}"] = {
                    "round_trips_per_s": cell(rows, "round_trips_per_s"),
                    "p99_us": cell(rows, "p99_us"),
                    "server_cpu_us": cell(rows, "server_cpu_us"),
                }
    if http:
        out["http"] = {
            "requests_per_s": cell(http, "requests_per_s"),
            "p99_ms": cell(http, "p99_ms"),
            "server_cpu_us": cell(http, "server_cpu_us"),
        }
    return out


# --- main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick", action="store_const", const="quick", dest="mode", help="(the default)"
    )
    mode.add_argument(
        "--full", action="store_const", const="full", dest="mode", help="the published run"
    )
    parser.set_defaults(mode="quick")
    parser.add_argument(
        "--out",
        type=Path,
        help="results JSON (quick: benchmarks/results/quick/io.json; --full needs it)",
    )
    parser.add_argument("--loops", default=",".join(DEFAULT_LOOPS))
    parser.add_argument("--modes", default=",".join(ECHO_MODES), help="echo modes")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--reps", type=int, help="repetitions (default: by mode)")
    parser.add_argument(
        "--pin",
        choices=("on", "off"),
        default="on",
        help="pin the server to the last CPU and the load to the first (default: on when "
        "there are at least 2 CPUs)",
    )
    parser.add_argument("--no-echo", action="store_true")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument(
        "--load", choices=("wrk", "python"), help="HTTP load generator (default: wrk if installed)"
    )
    args = parser.parse_args()

    params = dict(PARAMS[args.mode])
    params["sizes"] = [int(s) for s in args.sizes.split(",")]
    if args.reps:
        params["reps"] = args.reps
    loop_ids = [lid.strip() for lid in args.loops.split(",") if lid.strip()]
    unknown = [lid for lid in loop_ids if lid not in loops.LOOPS]
    if unknown:
        raise SystemExit(f"unknown loops {unknown}: known {sorted(loops.LOOPS)}")
    modes = [m for m in args.modes.split(",") if m]
    load = args.load or ("wrk" if shutil.which("wrk") else "python")
    if args.mode == "full" and args.out is None:
        parser.error(
            "--full writes only where --out says: --out benchmarks/results/io.json replaces "
            "the published run (commit it with its tables), any other path does not"
        )
    out = args.out or REPO / "benchmarks" / "results" / "quick" / "io.json"

    cpus = sorted(os.sched_getaffinity(0))
    if args.pin == "on" and len(cpus) >= 2:
        PINS["server"], PINS["load"] = {cpus[-1]}, {cpus[0]}
    info = machine()
    log(f"io benchmarks, {args.mode} mode: loops {loop_ids}, {params['reps']} repetition(s), "
        f"HTTP load: {load}; commit {info['commit'][:12]}"
        f"{' (tree differs)' if info['tree_differs_from_commit'] else ''}")  # fmt: skip
    echo: list[dict] = []
    http: list[dict] = []
    failures: list[dict] = []
    quiet_log: list[dict] = []
    started = time.monotonic()
    for rep in range(params["reps"]):
        order = loop_ids[rep % len(loop_ids) :] + loop_ids[: rep % len(loop_ids)]
        quiet = wait_for_quiet(params["quiet_wait_s"]) if params["quiet_wait_s"] else None
        quiet_log.append({"rep": rep, **(quiet or {})})
        with open("/proc/loadavg") as f:
            loadavg = f.read().split()[0]
        log(f"-- repetition {rep + 1}/{params['reps']} (order {order}, loadavg {loadavg}, "
            f"quiet wait {quiet})")  # fmt: skip
        if not args.no_echo:
            for m in modes:
                for lid in order:
                    try:
                        rows = run_echo(lid, m, params, rep)
                    except Exception as exc:  # recorded, and the run goes on
                        failures.append({"bench": f"echo/{m}", "loop": lid, "rep": rep,
                                         "error": str(exc)[-1000:]})  # fmt: skip
                        log(f"   echo {m:8} {lid:26} FAILED: {str(exc)[-300:]}")
                        continue
                    echo.extend(rows)
                    log(f"   echo {m:8} {lid:26} " + "  ".join(
                        f"{r['size'] // 1024:>3}K {r['round_trips_per_s']:>7.0f}/s "
                        f"{r['server_cpu_us']:>5.1f}us"
                        for r in rows))  # fmt: skip
        if not args.no_http:
            for lid in order:
                try:
                    row = run_http(lid, params, rep, load)
                except Exception as exc:
                    failures.append({"bench": "http", "loop": lid, "rep": rep,
                                     "error": str(exc)[-1000:]})  # fmt: skip
                    log(f"   http {lid:26} FAILED: {str(exc)[-300:]}")
                    continue
                http.append(row)
                log(f"   http {lid:26} {row['requests_per_s']:>9.0f} req/s  "
                    f"server {row['server_cpu_us']:.1f} us/request  "
                    f"p99 {row['p99_ms']} ms  errors {row['errors']}")  # fmt: skip

    results = {
        "schema": SCHEMA,
        "kind": "io",
        "mode": args.mode,
        "machine": info,
        "seconds": round(time.monotonic() - started, 1),
        "params": {
            **params,
            "loops": loop_ids,
            "modes": modes,
            "http_load": load,
            "labels": {lid: loops.LOOPS[lid][0] for lid in loop_ids},
        },  # fmt: skip
        "skipped": [
            {"loop": lid, "what": what, "reason": reason}
            for lid in loop_ids
            for what, reason in loops.LACKS.get(lid, {}).items()
        ],
        "failures": failures,
        "quiet_waits": quiet_log,
        "echo": echo,
        "http": http,
        "summary": summarise(echo, http, loop_ids),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    log(f"wrote {out} ({results['seconds']} s)")
    if failures:
        log(f"{len(failures)} failure(s): see 'failures' in the JSON")


if __name__ == "__main__":
    main()
