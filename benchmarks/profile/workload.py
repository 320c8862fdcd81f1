"""One workload on one event loop, for benchmarks/profile/callgrind.py to run under valgrind.

    python benchmarks/profile/workload.py LOOP KIND N

LOOP: asyncio, uvloop, rloop or a PyLoop phase tag (3.2.1 ...). KIND:

- ``single``: N ``call_soon(noop)`` on the loop's thread before it runs, then the loop runs
  them (the Python benchmarks' single-thread scenario); GC on;
- ``single_gc_off``: the same with the cyclic GC disabled;
- ``threadsafe``: one other thread sends N ``call_soon_threadsafe(noop)`` while the loop runs
  (the one-producer point of the scaling sweep).

Everything before and after the N callbacks (interpreter start-up, imports, making the loop)
is the same for every N, so the profile script takes the difference of two sizes.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "asyncio":
        return asyncio.SelectorEventLoop()
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if name == "rloop":
        import rloop

        return rloop.new_event_loop()
    import pyloop

    return pyloop.new_event_loop(phase=name)


def noop() -> None:
    pass


def main() -> None:
    name, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    loop = new_loop(name)
    if kind == "single_gc_off":
        gc.disable()
    if kind in ("single", "single_gc_off"):
        for _ in range(n):
            loop.call_soon(noop)
        loop.call_soon(loop.stop)
        loop.run_forever()
    elif kind == "threadsafe":

        def produce() -> None:
            send = loop.call_soon_threadsafe
            for _ in range(n):
                send(noop)
            send(loop.stop)

        producer = threading.Thread(target=produce)
        loop.call_soon(producer.start)
        loop.run_forever()
        producer.join()
    else:
        raise SystemExit(f"unknown kind {kind!r}")
    loop.close()


if __name__ == "__main__":
    main()
