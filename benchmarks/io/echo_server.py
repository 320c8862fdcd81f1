#!/usr/bin/env python3
"""An echo server on one event loop, in one of three modes (the process the client measures).

    python benchmarks/io/echo_server.py --loop pyloop --mode protocol

Modes, the same echo each way (whatever arrives goes back, no framing):

- ``raw``: ``loop.sock_accept`` and one task per connection doing ``loop.sock_recv`` /
  ``loop.sock_sendall`` (the low-level socket API);
- ``streams``: ``asyncio.start_server``, ``reader.read(64 KiB)`` / ``writer.write`` +
  ``await writer.drain()``;
- ``protocol``: an ``asyncio.Protocol`` whose ``data_received`` calls ``transport.write``.

It listens on 127.0.0.1 (port 0: the kernel picks; servers made by the loop's own
``create_server``, except in raw mode), prints ``READY <port>`` on stdout, answers a line
``cpu`` on stdin with ``CPU <seconds>`` (its own CPU time), and serves until stdin is closed
or it gets SIGTERM. The garbage collector stays on, as in a real
server. Nothing here knows which loop it runs on beyond :func:`loops.new_loop`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loops  # noqa: E402

READ_SIZE = 65536


async def _until_cancelled(loop, server) -> None:
    """Serve until the task is cancelled. Not ``server.serve_forever()``: rloop 0.5 panics
    in it ("entered unreachable code"); a server already serves after ``create_server``."""
    try:
        await loop.create_future()
    finally:
        server.close()


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data) -> None:
        self.transport.write(data)


async def serve_protocol(loop, ready) -> None:
    server = await loop.create_server(EchoProtocol, "127.0.0.1", 0, backlog=512)
    ready(server.sockets[0].getsockname()[1])
    await _until_cancelled(loop, server)


async def _stream_client(reader, writer) -> None:
    try:
        while data := await reader.read(READ_SIZE):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def serve_streams(loop, ready) -> None:
    server = await asyncio.start_server(
        _stream_client, "127.0.0.1", 0, backlog=512, limit=READ_SIZE
    )
    ready(server.sockets[0].getsockname()[1])
    await _until_cancelled(loop, server)


async def _raw_client(loop, conn) -> None:
    with conn:
        try:
            while data := await loop.sock_recv(conn, READ_SIZE):
                await loop.sock_sendall(conn, data)
        except ConnectionError:
            pass


async def serve_raw(loop, ready) -> None:
    with socket.socket() as lsock:
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(512)
        lsock.setblocking(False)
        ready(lsock.getsockname()[1])
        tasks = set()
        while True:
            conn, _ = await loop.sock_accept(lsock)
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = loop.create_task(_raw_client(loop, conn))
            tasks.add(task)
            task.add_done_callback(tasks.discard)


MODES = {"raw": serve_raw, "streams": serve_streams, "protocol": serve_protocol}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", required=True, choices=sorted(loops.LOOPS))
    parser.add_argument("--mode", required=True, choices=sorted(MODES))
    args = parser.parse_args()

    loop = loops.new_loop(args.loop)
    asyncio.set_event_loop(loop)

    def ready(port: int) -> None:
        print(f"READY {port}", flush=True)

    task = loop.create_task(MODES[args.mode](loop, ready))

    def stop(*_):
        loop.call_soon_threadsafe(task.cancel)

    def control() -> None:
        # The runner's channel (works on every loop, signals or not): a line "cpu" is
        # answered with this process's CPU seconds (user + system, microsecond resolution,
        # where /proc/<pid>/stat counts in 10 ms ticks); end of input stops the server.
        for line in sys.stdin:
            if line.strip() == "cpu":
                usage = resource.getrusage(resource.RUSAGE_SELF)
                print(f"CPU {usage.ru_utime + usage.ru_stime:.6f}", flush=True)
        stop()

    signal.signal(signal.SIGTERM, stop)
    threading.Thread(target=control, daemon=True).start()
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        pass
    finally:
        loop.close()


if __name__ == "__main__":
    main()
