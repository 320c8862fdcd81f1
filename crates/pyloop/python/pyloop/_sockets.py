"""The loop's low-level socket methods over the native loop's one-shot waits.

``sock_recv``, ``sock_recv_into``, ``sock_sendall``, ``sock_accept`` and ``sock_connect``
try the system call first, as asyncio's do. When it would block, asyncio registers a reader
or writer with its selector (a Python handle, a selector key, a done-callback, an
``epoll_ctl`` to add the descriptor and another to remove it) and the readiness comes back
through the selector's Python code to a callback that makes the call and completes the
method's future. Here the coroutine gives the native loop the socket and the call
(``_recv_when_ready``, ``_recv_into_when_ready``, ``_send_rest_when_ready``): the loop arms
the descriptor with ``EPOLLONESHOT`` (one ``epoll_ctl``), makes the call itself when it is
ready, waits again if it would still block, and completes the future with the result
(``crates/pyloop/src/fd_wait.rs``). ``sock_accept`` and ``sock_connect`` wait the same way
(``_wait_fd``) and make their call in the coroutine.

Semantics are asyncio's: the same checks and errors, the same results; a cancelled call leaves
nothing registered; in debug mode asyncio's checks of the socket come first. A socket of a
subclass (which may override ``recv`` or ``send``) keeps asyncio's path, and so does a call on
a descriptor that already has a reader (for the reading methods) or a writer (for the writing
ones) registered the asyncio way: asyncio's call replaces that reader or writer, and so does
this one. A reader or writer in the other direction shares the descriptor with the native wait
(``fd_wait.rs``): a task can wait in ``sock_recv`` while another sends with ``sock_sendfile``.
"""

from __future__ import annotations

import socket
from asyncio import base_events

from ._native import sock_recv_into_nowait, sock_recv_nowait, sock_sendall_nowait

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
        """Whether a wait on ``fd`` may use the native path because asyncio's selector has no
        reader or writer for it (the common case, checked first). On a closed loop, asyncio's
        ``RuntimeError``."""
        selector = self._selector
        if selector is None:  # closed (a plain test: a call per wait was 2 % of sock_echo)
            self._check_closed()
        self._ensure_fd_no_transport(fd)
        return fd not in selector._fd_to_key

    def _shares_natively(self, fd: int, direction: int) -> bool:
        """Whether a wait on ``fd`` for ``direction`` (``_READ``, ``_WRITE``), which asyncio's
        selector watches, may still use the native path: if the selector's reader or writer is
        in the other direction, the two share the descriptor. One in the same direction keeps
        asyncio's path, which replaces it, as asyncio does. So does a key left by a socket
        closed meanwhile (its number given to the socket waited on): asyncio's path then
        meets what asyncio meets, a registration whose file left the epoll set. A key
        registered by number, or by a file object that cannot say its number any more, may be
        such a key: nothing tells, so it takes asyncio's path too."""
        key = self._selector._fd_to_key[fd]
        if key.events & direction:
            return False
        owner = key.fileobj
        if isinstance(owner, int):
            return False
        try:
            return owner.fileno() == fd
        except (OSError, ValueError):  # a closed file object (a socket says -1)
            return False

    async def _until_done(self, sock, fut):
        """The result of a native wait on ``sock``; if the coroutine is cancelled (or the
        loop closes) first, the wait is forgotten. (``sock_recv``, ``sock_recv_into`` and
        ``sock_sendall`` repeat these lines instead of calling this: a second coroutine per
        wait was 6 % of a socket round trip's instructions, ``sock_echo`` in
        benchmarks/instr.)"""
        try:
            return await fut
        except BaseException:
            self._forget_wait(sock.fileno(), fut)
            raise

    # A native wait's future holds the call's result, or, when callbacks were queued ahead of
    # the readiness (one of them may cancel this coroutine, as asyncio runs them before its
    # reader callback), says the socket is ready and leaves the call to the coroutine: None for
    # the reading methods, the bytes sent so far for ``sock_sendall``
    # (``complete_waits`` in event_loop.rs). Resumed, the coroutine was not cancelled, and
    # makes the call itself.

    async def sock_recv(self, sock, n):
        """Receive up to ``n`` bytes from the socket (asyncio's ``sock_recv``)."""
        if type(sock) is _socket:
            if self.get_debug():
                self._check_sock(sock)
            while True:
                data = sock_recv_nowait(sock, n)
                if data is not None:
                    return data
                fd = sock.fileno()
                if not (self._waits_natively(fd) or self._shares_natively(fd, _READ)):
                    break
                fut = self._recv_when_ready(sock, fd, n)
                try:
                    data = await fut
                except BaseException:
                    self._forget_wait(sock.fileno(), fut)
                    raise
                if data is not None:
                    return data
        return await super().sock_recv(sock, n)

    async def sock_recv_into(self, sock, buf):
        """Receive data into the writable buffer ``buf`` (asyncio's ``sock_recv_into``)."""
        if type(sock) is _socket:
            if self.get_debug():
                self._check_sock(sock)
            while True:
                got = sock_recv_into_nowait(sock, buf)
                if got is not None:
                    return got
                fd = sock.fileno()
                if not (self._waits_natively(fd) or self._shares_natively(fd, _READ)):
                    break
                fut = self._recv_into_when_ready(sock, fd, buf)
                try:
                    got = await fut
                except BaseException:
                    self._forget_wait(sock.fileno(), fut)
                    raise
                if got is not None:
                    return got
        return await super().sock_recv_into(sock, buf)

    async def sock_sendall(self, sock, data):
        """Send all of ``data`` (asyncio's ``sock_sendall``)."""
        if type(sock) is not _socket:
            return await super().sock_sendall(sock, data)
        if self.get_debug():
            self._check_sock(sock)
        sent = sock_sendall_nowait(sock, data)
        if sent is None:
            return
        view = memoryview(data)  # holds the buffer, as asyncio's does, until all is sent
        while True:
            fd = sock.fileno()
            if not (self._waits_natively(fd) or self._shares_natively(fd, _WRITE)):
                # asyncio's path tries the whole send again: let it start from where we are.
                return await super().sock_sendall(sock, view.cast("B")[sent:])
            fut = self._send_rest_when_ready(sock, fd, view, sent)
            try:
                sent = await fut
            except BaseException:
                self._forget_wait(sock.fileno(), fut)
                raise
            if sent is None:
                return
            more = sock_sendall_nowait(sock, view.cast("B")[sent:])
            if more is None:
                return
            sent += more

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
            if not (self._waits_natively(fd) or self._shares_natively(fd, _READ)):
                return await super().sock_accept(sock)
            await self._until_done(sock, self._wait_fd(sock, fd, _READ))

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
        if not (self._waits_natively(fd) or self._shares_natively(fd, _WRITE)):
            # asyncio's path connects again (EALREADY), then waits with a writer.
            return await super().sock_connect(sock, address)
        await self._until_done(sock, self._wait_fd(sock, fd, _WRITE))
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err != 0:
            raise OSError(err, f"Connect call failed {address}")
