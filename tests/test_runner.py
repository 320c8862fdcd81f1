"""asyncio.Runner(loop_factory=...) runs one program of tasks, timers, threads and executor
jobs: its trace on the loop under test must equal its trace on stock asyncio."""

from __future__ import annotations

import asyncio
import threading

from tests.loops import ALL_LOOPS

REFERENCE = ALL_LOOPS[0]
assert REFERENCE.id == "asyncio"


async def program() -> list:
    loop = asyncio.get_running_loop()
    trace = []
    loop.call_soon(trace.append, "soon")

    async def worker(i):
        # i turns of the loop, not i * 4 ms: the order must not depend on how
        # busy the machine is (it did, and flipped under load).
        for _ in range(i):
            await asyncio.sleep(0)
        trace.append(f"worker-{i}")
        return i * i

    # tasks
    results = await asyncio.gather(*(worker(i) for i in (3, 0, 2, 1)))
    trace.append(("gather", results))
    # a thread completing a future through call_soon_threadsafe
    fut = loop.create_future()
    thread = threading.Thread(target=lambda: loop.call_soon_threadsafe(fut.set_result, "thread"))
    thread.start()
    trace.append(await fut)
    thread.join()
    # executor jobs and to_thread
    trace.append(await loop.run_in_executor(None, sum, range(100)))
    in_thread = await asyncio.to_thread(threading.current_thread)
    trace.append(in_thread is not threading.main_thread())

    # a task group, one of whose tasks times out
    async def guarded():
        try:
            async with asyncio.timeout(0.01):
                await asyncio.sleep(10)
        except TimeoutError:
            return "timed out"

    async with asyncio.TaskGroup() as tg:
        slow = tg.create_task(guarded())
        fast = tg.create_task(asyncio.sleep(0, "fast"))
    trace.append((slow.result(), fast.result()))
    # timers, registered out of order (deadlines from one reading of the clock, so
    # that their order does not depend on the time between the two calls), then a
    # sleep past both
    now = loop.time()
    loop.call_at(now + 0.02, trace.append, "timer-20ms")
    loop.call_at(now + 0.01, trace.append, "timer-10ms")
    await asyncio.sleep(0.04)
    trace.append(("debug", loop.get_debug()))
    return trace


def run_program(factory, debug=None) -> tuple[list, asyncio.AbstractEventLoop]:
    with asyncio.Runner(loop_factory=factory, debug=debug) as runner:
        loop = runner.get_loop()
        trace = runner.run(asyncio.wait_for(program(), 10))
    return trace, loop


def test_runner_program_matches_the_reference(loop_spec):
    expected, _ = run_program(REFERENCE)
    trace, loop = run_program(loop_spec)
    assert trace == expected
    assert loop.is_closed()


def test_runner_debug(loop_spec):
    expected, _ = run_program(REFERENCE, debug=True)
    trace, _ = run_program(loop_spec, debug=True)
    assert trace == expected
    assert trace[-1] == ("debug", True)


def test_runner_uses_the_factory_loop(loop_spec):
    async def running():
        return asyncio.get_running_loop()

    probe = loop_spec.new_loop()
    probe.close()
    with asyncio.Runner(loop_factory=loop_spec) as runner:
        loop = runner.get_loop()
        assert type(loop) is type(probe)
        assert runner.run(running()) is loop
        assert runner.run(running()) is loop  # one loop for every run()
    assert loop.is_closed()
