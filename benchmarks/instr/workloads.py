"""One workload of the instruction-count benchmark, run once at one size (no timing).

    python benchmarks/instr/workloads.py <loop> <workload> <n>

``run.py`` runs this under ``valgrind --tool=callgrind`` at sizes N and 2N, each in its own
process, and reports (I(2N) - I(N)) / N instructions per item: start-up, imports and the loop's
creation cancel out. Everything here must do the same work on every run: no clock-dependent
branches, timers already due when the loop looks at them, no threads (valgrind runs one thread at
a time, so cross-thread work is not repeatable under it; that is measured by wall clock in
``benchmarks/pyloop``). The cyclic collector stays on, as programs run.

Loops: ``asyncio``, ``uvloop``, ``rloop``, ``pyloop`` (the default phase), ``pyloop-<phase>``
or a bare phase tag (``3.2.1``).

``benchmarks/profile/callgrind.py`` runs these too, for its per-function profile; three of them
are its own: ``single``, ``single_gc_off``, ``threadsafe`` and ``threadsafe_given_context`` (the
only ones with a thread: not repeatable under valgrind, which the profile says and shows with two
runs).
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import socket
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
    if name == "pyloop" or name.startswith("pyloop-") or name[:1].isdigit():
        import pyloop

        phase = name if name[:1].isdigit() else name.partition("-")[2] or None
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


def single(loop: asyncio.AbstractEventLoop, n: int) -> None:
    """n ``call_soon(noop)`` before the loop runs, then the run (the Python benchmarks'
    single-thread scenario)."""
    for _ in range(n):
        loop.call_soon(noop)
    loop.call_soon(loop.stop)
    loop.run_forever()


def single_gc_off(loop: asyncio.AbstractEventLoop, n: int) -> None:
    """``single`` with the cyclic collector off."""
    gc.disable()
    single(loop, n)


def threadsafe(loop: asyncio.AbstractEventLoop, n: int, given_context: bool = False) -> None:
    """One other thread sends n ``call_soon_threadsafe(noop)`` while the loop runs; with
    ``given_context``, each with ``context=`` one Context of the thread's (no copy)."""

    def produce() -> None:
        send = loop.call_soon_threadsafe
        if given_context:
            context = contextvars.Context()
            for _ in range(n):
                send(noop, context=context)
        else:
            for _ in range(n):
                send(noop)
        send(loop.stop)

    producer = threading.Thread(target=produce)
    loop.call_soon(producer.start)
    loop.run_forever()
    producer.join()


def sock_echo(loop: asyncio.AbstractEventLoop, n: int) -> None:
    """n round trips of 1 KB over a socket pair (AF_UNIX), both ends in the loop: one task
    sends with ``sock_sendall`` and waits for the reply with ``sock_recv``, the other echoes
    it (the raw-socket mode of the I/O benchmark, without its client process; the kernel's
    work is not counted)."""
    message = b"x" * 1024
    left, right = socket.socketpair()
    left.setblocking(False)
    right.setblocking(False)

    async def echo() -> None:
        while data := await loop.sock_recv(right, 65536):
            await loop.sock_sendall(right, data)

    async def main() -> None:
        echoer = asyncio.ensure_future(echo())
        for _ in range(n):
            await loop.sock_sendall(left, message)
            got = 0
            while got < len(message):
                got += len(await loop.sock_recv(left, 65536))
        left.shutdown(socket.SHUT_WR)
        await echoer

    try:
        loop.run_until_complete(main())
    finally:
        left.close()
        right.close()


def protocol_echo(loop: asyncio.AbstractEventLoop, n: int, size: int = 1024) -> None:
    """n round trips of ``size`` bytes (1 KB) over TCP on 127.0.0.1 between two
    ``asyncio.Protocol`` s on the loop's transports: the client writes, the server's
    ``data_received`` writes it back (the protocol mode of the I/O benchmark, without its
    client process)."""
    message = b"x" * size
    done = loop.create_future()

    class Echo(asyncio.Protocol):
        def connection_made(self, transport) -> None:
            self.transport = transport

        def data_received(self, data) -> None:
            self.transport.write(data)

    class Client(asyncio.Protocol):
        def connection_made(self, transport) -> None:
            self.transport = transport
            self.left = n
            self.got = 0
            transport.write(message)

        def data_received(self, data) -> None:
            self.got += len(data)
            if self.got < len(message):
                return
            self.got = 0
            self.left -= 1
            if self.left:
                self.transport.write(message)
            elif not done.done():
                done.set_result(None)

    async def main() -> None:
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client, _ = await loop.create_connection(Client, "127.0.0.1", port)
        await done
        client.close()
        server.close()
        await asyncio.sleep(0)

    loop.run_until_complete(main())


#: The workloads ``run.py`` measures by default (single-threaded, repeatable under valgrind).
WORKLOADS = {
    "call_soon": call_soon,
    "call_soon_steady": call_soon_steady,
    "pingpong": pingpong,
    "future_roundtrip": future_roundtrip,
    "gather": gather,
    "timers": timers,
    "sock_echo": sock_echo,
    "protocol_echo": protocol_echo,
}

#: Every workload, the profile's included.
ALL_WORKLOADS = {
    **WORKLOADS,
    "single": single,
    "single_gc_off": single_gc_off,
    "threadsafe": threadsafe,
    "threadsafe_given_context": lambda loop, n: threadsafe(loop, n, given_context=True),
    "protocol_echo_10k": lambda loop, n: protocol_echo(loop, n, 10 * 1024),
}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ALL_WORKLOADS:
        print(__doc__, file=sys.stderr)
        print(f"workloads: {', '.join(ALL_WORKLOADS)}", file=sys.stderr)
        return 2
    name, workload, n = argv[0], argv[1], int(argv[2])
    loop = new_loop(name)
    try:
        ALL_WORKLOADS[workload](loop, n)
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
