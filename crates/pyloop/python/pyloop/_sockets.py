"""The loop's low-level socket methods over the native loop's one-shot waits.

``sock_recv``, ``sock_recv_into``, ``sock_sendall``, ``sock_accept`` and ``sock_connect``
try the system call first, as asyncio's do. When it would block, asyncio registers a reader
or writer with its selector (a Python handle, a selector key, a done-callback, an
``epoll_ctl`` to add the descriptor and another to remove it) and the readiness comes back
through the selector's Python code. Here the coroutine asks the native loop for a future that
completes when the descriptor is ready (``_wait_fd``: one ``epoll_ctl``, the descriptor armed
with ``EPOLLONESHOT``), retries the call then, and waits again if it would still block
(``crates/pyloop/src/fd_wait.rs``).

Semantics are asyncio's: the same checks and errors, the same results; a cancelled call leaves
nothing registered. A descriptor that already has a reader or writer registered the asyncio way
keeps asyncio's path for that call.
"""

from __future__ import annotations

import socket
from asyncio import base_events

from ._native import sock_recv_into_nowait, sock_recv_nowait, sock_send_nowait

_READ = 1
_WRITE = 2
_socket = socket.socket


class NativeSocketMixin:
    """``sock_recv``, ``sock_recv_into``, ``sock_sendall``, ``sock_accept``, ``sock_connect``
    for the loop that can wait for I/O; placed before asyncio's selector loop in the MRO."""

    def _check_sock(self, sock) -> None:
        base_events._check_ssl_socket(sock)
        if self._debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")

    def _waits_natively(self, fd: int) -> bool:
        """Whether a wait on ``fd`` may use the native one-shot path: not when asyncio's
        selector already has a reader or writer for it (the two would share one epoll
        registration), as asyncio's own path then replaces that reader or writer."""
        self._ensure_fd_no_transport(fd)
        return fd not in self._selector._fd_to_key

    async def _until_fd_ready(self, fd: int, events: int) -> None:
        """Until ``fd`` is ready for ``events`` (a readiness may be spurious: callers retry)."""
        fut = self._wait_fd(fd, events)
        try:
            await fut
        except BaseException:
            self._forget_wait(fd, fut)
            raise

    async def sock_recv(self, sock, n):
        """Receive up to ``n`` bytes from the socket (asyncio's ``sock_recv``)."""
        self._check_sock(sock)
        if type(sock) is not _socket:  # a subclass may have its own recv
            return await super().sock_recv(sock, n)
        data = sock_recv_nowait(sock, n)
        if data is not None:
            return data
        fd = sock.fileno()
        if not self._waits_natively(fd):
            return await super().sock_recv(sock, n)
        while True:
            await self._until_fd_ready(fd, _READ)
            data = sock_recv_nowait(sock, n)
            if data is not None:
                return data

    async def sock_recv_into(self, sock, buf):
        """Receive data into the writable buffer ``buf`` (asyncio's ``sock_recv_into``)."""
        self._check_sock(sock)
        if type(sock) is not _socket:
            return await super().sock_recv_into(sock, buf)
        got = sock_recv_into_nowait(sock, buf)
        if got is not None:
            return got
        fd = sock.fileno()
        if not self._waits_natively(fd):
            return await super().sock_recv_into(sock, buf)
        while True:
            await self._until_fd_ready(fd, _READ)
            got = sock_recv_into_nowait(sock, buf)
            if got is not None:
                return got

    async def sock_sendall(self, sock, data):
        """Send all of ``data`` (asyncio's ``sock_sendall``)."""
        self._check_sock(sock)
        if type(sock) is not _socket:
            return await super().sock_sendall(sock, data)
        n = sock_send_nowait(sock, data)
        view = memoryview(data)
        if n == view.nbytes:
            return
        view = view.cast("B")  # contiguous: the send above would have refused it
        fd = sock.fileno()
        if not self._waits_natively(fd):
            # asyncio's path tries the whole send again: let it start from where we are.
            return await super().sock_sendall(sock, view[n:])
        start = n
        while start < len(view):
            await self._until_fd_ready(fd, _WRITE)
            start += sock_send_nowait(sock, view[start:])

    async def sock_accept(self, sock):
        """Accept a connection: ``(conn, address)``, ``conn`` non-blocking (asyncio's)."""
        self._check_sock(sock)
        fd = sock.fileno()
        while True:
            try:
                conn, address = sock.accept()
                conn.setblocking(False)
                return conn, address
            except (BlockingIOError, InterruptedError):
                pass
            if not self._waits_natively(fd):
                return await super().sock_accept(sock)
            await self._until_fd_ready(fd, _READ)

    async def sock_connect(self, sock, address):
        """Connect to ``address`` (asyncio's ``sock_connect``, names resolved as asyncio does)."""
        self._check_sock(sock)
        if sock.family == socket.AF_INET or (
            base_events._HAS_IPv6 and sock.family == socket.AF_INET6
        ):
            resolved = await self._ensure_resolved(
                address, family=sock.family, type=sock.type, proto=sock.proto, loop=self
            )
            _, _, _, _, address = resolved[0]
        fd = sock.fileno()
        try:
            sock.connect(address)
            return
        except (BlockingIOError, InterruptedError):
            pass
        if not self._waits_natively(fd):
            # asyncio's path connects again (EALREADY), then waits with a writer.
            return await super().sock_connect(sock, address)
        await self._until_fd_ready(fd, _WRITE)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err != 0:
            raise OSError(err, f"Connect call failed {address}")
