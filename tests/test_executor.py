"""run_in_executor, set_default_executor, shutdown_default_executor (spec: base_events 3.11)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading

import pytest

from tests.deviations import is_pyloop
from tests.support import run_bounded


def test_run_in_default_executor(loop):
    async def main():
        ident = await loop.run_in_executor(None, threading.get_ident)
        doubled = await loop.run_in_executor(None, lambda x: 2 * x, 21)
        return ident, doubled

    ident, doubled = run_bounded(loop, main())
    assert ident != threading.get_ident()
    assert doubled == 42


def test_run_in_executor_returns_a_future_of_the_loop(loop):
    fut = loop.run_in_executor(None, int, "5")
    assert isinstance(fut, asyncio.Future)
    assert fut.get_loop() is loop
    assert run_bounded(loop, fut) == 5


def test_run_in_executor_exception(loop):
    def bad():
        raise ValueError("in executor")

    with pytest.raises(ValueError, match="in executor"):
        run_bounded(loop, loop.run_in_executor(None, bad))


def test_run_in_custom_executor(loop):
    with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="custom") as pool:
        name = run_bounded(
            loop, loop.run_in_executor(pool, lambda: threading.current_thread().name)
        )
    assert name.startswith("custom")


def test_many_executor_jobs(loop):
    async def main():
        return await asyncio.gather(*(loop.run_in_executor(None, pow, i, 2) for i in range(200)))

    assert run_bounded(loop, main()) == [i * i for i in range(200)]


def test_set_default_executor(loop):
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mydefault")
    loop.set_default_executor(pool)
    name = run_bounded(loop, loop.run_in_executor(None, lambda: threading.current_thread().name))
    assert name.startswith("mydefault")
    run_bounded(loop, loop.shutdown_default_executor())
    with pytest.raises(RuntimeError):
        pool.submit(print)  # shutdown_default_executor shut our pool down


def test_set_default_executor_requires_a_thread_pool(loop):
    with concurrent.futures.ProcessPoolExecutor(1) as pool:
        with pytest.raises(TypeError, match="ThreadPoolExecutor"):
            loop.set_default_executor(pool)


def test_shutdown_default_executor(loop):
    assert run_bounded(loop, loop.run_in_executor(None, abs, -1)) == 1
    run_bounded(loop, loop.shutdown_default_executor())
    with pytest.raises(RuntimeError, match="shutdown"):
        loop.run_in_executor(None, print)
    # a custom executor still works
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert run_bounded(loop, loop.run_in_executor(pool, abs, -3)) == 3


def test_shutdown_default_executor_timeout_keyword(loop):
    """CPython 3.12 added ``timeout=``; asyncio 3.11 refuses it, PyLoop takes it on every
    version (tests/deviations.py, "shutdown_default_executor(timeout=) on 3.11")."""
    assert run_bounded(loop, loop.run_in_executor(None, abs, -1)) == 1
    if sys.version_info < (3, 12) and not is_pyloop(loop):
        with pytest.raises(TypeError, match="timeout"):
            loop.shutdown_default_executor(timeout=5)
        run_bounded(loop, loop.shutdown_default_executor())
    else:
        run_bounded(loop, loop.shutdown_default_executor(timeout=5))
    with pytest.raises(RuntimeError, match="shutdown"):
        loop.run_in_executor(None, print)


def test_shutdown_default_executor_without_one(loop):
    run_bounded(loop, loop.shutdown_default_executor())
    with pytest.raises(RuntimeError, match="shutdown"):
        loop.run_in_executor(None, print)


def test_shutdown_default_executor_waits_for_running_jobs(loop):
    started = threading.Event()
    release = threading.Event()
    done = []

    def job():
        started.set()
        release.wait(10)
        done.append(True)

    async def main():
        fut = loop.run_in_executor(None, job)
        await loop.run_in_executor(None, started.wait, 10)
        loop.call_later(0.05, release.set)
        await loop.shutdown_default_executor()
        assert done == [True]
        assert await fut is None

    run_bounded(loop, main())


def test_executor_job_result_after_cancel_is_dropped(loop):
    """Cancelling the asyncio future of a running job: the job's result is discarded and
    nothing reaches the exception handler."""
    release = threading.Event()

    async def main():
        fut = loop.run_in_executor(None, release.wait, 10)
        await asyncio.sleep(0.01)
        fut.cancel()
        release.set()
        await asyncio.sleep(0.05)
        assert fut.cancelled()

    run_bounded(loop, main())
