"""Buffers that end exactly where their allocation ends, handed to the loop's native paths:
for memcheck (benchmarks/soak/memcheck.sh), where a read or write one byte outside the
allocation is an error. The suite's guard-zone tests (tests/test_adversarial_buffers.py)
find such writes inside a larger buffer; here there is no guard, so without valgrind a
faulty loop corrupts the heap. Run it under valgrind only:

    PYTHONMALLOC=malloc valgrind python benchmarks/soak/heap_edges.py [loop id]

Prints one line per case with what happened (the outcome is not judged here: the suite
compares it with asyncio; memcheck judges the memory accesses).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.loops import ALL_LOOPS  # noqa: E402

N = 16


def views():
    """Fresh exact-size buffers, each its own allocation (PYTHONMALLOC=malloc)."""
    yield "reversed", memoryview(bytearray(N))[::-1]
    yield "strided", memoryview(bytearray(N))[::2]
    yield "cast_i", memoryview(bytearray(N)).cast("i")
    yield "tail_slice", memoryview(bytearray(N))[N - 4 :]
    yield "one_byte", bytearray(1)


class Buffered(asyncio.BufferedProtocol):
    def __init__(self, loop, view) -> None:
        self.view = view
        self.lost = loop.create_future()

    def get_buffer(self, hint):
        return self.view

    def buffer_updated(self, n) -> None:
        pass

    def connection_lost(self, exc) -> None:
        if not self.lost.done():
            self.lost.set_result(type(exc).__name__ if exc else None)


async def read_case(loop, view) -> str:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        transport, proto = await loop.create_connection(
            lambda: Buffered(loop, view), *listener.getsockname()
        )
        peer, _ = listener.accept()
    with peer:
        peer.sendall(bytes(range(1, 4 * N + 1)))
        peer.shutdown(socket.SHUT_WR)
        try:
            return str(await asyncio.wait_for(asyncio.shield(proto.lost), 5))
        except TimeoutError:
            transport.abort()
            return "timeout " + str(await proto.lost)


async def write_case(loop, data) -> str:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        transport, proto = await loop.create_connection(
            lambda: Buffered(loop, bytearray(64)), *listener.getsockname()
        )
        peer, _ = listener.accept()
    with peer:
        try:
            transport.write(data)
            transport.writelines([data, data])
            result = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not judged
            result = type(exc).__name__
        transport.close()
        await proto.lost
        return result


def main() -> None:
    loop_id = sys.argv[1] if len(sys.argv) > 1 else "pyloop-3.2.1"
    spec = {s.id: s for s in ALL_LOOPS}[loop_id]
    for name, view in views():
        loop = spec.new_loop()
        try:
            print("get_buffer", name, loop.run_until_complete(read_case(loop, view)), flush=True)
        except Exception as exc:  # noqa: BLE001 - reported, not judged
            print("get_buffer", name, "raised", type(exc).__name__, flush=True)
        finally:
            loop.close()
    for name, view in views():
        loop = spec.new_loop()
        try:
            print("write", name, loop.run_until_complete(write_case(loop, view)), flush=True)
        finally:
            loop.close()


if __name__ == "__main__":
    main()
