"""One workload of the instruction-count benchmark, run once at one size (no timing).

    python benchmarks/instr/workloads.py <loop> <workload> <n>

``run.py`` runs this under ``valgrind --tool=callgrind`` at sizes N and 2N, each in its own
process, and reports (I(2N) - I(N)) / N instructions per item: start-up, imports and the loop's
creation cancel out. Everything here must do the same work on every run: no clock-dependent
branches, timers already due when the loop looks at them, no threads (valgrind runs one thread at
a time, so cross-thread work is not repeatable under it; that is measured by wall clock in
``benchmarks/pyloop``). The cyclic collector stays on, as programs run.

Loops: ``asyncio``, ``uvloop``, ``rloop``, ``pyloop`` (the default phase) or ``pyloop-<phase>``.
"""

from __future__ import annotations

import asyncio
import sys


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "asyncio":
        return asyncio.SelectorEventLoop()
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if name == "rloop":
        import rloop

        return rloop.new_event_loop()
    if name == "pyloop" or name.startswith("pyloop-"):
        import pyloop

        phase = name.partition("-")[2] or None
        return pyloop.new_event_loop(phase)
    raise SystemExit(f"unknown loop {name!r}")


def noop() -> None:
    pass


def call_soon(loop: asyncio.AbstractEventLoop, n: int) -> None:
    """n ``call_soon(noop)`` made from one callback, then all of them run."""

    def schedule() -> None:
        cs = loop.call_soon
        for _ in range(n):
            cs(noop)
        cs(loop.stop)

    loop.call_soon(schedule)
    loop.run_forever()


def call_soon_steady(loop: asyncio.AbstractEventLoop, n: int) -> None:
    """A callback that schedules the next one: n callbacks, never more than one pending."""
    left = [n]

    def step() -> None:
        left[0] -= 1
        if left[0]:
            loop.call_soon(step)
        else:
            loop.stop()

    loop.call_soon(step)
    loop.run_forever()


def pingpong(loop: asyncio.AbstractEventLoop, n: int) -> None:
    """Two tasks hand a Future back and forth n times."""
    box: list = [None, None]

    async def ponger() -> None:
        for _ in range(n + 1):
            fb = loop.create_future()
            box[1] = fb
            if box[0] is not None:
                box[0].set_result(None)
            await fb

    async def pinger() -> None:
        await asyncio.sleep(0)
        for _ in range(n):
            fa = loop.create_future()
            box[0] = fa
            box[1].set_result(None)
            await fa

    async def main() -> None:
        pong = asyncio.ensure_future(ponger())
        await pinger()
        pong.cancel()
        try:
            await pong
        except asyncio.CancelledError:
            pass

    loop.run_until_complete(main())


def future_roundtrip(loop: asyncio.AbstractEventLoop, n: int) -> None:
    """n times: ``create_future()``, ``call_soon(fut.set_result, None)``, ``await fut``."""

    async def main() -> None:
        for _ in range(n):
            fut = loop.create_future()
            loop.call_soon(fut.set_result, None)
            await fut

    loop.run_until_complete(main())


def gather(loop: asyncio.AbstractEventLoop, n: int) -> None:
    """``gather`` of n coroutines that each yield once."""

    async def leaf(i: int) -> int:
        await asyncio.sleep(0)
        return i

    async def main() -> None:
        results = await asyncio.gather(*[leaf(i) for i in range(n)])
        assert len(results) == n

    loop.run_until_complete(main())


def timers(loop: asyncio.AbstractEventLoop, n: int) -> None:
    """n timers, all already due, scheduled out of order with ``call_at``, then all fired."""
    fired = [0]

    def tick() -> None:
        fired[0] += 1
        if fired[0] == n:
            loop.stop()

    def schedule() -> None:
        base = loop.time() - 1.0
        for i in range(n):
            # A fixed permutation of the deadlines (7919 is prime, so i -> 7919 i mod n
            # visits every slot when n is not a multiple of it).
            loop.call_at(base + ((i * 7919) % n) * 1e-7, tick)

    loop.call_soon(schedule)
    loop.run_forever()


WORKLOADS = {
    "call_soon": call_soon,
    "call_soon_steady": call_soon_steady,
    "pingpong": pingpong,
    "future_roundtrip": future_roundtrip,
    "gather": gather,
    "timers": timers,
}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in WORKLOADS:
        print(__doc__, file=sys.stderr)
        print(f"workloads: {', '.join(WORKLOADS)}", file=sys.stderr)
        return 2
    name, workload, n = argv[0], argv[1], int(argv[2])
    loop = new_loop(name)
    try:
        WORKLOADS[workload](loop, n)
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
