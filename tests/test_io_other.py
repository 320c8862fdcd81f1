"""The rest of asyncio's I/O on every loop that does I/O: UDP endpoints, Unix sockets, TLS
(``ssl=`` on servers and connections, ``start_tls``), pipes, subprocesses (exec and shell,
through the streams API), and signals.

TLS uses a self-signed certificate for 127.0.0.1 made at test time
(``tests.io_support.CERTS``: the openssl command-line tool, or CPython's test certificate).
Stock asyncio is the reference; conftest's ``loop`` and ``no_fd_leak`` check every test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import sys
import tempfile

import pytest

from tests.io_support import CERTS, io_loop_spec, no_fd_leak  # noqa: F401 (fixtures)
from tests.support import run_bounded

loop_spec = io_loop_spec  # this module's tests run on the loops that do I/O only
pytestmark = pytest.mark.usefixtures("no_fd_leak")


# --- UDP -----------------------------------------------------------------------------------


class Datagrams(asyncio.DatagramProtocol):
    def __init__(self, loop, echo: bool = False) -> None:
        self.echo = echo
        self.received = asyncio.Queue()
        self.errors: list[Exception] = []
        self.lost = loop.create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data, addr) -> None:
        self.received.put_nowait((data, addr))
        if self.echo:
            self.transport.sendto(data.upper(), addr)

    def error_received(self, exc) -> None:
        self.errors.append(exc)

    def connection_lost(self, exc) -> None:
        self.lost.set_result(exc)


def test_udp_endpoints_echo(loop):
    async def main():
        st, sp = await loop.create_datagram_endpoint(
            lambda: Datagrams(loop, echo=True), local_addr=("127.0.0.1", 0)
        )
        addr = st.get_extra_info("sockname")
        ct, cp = await loop.create_datagram_endpoint(lambda: Datagrams(loop), remote_addr=addr)
        assert ct.get_extra_info("peername") == addr
        for i in range(20):
            ct.sendto(f"datagram {i}".encode())
        replies = [await cp.received.get() for _ in range(20)]
        assert [data for data, _ in replies] == [f"DATAGRAM {i}".encode() for i in range(20)]
        assert all(src == addr for _, src in replies)
        ct.close()
        st.close()
        assert await cp.lost is None
        assert await sp.lost is None

    run_bounded(loop, main())


def test_udp_error_received_on_refused_port(loop):
    async def main():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            dead = probe.getsockname()
        ct, cp = await loop.create_datagram_endpoint(lambda: Datagrams(loop), remote_addr=dead)
        for _ in range(50):  # ICMP port unreachable reaches a connected UDP socket
            ct.sendto(b"anyone?")
            await asyncio.sleep(0.005)
            if cp.errors:
                break
        assert cp.errors and isinstance(cp.errors[0], ConnectionRefusedError)
        ct.close()
        await cp.lost

    run_bounded(loop, main())


# --- Unix sockets ---------------------------------------------------------------------------


def test_unix_server_and_connection_with_streams(loop):
    async def handle(reader, writer):
        writer.write(b"unix:" + await reader.readline())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main(path):
        server = await asyncio.start_unix_server(handle, path)
        async with server:
            assert server.sockets[0].family == socket.AF_UNIX
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b"hello\n")
            assert await reader.read() == b"unix:hello\n"
            assert writer.get_extra_info("peername") == path
            writer.close()
            await writer.wait_closed()
        if os.path.exists(path):  # 3.11 and 3.12 leave the socket file; 3.13 removes it
            os.unlink(path)

    with tempfile.TemporaryDirectory() as tmp:
        run_bounded(loop, main(os.path.join(tmp, "s.sock")))


# --- TLS ------------------------------------------------------------------------------------


async def _tls_echo(reader, writer):
    try:
        while line := await reader.readline():
            writer.write(b"tls:" + line)
            await writer.drain()
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass  # the client may close first; asyncio reports it the same way


def test_tls_server_and_client(loop):
    async def main():
        limit = 1 << 21  # lines longer than the streams' default 64 KiB limit
        server = await asyncio.start_server(
            _tls_echo, "127.0.0.1", 0, ssl=CERTS.server_context(), limit=limit
        )
        async with server:
            host, port = server.sockets[0].getsockname()
            reader, writer = await asyncio.open_connection(
                host, port, ssl=CERTS.client_context(), server_hostname="localhost", limit=limit
            )
            ssl_object = writer.get_extra_info("ssl_object")
            assert ssl_object is not None and ssl_object.version().startswith("TLS")
            assert writer.get_extra_info("peercert")["subject"]
            assert writer.get_extra_info("sslcontext") is not None
            big = os.urandom(300_000).hex().encode() + b"\n"  # many TLS records
            writer.write(b"one\n" + big)
            assert await reader.readline() == b"tls:one\n"
            assert await reader.readline() == b"tls:" + big
            writer.close()
            await writer.wait_closed()

    run_bounded(loop, main())


def test_tls_client_rejects_an_unknown_certificate(loop, exc_handler):
    async def main():
        server = await asyncio.start_server(_tls_echo, "127.0.0.1", 0, ssl=CERTS.server_context())
        async with server:
            host, port = server.sockets[0].getsockname()
            strict = ssl.create_default_context()  # the system CAs: ours is not among them
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.open_connection(host, port, ssl=strict, server_hostname="localhost")
            await asyncio.sleep(0.05)  # the server side of the failed handshake ends

    run_bounded(loop, main())
    # The server's failed handshake is reported to the exception handler, as on asyncio
    # (or not at all, depending on which side notices first): either way, only SSL errors.
    for ctx in exc_handler.take():
        assert isinstance(ctx.get("exception"), (ssl.SSLError, ConnectionError)), ctx


def test_start_tls_upgrades_a_plain_connection(loop):
    async def handle(reader, writer):
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"OK\n")
        await writer.drain()
        await writer.start_tls(CERTS.server_context())
        line = await reader.readline()
        writer.write(b"secure:" + line)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with server:
            reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
            writer.write(b"STARTTLS\n")
            assert await reader.readline() == b"OK\n"
            await writer.start_tls(CERTS.client_context(), server_hostname="localhost")
            assert writer.get_extra_info("ssl_object") is not None
            writer.write(b"hi\n")
            assert await reader.read() == b"secure:hi\n"
            writer.close()
            await writer.wait_closed()

    run_bounded(loop, main())


# --- pipes ----------------------------------------------------------------------------------


def test_read_and_write_pipes(loop):
    async def main():
        rfd, wfd = os.pipe()
        rpipe, wpipe = os.fdopen(rfd, "rb", 0), os.fdopen(wfd, "wb", 0)
        reader = asyncio.StreamReader()
        rt, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), rpipe)
        wt, wp = await loop.connect_write_pipe(asyncio.Protocol, wpipe)
        wt.write(b"through a pipe\n" * 1000)
        wt.close()
        data = await reader.read()
        assert data == b"through a pipe\n" * 1000
        rt.close()
        await asyncio.sleep(0)  # connection_lost of both ends runs
        await asyncio.sleep(0)

    run_bounded(loop, main())


# --- subprocesses ---------------------------------------------------------------------------


def test_subprocess_exec_with_pipes(loop):
    code = "import sys; data = sys.stdin.read(); print(data.upper(), end=''); sys.exit(3)"

    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(b"hello child\n" * 1000)
        assert out == b"HELLO CHILD\n" * 1000
        assert err is None
        assert proc.returncode == 3

    run_bounded(loop, main())


def test_subprocess_shell_stderr_and_kill(loop):
    async def main():
        proc = await asyncio.create_subprocess_shell(
            "echo to-stderr 1>&2; echo to-stdout",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert (out, err, proc.returncode) == (b"to-stdout\n", b"to-stderr\n", 0)
        sleeper = await asyncio.create_subprocess_exec("sleep", "30")
        sleeper.kill()
        assert await sleeper.wait() == -signal.SIGKILL

    run_bounded(loop, main())


# --- signals --------------------------------------------------------------------------------


def test_add_signal_handler_runs_in_the_loop(loop):
    async def main():
        got = loop.create_future()

        def handler(*args):
            assert asyncio.get_running_loop() is loop
            got.set_result(args)

        loop.add_signal_handler(signal.SIGUSR1, handler, "a", 1)
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            assert await got == ("a", 1)
        finally:
            assert loop.remove_signal_handler(signal.SIGUSR1) is True
        assert loop.remove_signal_handler(signal.SIGUSR1) is False
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL

    run_bounded(loop, main())


def test_signal_handler_runs_while_callbacks_keep_the_loop_busy(loop):
    """A loop that always has ready callbacks must still run signal handlers soon (asyncio
    looks at its self-pipe on every turn)."""

    async def main():
        got = asyncio.Event()
        stop = False

        async def spin():
            while not stop:
                await asyncio.sleep(0)

        loop.add_signal_handler(signal.SIGUSR1, got.set)
        spinner = asyncio.ensure_future(spin())
        try:
            await asyncio.sleep(0)
            os.kill(os.getpid(), signal.SIGUSR1)
            await asyncio.wait_for(got.wait(), 2)
        finally:
            stop = True
            await spinner
            loop.remove_signal_handler(signal.SIGUSR1)

    run_bounded(loop, main())


def test_add_signal_handler_rejects_bad_input(loop):
    with pytest.raises(TypeError):
        loop.add_signal_handler(signal.SIGUSR1, asyncio.sleep)  # a coroutine function
    with pytest.raises(RuntimeError):
        loop.add_signal_handler(signal.SIGKILL, print)  # cannot be caught
    with pytest.raises(ValueError):
        loop.add_signal_handler(100_000, print)
