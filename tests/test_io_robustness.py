"""TCP under stress and misuse, on every loop that does I/O: a server under a slow reader, a
peer that resets the connection mid-write, writes after close, a 10 MB write, a protocol that
raises, many short connections. No crash, no hang (every test is bounded), no descriptor
leaked (``no_fd_leak``), and errors reach ``connection_lost`` or the exception handler exactly
as on stock asyncio: conftest's ``loop`` fails a test on any exception-handler call it did not
expect and take.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import struct

import pytest

from tests.io_support import io_loop_spec, no_fd_leak  # noqa: F401 (fixtures)
from tests.support import BOUND, run_bounded

loop_spec = io_loop_spec  # this module's tests run on the loops that do I/O only
pytestmark = pytest.mark.usefixtures("no_fd_leak")

MB = 1 << 20


class Producer(asyncio.Protocol):
    """Writes ``total`` bytes of a known pattern, honouring pause_writing/resume_writing."""

    def __init__(self, loop, total: int, chunk: int = 256 * 1024) -> None:
        self.loop = loop
        self.total = total
        self.chunk = chunk
        self.sent = 0
        self.paused = False
        self.pauses = 0
        self.lost = loop.create_future()
        self.digest = hashlib.sha256()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._produce()

    def _produce(self) -> None:
        while not self.paused and self.sent < self.total and not self.transport.is_closing():
            n = min(self.chunk, self.total - self.sent)
            block = (self.sent // self.chunk % 251).to_bytes(1, "big") * n
            self.digest.update(block)
            self.transport.write(block)
            self.sent += n
        if self.sent >= self.total and not self.transport.is_closing():
            self.transport.close()

    def pause_writing(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_writing(self) -> None:
        self.paused = False
        self.loop.call_soon(self._produce)

    def connection_lost(self, exc) -> None:
        self.lost.set_result(exc)


async def _serve_one(loop, factory):
    made: list[asyncio.Protocol] = []

    def wrapped():
        made.append(factory())
        return made[-1]

    server = await loop.create_server(wrapped, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname(), made


async def _accepted(made) -> asyncio.Protocol:
    while not made:
        await asyncio.sleep(0.001)
    return made[0]


async def _client_socket(loop, addr, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await loop.sock_connect(sock, addr)
    return sock


def test_server_under_a_slow_reader(loop):
    total = 16 * MB

    async def main():
        server, addr, made = await _serve_one(loop, lambda: Producer(loop, total))
        sock = await _client_socket(loop, addr, rcvbuf=64 * 1024)
        with sock:
            got = 0
            digest = hashlib.sha256()
            while True:
                data = await loop.sock_recv(sock, 64 * 1024)
                if not data:
                    break
                digest.update(data)
                got += len(data)
                if got % (2 * MB) < 64 * 1024:
                    await asyncio.sleep(0.01)  # a slow reader
            producer = await _accepted(made)
            assert await producer.lost is None
            assert got == total
            assert digest.digest() == producer.digest.digest()
            assert producer.pauses >= 1, "the slow reader never made the server pause writing"
        server.close()
        await server.wait_closed()

    run_bounded(loop, main(), timeout=3 * BOUND)


def test_peer_resets_mid_write(loop):
    async def main():
        server, addr, made = await _serve_one(loop, lambda: Producer(loop, 512 * MB))
        sock = await _client_socket(loop, addr, rcvbuf=32 * 1024)
        assert await loop.sock_recv(sock, 1000)  # the server is writing
        producer = await _accepted(made)
        # RST instead of FIN: close with SO_LINGER on and a zero timeout
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        exc = await producer.lost
        assert isinstance(exc, (ConnectionResetError, BrokenPipeError)), repr(exc)
        assert producer.sent < producer.total
        assert producer.transport.is_closing()
        producer.transport.write(b"after the reset")  # ignored, as asyncio: no exception
        server.close()
        await server.wait_closed()

    run_bounded(loop, main())


def test_streams_drain_raises_after_a_reset(loop):
    async def main():
        accepted = loop.create_future()

        async def handle(reader, writer):
            accepted.set_result(writer)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with server:
            reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
            peer = await accepted
            peer.transport.abort()  # the server side goes away
            with pytest.raises(ConnectionError):
                for _ in range(1000):
                    writer.write(b"x" * 65536)
                    await writer.drain()
            writer.close()
            with pytest.raises(ConnectionError):
                await writer.wait_closed()

    run_bounded(loop, main())


class Sink(asyncio.Protocol):
    def __init__(self, loop) -> None:
        self.data = bytearray()
        self.lost = loop.create_future()
        self.eof = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data) -> None:
        self.data += data

    def eof_received(self):
        self.eof = True

    def connection_lost(self, exc) -> None:
        self.lost.set_result(exc)


def test_write_after_close_is_dropped_silently(loop):
    async def main():
        server, addr, made = await _serve_one(loop, lambda: Sink(loop))
        transport, client = await loop.create_connection(lambda: Sink(loop), *addr)
        transport.write(b"before")
        transport.close()
        for _ in range(10):  # past asyncio's threshold for its "socket.send() raised" warning
            transport.write(b"after")
        assert await client.lost is None
        transport.write(b"after connection_lost")
        sink = await _accepted(made)
        assert await sink.lost is None
        assert sink.eof
        assert bytes(sink.data) == b"before"
        server.close()
        await server.wait_closed()

    run_bounded(loop, main())


def test_a_10_mb_write_in_one_call_both_ways(loop):
    payload = os.urandom(10 * MB)

    class EchoOnEof(Sink):
        def eof_received(self):
            super().eof_received()
            self.transport.write(bytes(self.data))  # 10 MB back in one write
            self.transport.close()
            return True

    async def main():
        server, addr, made = await _serve_one(loop, lambda: EchoOnEof(loop))
        transport, client = await loop.create_connection(lambda: Sink(loop), *addr)
        transport.write(payload)
        assert transport.get_write_buffer_size() <= len(payload)
        transport.write_eof()
        assert await client.lost is None
        assert client.eof
        assert len(client.data) == len(payload)
        assert hashlib.sha256(client.data).digest() == hashlib.sha256(payload).digest()
        assert await (await _accepted(made)).lost is None
        server.close()
        await server.wait_closed()

    run_bounded(loop, main(), timeout=3 * BOUND)


def test_exception_in_data_received_reaches_the_handler_and_connection_lost(loop, exc_handler):
    class Broken(Sink):
        def data_received(self, data) -> None:
            raise ZeroDivisionError("protocol bug")

    async def main():
        server, addr, made = await _serve_one(loop, lambda: Broken(loop))
        transport, client = await loop.create_connection(lambda: Sink(loop), *addr)
        transport.write(b"boom")
        broken = await _accepted(made)
        exc = await broken.lost
        assert isinstance(exc, ZeroDivisionError)
        assert await client.lost is None or isinstance(await client.lost, ConnectionError)
        server.close()
        await server.wait_closed()

    run_bounded(loop, main())
    calls = exc_handler.take()
    assert len(calls) == 1, calls
    assert isinstance(calls[0]["exception"], ZeroDivisionError)
    assert "data_received" in calls[0]["message"]
    assert calls[0].get("transport") is not None and calls[0].get("protocol") is not None


def test_many_short_connections_leave_nothing_behind(loop):
    async def handle(reader, writer):
        writer.write(await reader.read())
        writer.close()
        await writer.wait_closed()

    async def one(addr, i):
        reader, writer = await asyncio.open_connection(*addr)
        writer.write(b"%d" % i)
        writer.write_eof()
        assert await reader.read() == b"%d" % i
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=100)
        async with server:
            addr = server.sockets[0].getsockname()
            for start in range(0, 300, 30):
                await asyncio.gather(*(one(addr, i) for i in range(start, start + 30)))

    run_bounded(loop, main(), timeout=3 * BOUND)


def test_two_loops_in_two_threads_stream_byte_exact(loop, loop_factory):
    """Two loops, each in its own thread, each streaming to itself over TCP in chunks of
    random sizes (1 byte to past the native transport's 256 KB read buffer), while the other
    does the same, the GIL passing between the threads: every byte arrives, in order, on
    each. Each PyLoop loop reads into a buffer of its own (spare_bytes.rs); this is the
    case where two loops read at once."""
    import random
    import threading

    sizes = [1, 2, 100, 4095, 4096, 65537, 256 * 1024, 256 * 1024 + 1, 700_000]

    def stream(on, seed: int) -> tuple[bytes, bytes]:
        rnd = random.Random(seed)
        chunks = [os.urandom(rnd.choice(sizes)) for _ in range(40)]

        async def main():
            server, addr, made = await _serve_one(on, lambda: Sink(on))
            transport, client = await on.create_connection(lambda: Sink(on), *addr)
            for chunk in chunks:
                transport.write(chunk)
                await asyncio.sleep(0)  # let the server read between writes, now and then
            transport.write_eof()
            received = await _accepted(made)
            while not received.eof:
                await asyncio.sleep(0.001)
            transport.close()
            assert await client.lost is None
            await received.lost
            server.close()
            await server.wait_closed()
            return bytes(received.data)

        sent = b"".join(chunks)
        return hashlib.sha256(sent).digest(), hashlib.sha256(run_bounded(on, main())).digest()

    other = loop_factory()
    results: dict[str, tuple[bytes, bytes]] = {}
    errors: list[BaseException] = []

    def in_thread() -> None:
        try:
            results["thread"] = stream(other, 2)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=in_thread)
    thread.start()
    try:
        results["main"] = stream(loop, 1)
    finally:
        thread.join(3 * BOUND)
        if not thread.is_alive():
            other.close()
    assert not thread.is_alive(), "the other loop's thread did not finish"
    if errors:
        raise errors[0]
    for where, (sent, received) in results.items():
        assert received == sent, f"the loop in the {where} thread received other bytes"
