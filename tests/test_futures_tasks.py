"""Futures and tasks on the loop, and asyncio's combinators (which the loop must carry:
they are built on call_soon, call_later and future callbacks)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from tests.support import BOUND, run_bounded, run_child, run_once, wait_for_thread


def test_create_future(loop):
    fut = loop.create_future()
    assert isinstance(fut, asyncio.Future)
    assert fut.get_loop() is loop
    assert not fut.done()
    loop.call_soon(fut.set_result, 7)
    assert run_bounded(loop, fut) == 7


def test_future_done_callbacks_run_via_the_loop(loop):
    fut = loop.create_future()
    out = []
    fut.add_done_callback(lambda f: out.append(("cb", f.result())))
    fut.set_result(1)
    assert out == []  # scheduled with call_soon, not called inline
    run_once(loop)
    assert out == [("cb", 1)]


def test_create_task_name_and_coro(loop):
    async def work():
        return asyncio.current_task().get_name()

    coro = work()
    task = loop.create_task(coro, name="worker-1")
    assert isinstance(task, asyncio.Task)
    assert task.get_loop() is loop
    assert task.get_coro() is coro
    assert task.get_name() == "worker-1"
    assert run_bounded(loop, task) == "worker-1"
    unnamed = loop.create_task(work())
    assert unnamed.get_name().startswith("Task-")
    run_bounded(loop, unnamed)


def test_create_task_context(loop):
    var = contextvars.ContextVar("var", default="default")
    ctx = contextvars.Context()
    ctx.run(var.set, "in ctx")

    async def read_and_write():
        before = var.get()
        var.set("written by task")
        return before

    assert run_bounded(loop, loop.create_task(read_and_write(), context=ctx)) == "in ctx"
    assert ctx[var] == "written by task"
    assert var.get() == "default"
    # without context=: a copy of the current context
    token = var.set("caller")
    try:
        task = loop.create_task(read_and_write())
    finally:
        var.reset(token)
    assert run_bounded(loop, task) == "caller"
    assert var.get() == "default"


def test_task_factory(loop):
    assert loop.get_task_factory() is None
    made = []

    def factory(lp, coro, **kwargs):
        made.append((lp, coro, kwargs))
        return asyncio.Task(coro, loop=lp, **kwargs)

    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory

    async def ret(x):
        return x

    c1 = ret(1)
    task = loop.create_task(c1, name="named")
    assert made == [(loop, c1, {})]
    assert task.get_name() == "named"
    assert loop.run_until_complete(task) == 1
    ctx = contextvars.copy_context()
    c2 = ret(2)
    assert loop.run_until_complete(loop.create_task(c2, context=ctx)) == 2
    assert made[1] == (loop, c2, {"context": ctx})
    # run_until_complete(coro) goes through the factory too (ensure_future -> create_task)
    c3 = ret(3)
    assert loop.run_until_complete(c3) == 3
    assert made[2] == (loop, c3, {})
    assert len(made) == 3
    loop.set_task_factory(None)
    assert loop.get_task_factory() is None
    with pytest.raises(TypeError):
        loop.set_task_factory(42)


def test_create_task_with_name_and_context_given_as_none(loop):
    async def ret(x):
        return x

    task = loop.create_task(ret(1), name=None, context=None)
    assert isinstance(task, asyncio.Task)
    assert task.get_loop() is loop
    assert task.get_name().startswith("Task-")
    assert run_bounded(loop, task) == 1


def test_create_task_after_a_factory_is_removed(loop):
    made = []
    loop.set_task_factory(lambda lp, coro, **kw: made.append(coro) or asyncio.Task(coro, loop=lp))

    async def ret(x):
        return x

    first = ret(1)
    assert loop.run_until_complete(loop.create_task(first)) == 1
    assert made == [first]
    loop.set_task_factory(None)
    plain = loop.create_task(ret(2))
    assert type(plain) is asyncio.Task and plain.get_loop() is loop
    assert loop.run_until_complete(plain) == 2
    assert made == [first]


def test_task_made_in_debug_mode_records_its_caller_last(loop):
    """asyncio trims its own create_task frame off a debug-mode task's creation traceback."""
    loop.set_debug(True)

    async def ret():
        return 1

    task = loop.create_task(ret())  # this line is the last entry
    assert task._source_traceback[-1].name == "test_task_made_in_debug_mode_records_its_caller_last"
    assert run_bounded(loop, task) == 1


def test_create_task_on_a_closed_loop(loop):
    loop.close()

    async def ret():
        return 1

    coro = ret()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.create_task(coro)
    coro.close()


def test_create_task_argument_shapes(loop):
    async def ret():
        return 1

    with pytest.raises(TypeError):
        loop.create_task()
    coro = ret()
    with pytest.raises(TypeError):
        loop.create_task(coro, unknown=1)
    with pytest.raises(TypeError):
        loop.create_task(coro, "positional name")
    coro.close()


def test_create_future_and_get_debug_take_no_arguments(loop):
    with pytest.raises(TypeError):
        loop.create_future(1)
    with pytest.raises(TypeError):
        loop.get_debug(True)
    assert loop.get_debug() in (True, False)


def test_a_task_factory_whose_destructor_uses_the_loop(loop):
    """Replacing a factory drops the old one; its __del__ runs then and uses the loop again
    (PyLoop keeps the factory natively: it must be dropped outside any borrow of it)."""
    seen = []

    async def ret(x):
        return x

    class Factory:
        def __call__(self, lp, coro, **kwargs):
            return asyncio.Task(coro, loop=lp, **kwargs)

        def __del__(self):
            seen.append(loop.get_task_factory())
            loop.set_task_factory(None)
            fut = loop.create_future()
            fut.cancel()
            seen.append(fut.get_loop() is loop)
            coro = ret(3)
            seen.append(type(loop.create_task(coro)) is asyncio.Task)

    loop.set_task_factory(Factory())
    assert loop.run_until_complete(loop.create_task(ret(1))) == 1
    loop.set_task_factory(lambda lp, coro, **kw: asyncio.Task(coro, loop=lp, **kw))
    assert len(seen) == 3 and seen[1:] == [True, True]
    assert loop.get_task_factory() is None  # the destructor's own setting, made last
    run_bounded(loop, asyncio.sleep(0))  # the destructor's task runs out


def test_futures_made_from_other_threads(loop):
    """create_future is not thread-safe in asyncio's sense, but a call from another thread
    while the loop is idle must make a future of this loop, never crash."""
    made = []
    lock = threading.Lock()

    def make():
        for _ in range(200):
            fut = loop.create_future()
            with lock:
                made.append(fut)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        wait_for_thread(t)
    assert len(made) == 800
    assert all(f.get_loop() is loop and not f.done() for f in made)
    for f in made:
        f.cancel()


def test_futures_and_tasks_belong_to_their_loop_whoever_is_the_running_one(loop):
    """When another loop (``nest_asyncio`` style) or none is set as the running one, futures
    and tasks must still belong to the loop they were asked of. (A shortcut that made them
    without a ``loop`` argument whenever the loop ran on the calling thread failed this on
    every phase; faster.md, "A shortcut that did not pay".)"""
    other = asyncio.new_event_loop()
    made = []

    async def leaf():
        return "ran"

    async def main():
        ours = asyncio.events._get_running_loop()
        for stand_in in (other, None):
            asyncio.events._set_running_loop(stand_in)
            try:
                made.append((loop.create_future(), loop.create_task(leaf())))
            finally:
                asyncio.events._set_running_loop(ours)
        made.append((loop.create_future(), loop.create_task(leaf())))
        for fut, task in made:
            loop.call_soon(fut.set_result, "set")
            assert (await fut, await task) == ("set", "ran")

    try:
        run_bounded(loop, main())
    finally:
        other.close()
    assert len(made) == 3
    for fut, task in made:
        assert fut.get_loop() is loop and task.get_loop() is loop


PURE_PYTHON_ASYNCIO = """
import sys
sys.modules["_asyncio"] = None  # asyncio's Python futures, tasks and running-loop getter
import asyncio
from tests.loops import ALL_LOOPS
assert asyncio.Future.__module__ == "asyncio.futures", asyncio.Future
loop = {{s.id: s for s in ALL_LOOPS}}[{loop_id!r}].new_loop()
child_ready()

async def leaf(i):
    await asyncio.sleep(0)
    return i

async def main():
    fut = loop.create_future()
    loop.call_soon(fut.set_result, "set")
    tasks = [loop.create_task(leaf(i)) for i in range(3)]
    other = asyncio.new_event_loop()
    asyncio.events._set_running_loop(other)
    try:
        elsewhere = loop.create_future()
    finally:
        asyncio.events._set_running_loop(loop)
        other.close()
    elsewhere.set_result("elsewhere")
    got = [await fut, await asyncio.gather(*tasks), await elsewhere]
    loops = {{f.get_loop() is loop for f in [fut, elsewhere, *tasks]}}
    return got, loops

print(loop.run_until_complete(main()))
loop.close()
"""


def test_futures_and_tasks_with_asyncio_in_pure_python(loop_spec):
    """Without the ``_asyncio`` accelerator asyncio's futures and its running-loop getter are
    Python code; the loop's futures and tasks still work and belong to it."""
    result = run_child(PURE_PYTHON_ASYNCIO.format(loop_id=loop_spec.id), BOUND)
    assert result.returncode == 0, result.describe()
    assert result.stdout.strip() == "(['set', [0, 1, 2], 'elsewhere'], {True})", result.describe()


def test_task_cancel(loop):
    started = loop.create_future()

    async def sleeper():
        started.set_result(None)
        await asyncio.sleep(BOUND)

    async def main():
        task = loop.create_task(sleeper())
        await started
        assert task.cancel(msg="stop it")
        with pytest.raises(asyncio.CancelledError) as info:
            await task
        assert info.value.args == ("stop it",)
        assert task.cancelled()
        assert not task.cancel()

    run_bounded(loop, main())


def test_task_cancel_caught_and_uncancel(loop):
    async def stubborn():
        try:
            await asyncio.sleep(BOUND)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            assert task.cancelling() == 1
            task.uncancel()
            return "survived"

    async def main():
        task = loop.create_task(stubborn())
        await asyncio.sleep(0)
        task.cancel()
        return await task

    assert run_bounded(loop, main()) == "survived"


def test_task_exception(loop):
    async def bad():
        await asyncio.sleep(0)
        raise LookupError("inner")

    async def main():
        task = loop.create_task(bad())
        with pytest.raises(LookupError, match="inner"):
            await task
        assert isinstance(task.exception(), LookupError)

    run_bounded(loop, main())


def test_current_and_all_tasks(loop):
    async def child():
        await asyncio.sleep(0.01)

    async def main():
        me = asyncio.current_task()
        kids = [loop.create_task(child()) for _ in range(3)]
        assert asyncio.all_tasks() == {me, *kids}
        async with asyncio.timeout(BOUND):
            await asyncio.gather(*kids)
        assert asyncio.all_tasks() == {me}
        return me

    task = loop.create_task(main())
    assert loop.run_until_complete(task) is task
    assert asyncio.all_tasks(loop) == set()


def test_gather(loop):
    async def value(x, delay):
        await asyncio.sleep(delay)
        return x

    async def fail():
        await asyncio.sleep(0)
        raise KeyError("k")

    async def main():
        assert await asyncio.gather(value(1, 0.02), value(2, 0.0), value(3, 0.01)) == [1, 2, 3]
        res = await asyncio.gather(value(1, 0), fail(), return_exceptions=True)
        assert res[0] == 1 and isinstance(res[1], KeyError)
        with pytest.raises(KeyError):
            await asyncio.gather(fail(), value(2, 0))
        await asyncio.sleep(0.01)  # let the orphaned value(2, 0) finish

    run_bounded(loop, main())


def test_wait(loop):
    async def value(x, delay):
        await asyncio.sleep(delay)
        return x

    async def main():
        slow = loop.create_task(value("slow", 0.2))
        fast = loop.create_task(value("fast", 0.01))
        done, pending = await asyncio.wait({slow, fast}, return_when=asyncio.FIRST_COMPLETED)
        assert done == {fast} and pending == {slow}
        done, pending = await asyncio.wait({slow}, timeout=0.01)
        assert done == set() and pending == {slow}
        slow.cancel()
        done, pending = await asyncio.wait({slow})
        assert slow.cancelled()

    run_bounded(loop, main())


def test_wait_for(loop):
    cancelled = []

    async def slow():
        try:
            await asyncio.sleep(BOUND)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main():
        assert await asyncio.wait_for(asyncio.sleep(0.01, "v"), timeout=1) == "v"
        t0 = loop.time()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(slow(), timeout=0.05)
        assert 0.04 <= loop.time() - t0 < BOUND
        assert cancelled == [True]

    run_bounded(loop, main())


def test_timeout_context_manager(loop):
    async def main():
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.02) as cm:
                await asyncio.sleep(BOUND)
        assert cm.expired()
        async with asyncio.timeout(1) as cm:
            await asyncio.sleep(0.01)
        assert not cm.expired()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout_at(loop.time() + 0.02):
                await asyncio.sleep(BOUND)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(None) as cm:
                assert cm.when() is None
                cm.reschedule(loop.time() + 0.01)
                await asyncio.sleep(BOUND)
        assert cm.expired()

    run_bounded(loop, main())


def test_taskgroup(loop):
    cancelled = []

    async def ok(x):
        await asyncio.sleep(0.01)
        return x

    async def sibling():
        try:
            await asyncio.sleep(BOUND)
        except asyncio.CancelledError:
            cancelled.append("sibling")
            raise

    async def fail():
        await asyncio.sleep(0.01)
        raise ValueError("in group")

    async def main():
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(ok(i)) for i in range(5)]
        assert [t.result() for t in tasks] == list(range(5))
        with pytest.raises(ExceptionGroup) as info:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(sibling())
                tg.create_task(fail())
        assert [type(e) for e in info.value.exceptions] == [ValueError]
        assert cancelled == ["sibling"]

    run_bounded(loop, main())


def test_shield(loop):
    async def inner():
        await asyncio.sleep(0.03)
        return "inner done"

    async def main():
        inner_task = loop.create_task(inner())
        outer = asyncio.shield(inner_task)
        await asyncio.sleep(0.01)
        outer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await outer
        assert not inner_task.cancelled()
        assert await inner_task == "inner done"

    run_bounded(loop, main())


def test_as_completed(loop):
    async def value(x, delay):
        await asyncio.sleep(delay)
        return x

    async def main():
        aws = [value("c", 0.06), value("a", 0.0), value("b", 0.03)]
        return [await f for f in asyncio.as_completed(aws, timeout=BOUND)]

    assert run_bounded(loop, main()) == ["a", "b", "c"]


def test_sleep(loop):
    async def main():
        order = []

        async def ticker(name):
            for i in range(3):
                order.append((name, i))
                await asyncio.sleep(0)

        await asyncio.gather(ticker("x"), ticker("y"))
        assert order == [("x", 0), ("y", 0), ("x", 1), ("y", 1), ("x", 2), ("y", 2)]
        t0 = time.monotonic()
        assert await asyncio.sleep(0.05, result="r") == "r"
        assert time.monotonic() - t0 >= 0.045

    run_bounded(loop, main())


def test_run_coroutine_threadsafe(loop):
    results = []

    async def double(x):
        await asyncio.sleep(0)
        return 2 * x

    async def main():
        def in_thread():
            results.append(asyncio.run_coroutine_threadsafe(double(21), loop).result(BOUND))

        thread = threading.Thread(target=in_thread)
        thread.start()
        await loop.run_in_executor(None, wait_for_thread, thread)

    run_bounded(loop, main())
    assert results == [42]


def test_future_ping_pong(loop):
    """Two tasks handing a value back and forth through futures, 2000 round trips."""

    async def main():
        box = [loop.create_future(), loop.create_future()]
        rounds = 2000

        async def player(me):
            for _ in range(rounds):
                value = await box[me]
                box[me] = loop.create_future()
                box[1 - me].set_result(value + 1)
            return value

        a = loop.create_task(player(0))
        b = loop.create_task(player(1))
        box[0].set_result(0)
        return await asyncio.gather(a, b)

    assert run_bounded(loop, main()) == [2 * 2000 - 2, 2 * 2000 - 1]
