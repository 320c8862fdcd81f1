"""The smoke test of an installed PyLoop: what the README's "Install and use" says works.

    python tests/wheels/smoke.py [--installed] [--version V] [CHECK ...]

Runs the named checks (default: all) with the interpreter that runs it, and exits non-zero if
any failed. ``scripts/wheels.sh`` runs it in a fresh venv per Python with only the built wheel
and ``tests/wheels/requirements.txt`` installed (``--installed``: PyLoop must come from that
venv, not from the source tree); ``tests/test_workers.py`` runs the server checks against the
development build.

Checks:
  version           pyloop.__version__ is the distribution's (and --version's) version
  metadata          name, version, license (and its file), readme, classifiers, py.typed
  readme            the README's "Install and use" Python example runs (on 3.11 without
                    its line marked "Python 3.12 and later"), and it shows the very server
                    commands the server checks below run
  asyncio_run       asyncio.run(main(), loop_factory=pyloop.new_event_loop) (3.12+),
                    pyloop.run(main()) on 3.11, where asyncio.run has no loop_factory
  runner            asyncio.Runner(loop_factory=pyloop.new_event_loop), two runs on one loop
  install           pyloop.install(), then plain asyncio.run(main())
  uvicorn           uvicorn --loop pyloop:new_event_loop serving real HTTP requests
  uvicorn_workers   uvicorn --workers 2 --loop pyloop:new_event_loop
  gunicorn_workers  gunicorn --workers 2 --worker-class pyloop.uvicorn_worker.UvicornWorker

``main()`` uses timers, tasks, a callback from another thread, the default executor and a TCP
round trip over streams. Each server check starts the server as a process on 127.0.0.1, checks
that PyLoop served every request, stops it with SIGTERM and checks that it (and, with several
workers, each worker, which records its startup and shutdown) stopped cleanly. Every wait is
bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import importlib.metadata
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import pyloop

HERE = Path(__file__).resolve().parent
README = HERE.parents[1] / "README.md"
BOUND = 60.0  # seconds: the longest any one wait may take

#: The server commands of the README's "Install and use", which the server checks run (with
#: the app of this folder, on 127.0.0.1 and a free port).
README_COMMANDS = {
    "uvicorn": "uvicorn app:app --loop pyloop:new_event_loop",
    "uvicorn_workers": "uvicorn app:app --loop pyloop:new_event_loop --workers 2",
    "gunicorn_workers": (
        "gunicorn app:app --workers 2 --worker-class pyloop.uvicorn_worker.UvicornWorker"
    ),
}


# --- the asyncio checks ---------------------------------------------------------------------


async def workload() -> str:
    """Some of everything a program does on a loop; returns the running loop's class name."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, pyloop.EventLoop), f"not a PyLoop loop: {type(loop)}"
    await asyncio.sleep(0.01)
    assert await asyncio.gather(*(asyncio.sleep(0.001, result=i) for i in range(10))) == list(
        range(10)
    )
    done = loop.create_future()
    thread = threading.Thread(
        target=lambda: loop.call_soon_threadsafe(done.set_result, "from a thread")
    )
    thread.start()
    assert await asyncio.wait_for(done, BOUND) == "from a thread"
    thread.join()
    assert await loop.run_in_executor(None, sum, [1, 2, 3]) == 6

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(100))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(100), BOUND) == b"ping"
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return f"{type(loop).__module__}.{type(loop).__qualname__}"


def check_version(expected: str | None) -> str:
    installed = importlib.metadata.version("pyloop-rs")
    assert pyloop.__version__ == installed, (pyloop.__version__, installed)
    if expected is not None:
        assert pyloop.__version__ == expected, (pyloop.__version__, expected)
    return f"pyloop {pyloop.__version__}, default phase {pyloop.DEFAULT_PHASE}"


def check_metadata() -> str:
    meta = importlib.metadata.metadata("pyloop-rs")
    assert meta["Name"] == "pyloop-rs", meta["Name"]
    assert meta["Version"] == pyloop.__version__, meta["Version"]
    assert meta["License-Expression"] == "MIT", meta["License-Expression"]
    assert meta["Requires-Python"] == ">=3.11", meta["Requires-Python"]
    content_type = meta["Description-Content-Type"] or ""
    assert content_type.startswith("text/markdown"), content_type
    assert meta.get_payload().lstrip().startswith("# PyLoop"), "the README is not the description"
    classifiers = set(meta.get_all("Classifier") or [])
    for wanted in (
        "Operating System :: POSIX :: Linux",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Typing :: Typed",
    ):
        assert wanted in classifiers, f"classifier {wanted!r} missing"
    files = {str(f) for f in importlib.metadata.files("pyloop-rs") or []}
    license_files = [f for f in files if f.endswith("/LICENSE")]
    assert license_files, f"no LICENSE among {sorted(files)}"
    licence_text = importlib.metadata.distribution("pyloop-rs").read_text(
        license_files[0].split(".dist-info/", 1)[1]
    )
    assert licence_text and "MIT License" in licence_text, license_files
    package = Path(pyloop.__file__).parent
    for typed in ("py.typed", "_native.pyi"):
        assert (package / typed).is_file(), f"{typed} missing from {package}"
    return f"{meta['Name']} {meta['Version']}, {meta['License-Expression']}, {license_files[0]}"


def readme_section() -> str:
    text = README.read_text()
    return text.split("## Install and use", 1)[1].split("\n## ", 1)[0]


def check_readme() -> str:
    section = readme_section()
    for command in README_COMMANDS.values():
        assert command in section, f"the README no longer shows {command!r}"
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    if sys.version_info < (3, 12):
        code = "\n".join(line for line in code.splitlines() if "Python 3.12 and later" not in line)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=BOUND
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    runs = [line for line in lines if line.startswith("running on EventLoop_")]
    expected_runs = 4 if sys.version_info >= (3, 12) else 3
    assert len(runs) == expected_runs, proc.stdout
    assert lines[-1] == pyloop.__version__, proc.stdout
    return f"{len(runs)} runs on {runs[0].split()[-1]}, then {lines[-1]}"


def check_installed() -> str:
    """PyLoop is imported from this interpreter's environment, not from a source tree."""
    for module in (pyloop, pyloop._native):
        path = Path(module.__file__).resolve()
        assert path.is_relative_to(Path(sys.prefix).resolve()), f"{module.__name__} from {path}"
    return f"from {Path(pyloop.__file__).parent}"


def check_asyncio_run() -> str:
    if sys.version_info >= (3, 12):
        name = asyncio.run(workload(), loop_factory=pyloop.new_event_loop)
        how = "asyncio.run(loop_factory=pyloop.new_event_loop)"
    else:
        name = pyloop.run(workload())
        how = "pyloop.run (3.11's asyncio.run has no loop_factory)"
    return f"{how} on {name}"


def check_runner() -> str:
    with asyncio.Runner(loop_factory=pyloop.new_event_loop) as runner:
        first = runner.run(workload())
        loop = runner.get_loop()
        second = runner.run(workload())
        assert runner.get_loop() is loop
    assert loop.is_closed()
    assert first == second
    return f"two runs on one {first}"


def check_install() -> str:
    pyloop.install()
    try:
        name = asyncio.run(workload())
    finally:
        asyncio.set_event_loop_policy(None)
    return f"asyncio.run on {name}"


# --- the server checks ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=BOUND)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, (response.status, body)
        return json.loads(body)
    finally:
        conn.close()


class Server:
    """A server process, its output kept in a file; stopped with SIGTERM."""

    def __init__(self, cmd: list[str], env: dict[str, str], cwd: Path) -> None:
        self.cmd = cmd
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT, text=True
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def fail(self, why: str) -> None:
        raise AssertionError(f"{why}\ncommand: {' '.join(self.cmd)}\noutput:\n{self.output()}")

    def wait_until(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.fail(f"exited with {self.proc.returncode} before {what}")
            with contextlib.suppress(OSError):
                if ready():
                    return
            time.sleep(0.05)
        self.fail(f"not {what} within {BOUND} s")

    def answering(self, port: int) -> None:
        self.wait_until(lambda: bool(get(port, "/ready")), f"answering on port {port}")

    def stop(self) -> int:
        """SIGTERM, then the exit code (killed, and a failure, if it outlives BOUND)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(BOUND)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.fail(f"still running {BOUND} s after SIGTERM")
            raise

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def served_by_pyloop(answer: dict, path: str) -> None:
    assert answer["path"] == path, answer
    assert answer["loop"].startswith("pyloop."), f"served on {answer['loop']}"


def uvicorn_command(check: str, port: int) -> list[str]:
    """The README's command for ``check``, on this interpreter, the app of this folder,
    127.0.0.1 and ``port``; h11 (pure Python) and the app's lifespan events."""
    return [sys.executable, "-m", *README_COMMANDS[check].split(), "--app-dir", str(HERE),
            "--host", "127.0.0.1", "--port", str(port), "--http", "h11", "--lifespan", "on",
            "--no-access-log"]  # fmt: skip


def check_uvicorn(workdir: Path) -> str:
    port = free_port()
    server = Server(uvicorn_command("uvicorn", port), dict(os.environ), workdir)
    try:
        server.answering(port)
        for i in range(5):
            answer = get(port, f"/item/{i}")
            served_by_pyloop(answer, f"/item/{i}")
        rc = server.stop()
        # uvicorn shuts down, then raises the signal it caught again (uvicorn.Server's
        # capture_signals), so a clean stop ends in SIGTERM whatever the loop.
        if rc not in (0, -signal.SIGTERM):
            server.fail(f"exit code {rc} after SIGTERM")
        for line in ("Application shutdown complete.", "Finished server process"):
            if line not in server.output():
                server.fail(f"no {line!r} after SIGTERM")
        return f"5 requests on {answer['loop']}, clean shutdown"
    finally:
        server.close()


def check_workers(workdir: Path, kind: str) -> str:
    port = free_port()
    records = Path(tempfile.mkdtemp(prefix="workers-", dir=workdir))
    env = dict(os.environ, SMOKE_WORKERS_DIR=str(records))
    if kind == "uvicorn":
        cmd = uvicorn_command("uvicorn_workers", port)
    else:
        # No control socket: gunicorn would make one under ~/.gunicorn, outside the test.
        cmd = [sys.executable, "-m", *README_COMMANDS["gunicorn_workers"].split(),
               "--chdir", str(HERE), "--bind", f"127.0.0.1:{port}",
               "--graceful-timeout", "20", "--no-control-socket"]  # fmt: skip

    def events() -> dict[int, list[dict]]:
        out = {}
        for f in records.glob("*.json"):
            out[int(f.stem)] = [json.loads(line) for line in f.read_text().splitlines()]
        return out

    server = Server(cmd, env, workdir)
    try:
        server.wait_until(lambda: len(events()) >= 2, "2 workers started")
        server.answering(port)
        started = events()
        if len(started) != 2:
            server.fail(f"{len(started)} workers started, not 2: {started}")
        for pid, seen in started.items():
            if seen[0]["event"] != "startup" or not seen[0]["loop"].startswith("pyloop."):
                server.fail(f"worker {pid} did not start on PyLoop: {seen}")
        pids = set()
        for i in range(10):
            answer = get(port, f"/w/{i}")
            served_by_pyloop(answer, f"/w/{i}")
            assert answer["pid"] in started, f"served by {answer['pid']}, not a worker"
            pids.add(answer["pid"])
        rc = server.stop()
        if rc != 0:
            server.fail(f"exit code {rc} after SIGTERM")
        stopped = events()
        for pid in started:
            if [e["event"] for e in stopped[pid]] != ["startup", "shutdown"]:
                server.fail(f"worker {pid} did not shut down cleanly: {stopped[pid]}")
        return (
            f"2 workers on {started.popitem()[1][0]['loop']}, 10 requests served by "
            f"{len(pids)} of them, clean shutdown"
        )
    finally:
        server.close()


# --- the command ----------------------------------------------------------------------------


def main() -> int:
    checks_doc = __doc__.split("Checks:")[1].split("\n\n")[0]
    names = [line.split()[0] for line in checks_doc.strip().splitlines() if line[2:3] != " "]
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("checks", nargs="*", metavar="CHECK", help="default: all")
    ap.add_argument("--installed", action="store_true", help="PyLoop must come from sys.prefix")
    ap.add_argument("--version", help="the version PyLoop must report")
    args = ap.parse_args()
    unknown = [c for c in args.checks if c not in names]
    if unknown:
        ap.error(f"unknown check(s) {', '.join(unknown)}: expected some of {', '.join(names)}")
    with tempfile.TemporaryDirectory(prefix="pyloop-smoke-") as tmp:
        workdir = Path(tmp)
        checks: dict[str, Callable[[], str]] = {
            "version": lambda: check_version(args.version),
            "metadata": check_metadata,
            "readme": check_readme,
            "asyncio_run": check_asyncio_run,
            "runner": check_runner,
            "install": check_install,
            "uvicorn": lambda: check_uvicorn(workdir),
            "uvicorn_workers": lambda: check_workers(workdir, "uvicorn"),
            "gunicorn_workers": lambda: check_workers(workdir, "gunicorn"),
        }
        assert list(checks) == names, (list(checks), names)
        chosen = args.checks or names
        if args.installed:
            chosen = ["installed", *chosen]
            checks["installed"] = check_installed
        py = ".".join(map(str, sys.version_info[:3]))
        failed = []
        for name in chosen:
            started = time.monotonic()
            try:
                detail = checks[name]()
            except Exception:
                failed.append(name)
                print(f"smoke[{py}]: {name} FAILED", flush=True)
                traceback.print_exc()
                continue
            print(f"smoke[{py}]: {name} ok ({time.monotonic() - started:.1f}s): {detail}")
    if failed:
        print(f"smoke[{py}]: {len(failed)} failed: {', '.join(failed)}", flush=True)
        return 1
    print(f"smoke[{py}]: all {len(chosen)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
