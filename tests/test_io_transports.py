"""TCP servers, connections and their transports, through protocols and streams, on every loop
that does I/O: what a protocol sees (``connection_made``, ``data_received``,
``eof_received``, ``connection_lost`` and its exception), flow control at the water marks,
``pause_reading``/``resume_reading``, ``write_eof``, ``abort``, ``close`` after the buffer
drains, ``get_extra_info``, ``BufferedProtocol``, ``Server`` objects, ``connect_accepted_socket``.

Stock asyncio is the reference: every test passes on it, and expects of pyloop exactly what
asyncio does. conftest's ``loop`` fails a test on an unexpected exception-handler call or a
pending task; ``no_fd_leak`` on a descriptor left open.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket

import pytest

from tests.io_support import io_loop_spec, no_fd_leak  # noqa: F401 (fixtures)
from tests.support import BOUND, run_bounded

loop_spec = io_loop_spec  # this module's tests run on the loops that do I/O only
pytestmark = pytest.mark.usefixtures("no_fd_leak")


class Recorder(asyncio.Protocol):
    """Records every protocol event, in order; futures for the ones a test waits for."""

    def __init__(self, loop) -> None:
        self.loop = loop
        self.events: list[str] = []
        self.data = bytearray()
        self.transport: asyncio.Transport | None = None
        self.made = loop.create_future()
        self.eof = loop.create_future()
        self.lost = loop.create_future()
        self.paused = 0
        self.resumed = 0
        self.want: int | None = None
        self.got_all = loop.create_future()

    def connection_made(self, transport) -> None:
        self.events.append("made")
        self.transport = transport
        self.made.set_result(transport)

    def data_received(self, data) -> None:
        assert isinstance(data, bytes)
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data
        if self.want is not None and len(self.data) >= self.want and not self.got_all.done():
            self.got_all.set_result(None)

    def eof_received(self):
        self.events.append("eof")
        self.eof.set_result(None)
        return None  # close the transport (the default)

    def pause_writing(self) -> None:
        self.events.append("pause_writing")
        self.paused += 1

    def resume_writing(self) -> None:
        self.events.append("resume_writing")
        self.resumed += 1

    def connection_lost(self, exc) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)


class Echo(Recorder):
    def data_received(self, data) -> None:
        super().data_received(data)
        self.transport.write(data)


async def _server(loop, factory, **kwargs):
    server = await loop.create_server(factory, "127.0.0.1", 0, **kwargs)
    return server, server.sockets[0].getsockname()


async def _connected_pair(loop, server_factory=None, client_factory=None, **kwargs):
    """A server with one accepted connection and the client of it: (server, sproto, cproto)."""
    accepted: list[Recorder] = []

    def make_server_proto():
        proto = (server_factory or (lambda: Recorder(loop)))()
        accepted.append(proto)
        return proto

    server, addr = await _server(loop, make_server_proto, **kwargs)
    _, cproto = await loop.create_connection(client_factory or (lambda: Recorder(loop)), *addr)
    while not accepted:
        await asyncio.sleep(0.001)
    await accepted[0].made
    return server, accepted[0], cproto


async def _close_server(server) -> None:
    server.close()
    await server.wait_closed()


def test_protocol_echo_and_clean_close(loop):
    async def main():
        server, sproto, cproto = await _connected_pair(loop, lambda: Echo(loop))
        cproto.want = 11
        cproto.transport.write(b"hello ")
        cproto.transport.writelines([b"wor", b"ld"])
        await cproto.got_all
        assert bytes(cproto.data) == b"hello world"
        cproto.transport.close()
        assert cproto.transport.is_closing()
        assert await cproto.lost is None  # closed by us: no exception
        await sproto.eof
        assert await sproto.lost is None
        assert sproto.events == ["made", "data", "eof", "lost"]
        assert cproto.events == ["made", "data", "lost"]
        await _close_server(server)

    run_bounded(loop, main())


def test_get_extra_info(loop):
    async def main():
        server, sproto, cproto = await _connected_pair(loop)
        ct, st = cproto.transport, sproto.transport
        csock = ct.get_extra_info("socket")
        assert csock.family == socket.AF_INET and csock.type == socket.SOCK_STREAM
        assert ct.get_extra_info("peername") == server.sockets[0].getsockname()
        assert ct.get_extra_info("sockname") == csock.getsockname()
        assert st.get_extra_info("peername") == ct.get_extra_info("sockname")
        assert st.get_extra_info("sockname") == ct.get_extra_info("peername")
        assert ct.get_extra_info("no such key") is None
        assert ct.get_extra_info("no such key", 42) == 42
        assert ct.get_extra_info("sslcontext") is None
        # TCP_NODELAY is set on TCP connections, as asyncio does
        assert csock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        ct.close()
        await sproto.lost
        await cproto.lost
        await _close_server(server)

    run_bounded(loop, main())


def test_write_eof_half_closes(loop):
    class Replier(Recorder):
        def eof_received(self):
            super().eof_received()
            self.transport.write(b"reply:" + bytes(self.data))
            self.transport.close()
            return True  # keep the transport open: we close it ourselves

    async def main():
        server, sproto, cproto = await _connected_pair(loop, lambda: Replier(loop))
        ct = cproto.transport
        assert ct.can_write_eof()
        ct.write(b"question")
        ct.write_eof()
        with pytest.raises(RuntimeError):
            ct.write(b"more")  # asyncio: "Cannot call write() after write_eof()"
        await cproto.eof
        assert bytes(cproto.data) == b"reply:question"
        assert await cproto.lost is None
        assert await sproto.lost is None
        await _close_server(server)

    run_bounded(loop, main())


def test_abort_drops_the_buffer_and_loses_the_connection_at_once(loop):
    async def main():
        server, sproto, cproto = await _connected_pair(loop)
        st = sproto.transport
        st.pause_reading()  # the client's writes pile up in its buffer
        ct = cproto.transport
        ct.write(b"x" * (8 << 20))
        assert ct.get_write_buffer_size() > 0
        ct.abort()
        assert ct.is_closing()
        assert await cproto.lost is None
        st.resume_reading()
        exc = await sproto.lost
        # the peer sees either a reset or an ordinary EOF, depending on what was in flight
        assert exc is None or isinstance(exc, ConnectionResetError), exc
        await _close_server(server)

    run_bounded(loop, main())


def test_close_sends_the_whole_buffer_first(loop):
    payload = os.urandom(4 << 20)

    async def main():
        server, sproto, cproto = await _connected_pair(loop)
        ct = cproto.transport
        ct.write(payload)
        ct.close()  # must not drop what is buffered
        assert ct.is_closing()
        await sproto.eof
        assert await sproto.lost is None
        assert hashlib.sha256(sproto.data).digest() == hashlib.sha256(payload).digest()
        assert await cproto.lost is None
        await _close_server(server)

    run_bounded(loop, main())


def test_write_buffer_limits_and_pause_resume_writing(loop):
    async def main():
        server, sproto, cproto = await _connected_pair(loop)
        st, ct = sproto.transport, cproto.transport
        ct.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
        assert ct.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        with pytest.raises(ValueError):
            ct.set_write_buffer_limits(high=1, low=2)
        st.pause_reading()
        assert not st.is_reading()
        chunk = b"y" * 65536
        written = 0
        while cproto.paused == 0:  # the kernel buffers fill, then ours
            ct.write(chunk)
            written += len(chunk)
            assert written < 256 << 20, "pause_writing() never called"
            await asyncio.sleep(0)
        assert ct.get_write_buffer_size() > 64 * 1024
        assert cproto.resumed == 0
        sproto.want = written
        st.resume_reading()
        assert st.is_reading()
        await sproto.got_all
        for _ in range(100):  # resume_writing comes once the buffer is under `low`
            if cproto.resumed:
                break
            await asyncio.sleep(0.01)
        assert (cproto.paused, cproto.resumed) == (1, 1)
        assert ct.get_write_buffer_size() <= 16 * 1024
        assert len(sproto.data) == written
        ct.close()
        await cproto.lost
        await sproto.lost
        await _close_server(server)

    run_bounded(loop, main())


def test_pause_reading_stops_data_received_until_resume(loop):
    async def main():
        server, sproto, cproto = await _connected_pair(loop)
        st, ct = sproto.transport, cproto.transport
        st.pause_reading()
        st.pause_reading()  # idempotent, as asyncio 3.11
        ct.write(b"while paused")
        await asyncio.sleep(0.05)
        assert sproto.data == b""
        sproto.want = len(b"while paused")
        st.resume_reading()
        st.resume_reading()
        await sproto.got_all
        assert bytes(sproto.data) == b"while paused"
        ct.close()
        await sproto.lost
        await cproto.lost
        await _close_server(server)

    run_bounded(loop, main())


def test_buffered_protocol_receives_into_its_buffer(loop):
    class Buffered(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buf = bytearray(1000)
            self.got = bytearray()
            self.sizes: list[int] = []
            self.lost = loop.create_future()
            self.eof = False

        def connection_made(self, transport) -> None:
            self.transport = transport

        def get_buffer(self, sizehint):
            self.sizes.append(sizehint)
            return memoryview(self.buf)[:700]  # smaller than asked for: must be respected

        def buffer_updated(self, nbytes) -> None:
            assert 0 < nbytes <= 700
            self.got += self.buf[:nbytes]

        def eof_received(self):
            self.eof = True

        def connection_lost(self, exc) -> None:
            self.lost.set_result(exc)

    payload = os.urandom(100_000)

    async def main():
        protos: list[Buffered] = []

        def factory():
            protos.append(Buffered())
            return protos[-1]

        server, addr = await _server(loop, factory)
        ct, cproto = await loop.create_connection(lambda: Recorder(loop), *addr)
        ct.write(payload)
        ct.close()
        await cproto.lost
        while not protos:
            await asyncio.sleep(0.001)
        assert await protos[0].lost is None
        assert protos[0].eof
        assert bytes(protos[0].got) == payload
        await _close_server(server)

    run_bounded(loop, main())


def test_streams_echo_server_with_several_clients(loop):
    async def handle(reader, writer):
        try:
            while line := await reader.readline():
                writer.write(line.upper())
                await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()

    async def client(addr, n):
        reader, writer = await asyncio.open_connection(*addr)
        lines = [f"client {n} line {i}\n".encode() for i in range(50)]
        for line in lines:
            writer.write(line)
        await writer.drain()
        got = [await reader.readline() for _ in lines]
        writer.write_eof()
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        assert got == [line.upper() for line in lines]

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        async with server:
            await asyncio.gather(*(client(addr, n) for n in range(8)))

    run_bounded(loop, main())


def test_streams_drain_waits_for_a_slow_reader(loop):
    size = 8 << 20

    async def main():
        received = loop.create_future()

        async def slow_reader(reader, writer):
            got = 0
            while chunk := await reader.read(4096):
                got += len(chunk)
                if got % (1 << 20) < 4096:
                    await asyncio.sleep(0.005)
            received.set_result(got)
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(slow_reader, "127.0.0.1", 0)
        async with server:
            reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
            writer.transport.set_write_buffer_limits(high=256 * 1024)
            block = b"z" * (1 << 20)
            max_buffered = 0
            for _ in range(size // len(block)):
                writer.write(block)
                max_buffered = max(max_buffered, writer.transport.get_write_buffer_size())
                await writer.drain()  # must wait, not let the buffer grow without bound
                assert writer.transport.get_write_buffer_size() <= 256 * 1024
            writer.write_eof()
            assert await received == size
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()

    run_bounded(loop, main(), timeout=3 * BOUND)


def test_server_object(loop):
    async def main():
        server = await loop.create_server(
            lambda: Recorder(loop), "127.0.0.1", 0, start_serving=False, backlog=5
        )
        assert not server.is_serving()
        assert server.get_loop() is loop
        await server.start_serving()
        assert server.is_serving()
        addr = server.sockets[0].getsockname()
        ct, cproto = await loop.create_connection(lambda: Recorder(loop), *addr)
        ct.close()
        await cproto.lost
        serve = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0.01)
        server.close()
        with pytest.raises(asyncio.CancelledError):
            await serve
        await server.wait_closed()
        assert not server.is_serving()
        assert server.sockets == ()
        with socket.socket() as s:  # nobody listens any more
            s.setblocking(False)
            with pytest.raises(ConnectionRefusedError):
                await loop.sock_connect(s, addr)

    run_bounded(loop, main())


def test_create_server_on_several_hosts_and_reuse_port(loop):
    async def main():
        server = await loop.create_server(
            lambda: Recorder(loop), ["127.0.0.1", "localhost"], 0, reuse_port=True
        )
        try:
            assert len(server.sockets) >= 1
            for sock in server.sockets:
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        finally:
            await _close_server(server)

    run_bounded(loop, main())


def test_create_connection_with_local_addr_and_to_a_refused_port(loop):
    async def main():
        server, addr = await _server(loop, lambda: Recorder(loop))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            local = probe.getsockname()
        ct, cproto = await loop.create_connection(lambda: Recorder(loop), *addr, local_addr=local)
        assert ct.get_extra_info("sockname") == local
        ct.close()
        await cproto.lost
        await _close_server(server)
        with pytest.raises(OSError):
            await loop.create_connection(lambda: Recorder(loop), *addr)

    run_bounded(loop, main())


def test_connect_accepted_socket(loop):
    async def main():
        lsock = socket.create_server(("127.0.0.1", 0))
        with lsock:
            lsock.setblocking(False)
            accept = asyncio.ensure_future(loop.sock_accept(lsock))
            ct, cproto = await loop.create_connection(lambda: Recorder(loop), *lsock.getsockname())
            conn, _ = await accept
        st, sproto = await loop.connect_accepted_socket(lambda: Echo(loop), conn)
        cproto.want = 4
        ct.write(b"ping")
        await cproto.got_all
        assert bytes(cproto.data) == b"ping"
        ct.close()
        await cproto.lost
        assert await sproto.lost is None

    run_bounded(loop, main())


def test_sendfile_on_a_transport(loop, tmp_path):
    data = os.urandom(500_000)
    path = tmp_path / "data.bin"
    path.write_bytes(data)

    async def main():
        server, sproto, cproto = await _connected_pair(loop)
        sproto.want = len(data) - 10
        with open(path, "rb") as f:
            sent = await loop.sendfile(cproto.transport, f, offset=10)
        assert sent == len(data) - 10
        await sproto.got_all
        assert bytes(sproto.data) == data[10:]
        cproto.transport.close()
        await cproto.lost
        await sproto.lost
        await _close_server(server)

    run_bounded(loop, main())
