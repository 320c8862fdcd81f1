"""The low-level socket API on every loop that does I/O: readers and writers, the ``sock_*``
coroutines over TCP and UDP, ``sock_sendfile``, name resolution.

Every test runs on stock asyncio (the reference) and on each pyloop phase that does I/O
(``tests.io_support.IO_LOOPS``), with conftest's checked ``loop``: an unexpected call of the
exception handler, a task left pending or a file descriptor left open fails the test.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile

import pytest

from tests.io_support import io_loop_spec, no_fd_leak  # noqa: F401 (fixtures)
from tests.support import run_bounded, run_forever_bounded

loop_spec = io_loop_spec  # this module's tests run on the loops that do I/O only
pytestmark = pytest.mark.usefixtures("no_fd_leak")


def _pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def _listener(family=socket.AF_INET, type_=socket.SOCK_STREAM) -> socket.socket:
    sock = socket.socket(family, type_)
    sock.bind(("127.0.0.1", 0))
    if type_ == socket.SOCK_STREAM:
        sock.listen(8)
    sock.setblocking(False)
    return sock


def test_add_reader_fires_on_data_and_remove_reader_stops_it(loop):
    a, b = _pair()
    with a, b:
        seen = []

        def on_readable():
            seen.append(a.recv(100))
            if len(seen) == 2:
                loop.stop()

        loop.add_reader(a.fileno(), on_readable)
        loop.call_soon(b.send, b"one")
        loop.call_later(0.01, b.send, b"two")
        run_forever_bounded(loop)
        assert seen == [b"one", b"two"]
        assert loop.remove_reader(a.fileno()) is True
        assert loop.remove_reader(a.fileno()) is False
        b.send(b"three")  # no reader now: nothing runs
        loop.run_until_complete(asyncio.sleep(0.01))
        assert seen == [b"one", b"two"]
        assert a.recv(100) == b"three"


def test_add_writer_fires_while_writable_and_remove_writer_stops_it(loop):
    a, b = _pair()
    with a, b:
        calls = []

        def on_writable(tag):
            calls.append(tag)
            if len(calls) == 3:
                assert loop.remove_writer(a) is True  # a file object works as well as an fd
                loop.call_later(0.01, loop.stop)

        loop.add_writer(a.fileno(), on_writable, "w")
        run_forever_bounded(loop)
        assert calls == ["w", "w", "w"]
        assert loop.remove_writer(a.fileno()) is False


def test_add_reader_replaces_the_previous_callback(loop):
    a, b = _pair()
    with a, b:
        seen = []
        loop.add_reader(a, seen.append, "first")
        loop.add_reader(a, lambda: (seen.append("second"), a.recv(10), loop.stop()))
        b.send(b"x")
        run_forever_bounded(loop)
        assert seen == ["second"]
        loop.remove_reader(a)


def test_reader_and_writer_on_one_fd_are_independent(loop):
    a, b = _pair()
    with a, b:
        events = []

        def readable():
            events.append(("r", a.recv(10)))
            loop.remove_reader(a)
            loop.stop()

        def writable():
            events.append(("w", None))
            loop.remove_writer(a)
            b.send(b"go")

        loop.add_reader(a, readable)
        loop.add_writer(a, writable)
        run_forever_bounded(loop)
        assert events == [("w", None), ("r", b"go")]


def test_sock_accept_connect_sendall_recv_round_trip(loop):
    listener = _listener()
    payload = os.urandom(1 << 20)  # 1 MiB: many partial sends and receives

    async def main():
        client = socket.socket()
        client.setblocking(False)
        accept = asyncio.ensure_future(loop.sock_accept(listener))
        await loop.sock_connect(client, listener.getsockname())
        server, addr = await accept
        assert addr == client.getsockname()
        assert server.gettimeout() == 0  # accepted sockets are non-blocking
        with client, server:

            async def echo():
                while True:
                    data = await loop.sock_recv(server, 65536)
                    if not data:
                        break
                    await loop.sock_sendall(server, data)
                server.shutdown(socket.SHUT_WR)

            echo_task = asyncio.ensure_future(echo())
            send_task = asyncio.ensure_future(loop.sock_sendall(client, payload))
            got = bytearray()
            buf = bytearray(50_000)
            while len(got) < len(payload):
                n = await loop.sock_recv_into(client, buf)
                assert n > 0
                got += buf[:n]
            await send_task
            client.shutdown(socket.SHUT_WR)
            assert await loop.sock_recv(client, 10) == b""
            await echo_task
            assert bytes(got) == payload

    with listener:
        run_bounded(loop, main())


def test_sock_recv_is_cancellable_and_leaves_no_reader(loop):
    a, b = _pair()
    with a, b:

        async def main():
            task = asyncio.ensure_future(loop.sock_recv(a, 10))
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            b.send(b"after")
            assert await loop.sock_recv(a, 10) == b"after"

        run_bounded(loop, main())


def test_sock_connect_refused_raises_connection_refused(loop):
    listener = _listener()
    address = listener.getsockname()
    listener.close()  # nobody listens there now

    async def main():
        with socket.socket() as s:
            s.setblocking(False)
            with pytest.raises(ConnectionRefusedError):
                await loop.sock_connect(s, address)

    run_bounded(loop, main())


def test_sock_udp_sendto_recvfrom_recvfrom_into(loop):
    server = _listener(type_=socket.SOCK_DGRAM)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.setblocking(False)

    async def main():
        await loop.sock_sendto(client, b"ping", server.getsockname())
        data, addr = await loop.sock_recvfrom(server, 100)
        assert (data, addr) == (b"ping", client.getsockname())
        await loop.sock_sendto(server, b"pong", addr)
        buf = bytearray(100)
        n, addr2 = await loop.sock_recvfrom_into(client, buf)
        assert (bytes(buf[:n]), addr2) == (b"pong", server.getsockname())

    with server, client:
        run_bounded(loop, main())


def test_sock_sendfile_sends_the_file_range(loop):
    data = os.urandom(300_000)
    listener = _listener()

    async def main(path):
        client = socket.socket()
        client.setblocking(False)
        accept = asyncio.ensure_future(loop.sock_accept(listener))
        await loop.sock_connect(client, listener.getsockname())
        server, _ = await accept
        with client, server, open(path, "rb") as f:

            async def receive():
                got = bytearray()
                while chunk := await loop.sock_recv(server, 65536):
                    got += chunk
                return bytes(got)

            reader = asyncio.ensure_future(receive())
            sent = await loop.sock_sendfile(client, f, 1000, 200_000)
            assert sent == 200_000
            assert f.tell() == 201_000
            client.shutdown(socket.SHUT_WR)
            assert await reader == data[1000:201_000]

    with listener, tempfile.NamedTemporaryFile() as tmp:
        tmp.write(data)
        tmp.flush()
        run_bounded(loop, main(tmp.name))


def test_getaddrinfo_and_getnameinfo(loop):
    async def main():
        infos = await loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        assert infos == socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        host, port = await loop.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICHOST)
        assert (host, port) == ("127.0.0.1", "80") or host == "127.0.0.1"

    run_bounded(loop, main())
