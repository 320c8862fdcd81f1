"""Small helpers shared by the test modules (bounded waits: a buggy loop fails, never hangs)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

# Upper bound for anything that should take milliseconds. A loop that loses a wake-up or a
# callback fails the test after this long instead of hanging the suite.
BOUND = 10.0


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
