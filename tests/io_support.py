"""Helpers of the I/O tests: tests/test_io_*.py, tests/test_real_servers.py and
tests/cpython/test_io_modules.py.

Which loops can do I/O: stock asyncio, and the pyloop phases whose ``add_reader`` works
(``tests.loops.LoopSpec.has_io``; today 3.2.1, which waits in epoll). The other phases
sleep on a condition variable or poll, with no file descriptor to wake them, and raise
``NotImplementedError`` naming 3.2.1 from every I/O method (tests/test_io_basics.py checks
the message; tests/test_not_implemented.py every method). A pyloop entry whose extension
does not import counts as an I/O loop, so that its tests run and fail with the import error.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.loops import ALL_LOOPS, LoopSpec

#: The phase that can do I/O, as the NotImplementedError of the others names it.
IO_PHASE = "3.2.1"


def can_do_io(spec: LoopSpec) -> bool:
    """Whether the loop of ``spec`` implements asyncio's I/O methods."""
    if spec.error is not None:
        return True
    return spec.has_io


IO_LOOPS: tuple[LoopSpec, ...] = tuple(s for s in ALL_LOOPS if can_do_io(s))
NO_IO_LOOPS: tuple[LoopSpec, ...] = tuple(s for s in ALL_LOOPS if not can_do_io(s))


def open_fds() -> set[int]:
    """The file descriptors this process has open now (from /proc/self/fd)."""
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        with contextlib.suppress(OSError):
            os.fstat(fd)  # the descriptor listdir itself used is gone by now
            fds.add(fd)
    return fds


def describe_fds(fds: set[int]) -> list[str]:
    out = []
    for fd in sorted(fds):
        try:
            out.append(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            out.append(f"{fd} -> ?")
    return out


# --- TLS ---------------------------------------------------------------------------------


class Certificates:
    """A self-signed certificate for 127.0.0.1/localhost, made once per process.

    Made with the openssl command-line tool when it is installed (it is on Debian's base
    system); otherwise CPython's own test certificate (Lib/test/keycert.pem, shipped with
    the interpreter's test package) is used, which also names localhost."""

    def __init__(self) -> None:
        self._dir: tempfile.TemporaryDirectory | None = None
        self.certfile = ""
        self.keyfile = ""
        self.source = ""

    def _make(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="pyloop-tls-")
        where = Path(self._dir.name)
        openssl = shutil.which("openssl")
        if openssl:
            cert, key = where / "cert.pem", where / "key.pem"
            subprocess.run(
                [
                    openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert),
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )  # fmt: skip
            self.certfile, self.keyfile, self.source = str(cert), str(key), "openssl req -x509"
        else:
            from test.test_asyncio import utils as test_utils

            self.certfile, self.keyfile = test_utils.ONLYCERT, test_utils.ONLYKEY
            self.source = "CPython's Lib/test certificate"

    def ensure(self) -> Certificates:
        if not self.certfile:
            self._make()
        return self

    def server_context(self) -> ssl.SSLContext:
        self.ensure()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.certfile, self.keyfile)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        self.ensure()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.certfile)
        return ctx


CERTS = Certificates()


def nonblocking_pair() -> tuple[socket.socket, socket.socket]:
    """A connected pair of non-blocking sockets (``socket.socketpair``)."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def ends_on(c: socket.socket, d: socket.socket, fd: int):
    """Of the pair (c, d), the end given descriptor number ``fd`` and its peer; None if the
    system gave both ends other numbers."""
    if fd not in (c.fileno(), d.fileno()):
        return None
    return (c, d) if c.fileno() == fd else (d, c)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for servers that want a number)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(params=IO_LOOPS, ids=[s.id for s in IO_LOOPS])
def io_loop_spec(request) -> LoopSpec:
    """``loop_spec`` restricted to the loops that can do I/O. A module of I/O tests makes it
    its ``loop_spec`` (``loop_spec = io_loop_spec``), so that conftest's ``loop`` fixture (with
    its recording exception handler and teardown checks) gives loops of these kinds only."""
    spec = request.param
    if spec.error is not None:
        pytest.fail(spec.error, pytrace=False)
    return spec


@pytest.fixture
def no_fd_leak(loop):
    """Fails the test if it leaves file descriptors open: counted after the test's ``loop`` is
    made and before that loop is closed, so it sees what the test's sockets, transports,
    servers, pipes and subprocesses left behind. (That ``close()`` releases the loop's own
    descriptors is tested once, in tests/test_io_basics.py.)"""
    gc.collect()
    before = open_fds()
    yield
    deadline = time.monotonic() + 2.0
    while True:  # a thread (executor, child watcher) may still be closing its end
        gc.collect()
        leaked = open_fds() - before
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not leaked, "file descriptors leaked:\n" + "\n".join(describe_fds(leaked))
