"""Small helpers shared by the test modules (bounded waits: a buggy loop fails, never hangs)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time

# Upper bound for anything that should take milliseconds. A loop that loses a wake-up or a
# callback fails the test after this long instead of hanging the suite.
BOUND = 10.0

#: The phases that run a batch of cross-thread callbacks while holding the queue lock: a
#: callback there that waits for a thread calling ``call_soon_threadsafe`` waits until its
#: own timeout (the inherent deadlock the book examines; tests/test_adversarial_loop.py).
LOCK_HELD_WHILE_RUNNING = frozenset({"3.1.1", "3.1.2", "3.1.3"})


@contextlib.contextmanager
def closing(loop: asyncio.AbstractEventLoop):
    """Close ``loop`` at the end of the block (for loops a test makes with loop_factory)."""
    try:
        yield loop
    finally:
        if not loop.is_closed():
            if loop.is_running():
                raise AssertionError("loop still running at the end of the block")
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()


def run_bounded(loop: asyncio.AbstractEventLoop, coro, timeout: float = BOUND):
    """``loop.run_until_complete(coro)``, failing with TimeoutError after ``timeout``."""

    async def bounded():
        async with asyncio.timeout(timeout):
            return await coro

    return loop.run_until_complete(bounded())


def run_forever_bounded(loop: asyncio.AbstractEventLoop, timeout: float = BOUND) -> None:
    """``loop.run_forever()``; fails if the loop has not stopped by itself within ``timeout``."""
    expired = []

    def guard():
        expired.append(True)
        loop.stop()

    timer = loop.call_later(timeout, guard)
    try:
        loop.run_forever()
    finally:
        timer.cancel()
    assert not expired, f"run_forever() did not stop within {timeout}s"


def run_once(loop: asyncio.AbstractEventLoop) -> None:
    """Run one turn: what is ready now runs, what that schedules does not."""
    loop.call_soon(loop.stop)
    loop.run_forever()


def wait_for_thread(thread: threading.Thread, timeout: float = BOUND) -> None:
    thread.join(timeout)
    assert not thread.is_alive(), f"{thread.name} still running after {timeout}s"


def spin_until(predicate, timeout: float = BOUND, interval: float = 0.001) -> None:
    """Poll ``predicate`` from a thread that is not the loop's, without the loop's help."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def is_handle(obj) -> bool:
    """Has asyncio.Handle's API (cancel, cancelled). Not an isinstance check: a loop's own
    handle class need not derive from asyncio.Handle (uvloop's do not)."""
    return callable(getattr(obj, "cancel", None)) and callable(getattr(obj, "cancelled", None))


def is_timer_handle(obj) -> bool:
    """Has asyncio.TimerHandle's API (a Handle with when())."""
    return is_handle(obj) and callable(getattr(obj, "when", None))


# --- subprocesses: for what may deadlock or needs its own resource limits -----------------


def take_every_fd(limit: int) -> list[int]:
    """Lowers this process's soft limit of open descriptors to ``limit`` and opens
    ``/dev/null`` until no descriptor is left; returns them (the caller closes them to give
    descriptors back). For child processes only: it leaves the process out of descriptors."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    held = []
    try:
        while True:
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    return held


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The line a child prints (``child_ready()``) once imports are done: the scenario's timeout
#: starts there, so a slow interpreter start on a loaded machine is not taken for a hang.
READY = "PYLOOP-CHILD-READY"

#: Prelude of every child: the repository on sys.path, stacks dumped on SIGUSR1 (the parent
#: asks for them before killing a hung child), and child_ready().
CHILD_PRELUDE = f"""
import faulthandler, signal, sys
sys.path.insert(0, {REPO_ROOT!r})
faulthandler.register(signal.SIGUSR1, all_threads=True)
def child_ready():
    print({READY!r}, flush=True)
"""


@dataclasses.dataclass
class ChildResult:
    """What a child process did: ``hung`` if it had not exited within its timeout (it was
    killed then, after dumping its threads' stacks to ``stderr``)."""

    returncode: int | None
    stdout: str
    stderr: str
    hung: bool

    def describe(self) -> str:
        state = "HUNG (killed)" if self.hung else f"exit code {self.returncode}"
        return f"child {state}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"


def run_child(
    code: str,
    timeout: float,
    *,
    startup_timeout: float = 60.0,
    env: dict[str, str] | None = None,
) -> ChildResult:
    """Runs ``CHILD_PRELUDE + code`` in a new interpreter (this one). ``timeout`` counts from
    the child's ``child_ready()`` (or from its start if it never calls it, after
    ``startup_timeout``). A child still running then is hung: its stacks are dumped
    (SIGUSR1), then it is killed with its process group. Never blocks longer than
    ``startup_timeout + timeout`` plus a few seconds."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD_PRELUDE + code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=REPO_ROOT,
        start_new_session=True,
    )
    out: list[str] = []
    err: list[str] = []
    ready = threading.Event()

    def pump_stdout():
        for line in proc.stdout:
            if line.strip() == READY:
                ready.set()
            else:
                out.append(line)
        ready.set()

    def pump_stderr():
        for line in proc.stderr:
            err.append(line)

    readers = [threading.Thread(target=pump_stdout), threading.Thread(target=pump_stderr)]
    for r in readers:
        r.start()
    ready.wait(startup_timeout)
    hung = False
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        hung = True
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for r in readers:
        r.join(BOUND)
    proc.stdout.close()
    proc.stderr.close()
    return ChildResult(proc.returncode if not hung else None, "".join(out), "".join(err), hung)
