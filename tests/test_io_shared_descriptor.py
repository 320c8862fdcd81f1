"""One socket, two directions: a ``sock_*`` call waiting on a descriptor while a reader or
writer (``add_reader``, ``add_writer``, or asyncio's own code that uses them, such as
``sock_sendfile``) watches the same descriptor in the other direction.

On stock asyncio the two directions are independent: one task waits in ``sock_recv`` while
another sends a file on the same socket. PyLoop's ``sock_recv``, ``sock_recv_into``,
``sock_sendall``, ``sock_accept`` and ``sock_connect`` wait natively with a one-shot epoll
registration, asyncio's readers and writers with a persistent one; while both watch a
descriptor its registration covers both (``crates/pyloop/src/fd_wait.rs``). These tests check
that each side gets its readiness and only its own: nothing lost, nothing reported twice, no
callback run for a direction it did not ask for, no loop left waking up for a direction nobody
waits for any more, and each side still working after the other has gone. In one direction
both cannot work, on any loop: asyncio's reader or writer replaces the call's, and the call
waits for ever; PyLoop refuses it (tests/deviations.py, "a reader or writer in the direction
of a pending sock_* call").

Every test runs on stock asyncio (the reference) and on each phase that does I/O, with
conftest's checked ``loop`` (no unexpected exception-handler call, no task left pending, no
descriptor left open).
"""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import socket
import tempfile

import pytest

from tests.deviations import is_pyloop
from tests.io_support import ends_on as _ends
from tests.io_support import io_loop_spec, no_fd_leak  # noqa: F401 (fixtures)
from tests.io_support import nonblocking_pair as _pair
from tests.support import closing, run_bounded

loop_spec = io_loop_spec
pytestmark = pytest.mark.usefixtures("no_fd_leak")

#: Larger than a socket pair's buffers on Linux, so a send waits for the peer many times.
BIG = 4 * 1024 * 1024

#: How many times an idle loop may go to sleep in ``_IDLE`` seconds: a few (PyLoop sleeps at
#: most 100 ms at a time, asyncio until its next timer). A loop that epoll keeps waking for a
#: direction nobody waits for goes back to epoll thousands of times meanwhile.
_IDLE = 0.3
_FEW_WAKEUPS = 20


async def _settle(turns: int = 5) -> None:
    """A few turns of the loop, each of which polls for I/O."""
    for _ in range(turns):
        await asyncio.sleep(0)


class Calls:
    """A reader or writer callback that counts its calls and can be awaited for the next."""

    def __init__(self, action=None) -> None:
        self.count = 0
        self._action = action
        self._next: asyncio.Future | None = None

    def __call__(self) -> None:
        self.count += 1
        if self._action is not None:
            self._action()
        if self._next is not None and not self._next.done():
            self._next.set_result(None)

    async def more(self, n: int = 1) -> None:
        """Returns once the callback has run ``n`` more times."""
        target = self.count + n
        while self.count < target:
            self._next = asyncio.get_running_loop().create_future()
            await self._next


def _wakeups(loop):
    """A function that tells how many times ``loop`` has gone to sleep in its I/O wait so
    far: asyncio's ``select()`` calls, PyLoop's idle waits (its queue's counter)."""
    if is_pyloop(loop):
        return lambda: loop._queue_stats()["idle_waits"]
    calls = [0]
    select = loop._selector.select

    def counted(timeout=None):
        calls[0] += 1
        return select(timeout)

    loop._selector.select = counted
    return lambda: calls[0]


async def _idle_wakeups(count) -> int:
    """How many times the loop goes to sleep while this task sleeps ``_IDLE`` seconds."""
    before = count()
    await asyncio.sleep(_IDLE)
    return count() - before


async def _drain(loop, sock: socket.socket, size: int) -> bytes:
    """Exactly ``size`` bytes received from ``sock`` with ``sock_recv``."""
    got = bytearray()
    while len(got) < size:
        data = await loop.sock_recv(sock, 65536)
        assert data, "the peer closed early"
        got += data
    return bytes(got)


def _read_what_is_there(sock: socket.socket) -> None:
    """Reads from ``sock`` until it would block."""
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        pass


def test_a_writer_added_while_sock_recv_waits_fires_and_the_recv_completes(loop):
    """``sock_recv`` waits; a writer is added on the same socket and fires (the socket is
    writable) while the call keeps waiting; data then completes the call, once: the next call
    gets the next data."""
    a, b = _pair()
    with a, b:

        async def main():
            recv = asyncio.ensure_future(loop.sock_recv(a, 100))
            await _settle()
            writer = Calls()
            loop.add_writer(a, writer)
            try:
                await writer.more(3)
                assert not recv.done()
                b.send(b"first")
                first = await recv
                await writer.more(2)
                b.send(b"second")
                second = await loop.sock_recv(a, 100)
            finally:
                removed = loop.remove_writer(a)
            return first, second, removed

        assert run_bounded(loop, main()) == (b"first", b"second", True)


def test_sock_sendfile_while_sock_recv_waits_on_the_same_socket(loop):
    """One task waits in ``sock_recv`` on a socket while another sends a file far larger than
    the socket's buffer on it with ``loop.sock_sendfile`` (asyncio's, whose ``os.sendfile``
    waits with a writer on that socket each time the buffer is full): the peer gets the file's
    bytes, and the waiting call then gets the peer's reply."""
    a, b = _pair()
    content = os.urandom(BIG)
    with a, b, tempfile.TemporaryFile() as file:
        file.write(content)
        file.seek(0)

        async def peer():
            got = await _drain(loop, b, len(content))
            await loop.sock_sendall(b, b"reply")
            return got

        async def main():
            recv = asyncio.ensure_future(loop.sock_recv(a, 100))
            await _settle()
            receiving = asyncio.ensure_future(peer())
            sent = await loop.sock_sendfile(a, file)
            got = await receiving
            return sent, got == content, await recv

        assert run_bounded(loop, main()) == (BIG, True, b"reply")


@pytest.mark.parametrize("order", ["reader then sock_sendall", "writer then sock_recv"])
def test_a_reader_or_writer_registered_first_then_a_call_in_the_other_direction(loop, order):
    """A reader (or writer) is registered first; then ``sock_sendall`` (or ``sock_recv``) waits
    on the same socket in the other direction. Both work: the call completes, the reader runs
    only when data comes (never for the writable socket), the writer runs while it stays."""
    a, b = _pair()
    with a, b:

        async def reader_then_sendall():
            got = []
            reader = Calls(lambda: got.append(a.recv(100)))
            loop.add_reader(a, reader)
            try:
                sending = asyncio.ensure_future(loop.sock_sendall(a, b"s" * BIG))
                await _settle()
                assert not sending.done()
                assert await _drain(loop, b, BIG) == b"s" * BIG
                await sending
                calls_before_data = reader.count
                b.send(b"to the reader")
                await reader.more()
            finally:
                loop.remove_reader(a)
            return calls_before_data, got

        async def writer_then_recv():
            writer = Calls()
            loop.add_writer(a, writer)
            try:
                recv = asyncio.ensure_future(loop.sock_recv(a, 100))
                await writer.more(3)
                assert not recv.done()
                b.send(b"to the call")
                got = await recv
                await writer.more(2)
            finally:
                loop.remove_writer(a)
            return got

        if order == "reader then sock_sendall":
            assert run_bounded(loop, reader_then_sendall()) == (0, [b"to the reader"])
        else:
            assert run_bounded(loop, writer_then_recv()) == b"to the call"


def test_remove_writer_then_the_recv_still_completes(loop):
    """``sock_recv`` waits; a writer comes and goes on the same socket: the writer is not
    called after its removal, and the call completes when data comes."""
    a, b = _pair()
    with a, b:

        async def main():
            recv = asyncio.ensure_future(loop.sock_recv(a, 100))
            await _settle()
            writer = Calls()
            loop.add_writer(a, writer)
            await writer.more(2)
            assert loop.remove_writer(a) is True
            calls = writer.count
            await _settle()
            assert writer.count == calls
            assert not recv.done()
            b.send(b"after the writer")
            return await recv

        assert run_bounded(loop, main()) == b"after the writer"


def test_cancelling_the_recv_leaves_the_writer_firing(loop):
    """``sock_recv`` waits and a writer watches the same socket; the call is cancelled: the
    writer keeps firing, and data that arrives afterwards stays in the socket (the cancelled
    call read nothing)."""
    a, b = _pair()
    with a, b:

        async def main():
            recv = asyncio.ensure_future(loop.sock_recv(a, 100))
            await _settle()
            writer = Calls()
            loop.add_writer(a, writer)
            try:
                await writer.more()
                recv.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await recv
                await writer.more(3)
                b.send(b"kept")
                await writer.more(3)
            finally:
                loop.remove_writer(a)
            return a.recv(100)

        assert run_bounded(loop, main()) == b"kept"


@pytest.mark.parametrize(
    "case",
    [
        "add_reader while sock_recv waits",
        "add_writer while sock_sendall waits",
        "add_reader while sock_recv waits beside a writer",
    ],
)
def test_a_reader_or_writer_in_the_direction_of_a_waiting_call(loop, loop_spec, case):
    """A reader (writer) added on a socket that a ``sock_recv`` (``sock_sendall``) waits on
    in the same direction. Stock asyncio replaces the call's reader with the new one: the
    reader gets the readiness, and the call waits for ever. PyLoop raises ``RuntimeError`` and
    the call completes (tests/deviations.py, "a reader or writer in the direction of a pending
    sock_* call"). The third case adds the reader to a descriptor that already has a writer."""
    a, b = _pair()
    with a, b:

        async def main():
            writer = None
            if case.startswith("add_writer"):
                call = asyncio.ensure_future(loop.sock_sendall(a, b"s" * BIG))
            else:
                call = asyncio.ensure_future(loop.sock_recv(a, 100))
            await _settle()
            if case.endswith("beside a writer"):
                writer = Calls()
                loop.add_writer(a, writer)
            fired = Calls()
            add, remove = (
                (loop.add_writer, loop.remove_writer)
                if case.startswith("add_writer")
                else (loop.add_reader, loop.remove_reader)
            )
            try:
                add(a, fired)
            except RuntimeError as exc:
                refused = str(exc)
            else:
                refused = None
            try:
                if case.startswith("add_writer"):
                    if refused:
                        await _drain(loop, b, BIG)
                    else:
                        _read_what_is_there(b)
                        await fired.more()
                else:
                    b.send(b"data")
                    if refused:
                        await asyncio.wait([call])
                    else:
                        await fired.more()
                await _settle()
                outcome = (
                    refused,
                    fired.count > 0,
                    (call.result() if call.done() else "pending"),
                )
            finally:
                remove(a)
                if writer is not None:
                    loop.remove_writer(a)
                call.cancel()
                await asyncio.gather(call, return_exceptions=True)
            return outcome

        refused, fired, result = run_bounded(loop, main())
        if loop_spec.is_pyloop:
            assert refused is not None and "same direction" in refused
            assert (fired, result) == (False, None if case.startswith("add_writer") else b"data")
        else:
            assert (refused, fired, result) == (None, True, "pending")


def test_a_reader_is_not_called_while_the_other_direction_is_ready(loop):
    """``sock_sendall`` of more than the socket's buffer waits while a reader watches the same
    socket, which receives nothing: every time the peer drains, the socket turns writable, and
    the reader must not run for it. Once the send is done the loop sleeps (it is not woken for
    a writability nobody waits for any more); then data runs the reader, once."""
    a, b = _pair()
    count = _wakeups(loop)
    with a, b:

        async def main():
            sending = asyncio.ensure_future(loop.sock_sendall(a, b"s" * BIG))
            await _settle()
            got = []
            reader = Calls(lambda: got.append(a.recv(100)))
            loop.add_reader(a, reader)
            try:
                assert await _drain(loop, b, BIG) == b"s" * BIG
                await sending
                while_sending = reader.count
                idle = await _idle_wakeups(count)
                b.send(b"x")
                await reader.more()
                await _settle()
            finally:
                loop.remove_reader(a)
            return while_sending, idle < _FEW_WAKEUPS, reader.count, got

        assert run_bounded(loop, main()) == (0, True, 1, [b"x"])


def test_a_listener_with_a_writer_sleeps_after_sock_accept(loop):
    """``sock_accept`` waits on a listening socket; a writer watches it too (a listening
    socket is never writable: it must never run). Two clients connect; the call takes one,
    and the other waits in the backlog, so the socket stays readable with no call waiting
    for it: the loop must sleep, not be woken for it every turn. The next ``sock_accept``
    takes the second client."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    count = _wakeups(loop)
    with listener:

        async def main():
            accepting = asyncio.ensure_future(loop.sock_accept(listener))
            await _settle()
            writer = Calls()
            loop.add_writer(listener, writer)
            clients = [socket.socket(), socket.socket()]
            try:
                for client in clients:
                    client.setblocking(False)
                    await loop.sock_connect(client, listener.getsockname())
                first, _ = await accepting
                first.close()
                idle = await _idle_wakeups(count)
                second, _ = await loop.sock_accept(listener)
                second.close()
            finally:
                loop.remove_writer(listener)
                for client in clients:
                    client.close()
            return idle < _FEW_WAKEUPS, writer.count

        assert run_bounded(loop, main()) == (True, 0)


def test_remove_writer_after_the_socket_closed_and_its_number_was_reused(loop, loop_spec):
    """``sock_recv`` waits on socket A and a writer watches A; A is closed under both, a new
    socket gets A's number and ``sock_recv`` waits on it; then the writer is removed (by the
    number, which asyncio's selector still has). On PyLoop the new call finds the selector's
    key of A's writer, stale (its socket is closed), and takes asyncio's path, which must
    change a registration epoll dropped with A: the call raises ``FileNotFoundError``
    (ENOENT) and the selector drops the key, so ``remove_writer`` finds none; A's call fails
    with EBADF (tests/deviations.py, "a socket closed under a pending sock_* call"). (The
    writer was once watched again on the new socket instead, and ran on every turn for a
    socket that was not its own.) Stock asyncio keeps A's selector key, and the new call's reader
    replaces A's call's in it with no ``epoll_ctl``, so nothing is reported; removing the
    writer modifies a registration epoll dropped with A: ``remove_writer`` raises
    ``FileNotFoundError`` (ENOENT), the selector drops the key, and both calls stay
    pending."""
    a, b = _pair()
    with b:
        old_fd = a.fileno()

        async def main():
            old = asyncio.ensure_future(loop.sock_recv(a, 100))
            await _settle()
            writer = Calls()
            loop.add_writer(a, writer)
            await writer.more()
            a.close()
            c, d = _pair()
            with c, d:
                if (ends := _ends(c, d, old_fd)) is None:
                    loop.remove_writer(old_fd)
                    old.cancel()
                    await asyncio.gather(old, return_exceptions=True)
                    pytest.skip("the system gave the new pair other numbers")
                mine, peer = ends

                def outcome(task):
                    if not task.done():
                        return "pending"
                    if task.exception() is not None:
                        exc = task.exception()
                        return type(exc).__name__, exc.errno
                    return task.result()

                await _settle()
                closed_calls = writer.count
                new = asyncio.ensure_future(loop.sock_recv(mine, 100))
                await _settle()
                peer.send(b"new")
                await _settle(20)
                before_removal = outcome(new), writer.count > closed_calls
                try:
                    removed = loop.remove_writer(old_fd)
                except OSError as exc:
                    removed = type(exc).__name__
                calls = writer.count
                await _settle(20)
                result = (
                    before_removal,
                    removed,
                    outcome(new),
                    outcome(old),
                    writer.count == calls,
                )
                for task in (old, new):
                    task.cancel()
                await asyncio.gather(old, new, return_exceptions=True)
                return result

        result = run_bounded(loop, main())
        if loop_spec.is_pyloop:
            enoent = ("FileNotFoundError", errno.ENOENT)
            expected = ((enoent, False), False, enoent, ("OSError", errno.EBADF), True)
        else:
            expected = (("pending", False), "FileNotFoundError", "pending", "pending", True)
        assert result == expected


class _Received(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = b""

    def data_received(self, data: bytes) -> None:
        self.data += data


@pytest.mark.parametrize("then", ["cancel the call", "remove the writer"])
def test_a_transport_given_a_closed_sockets_number_keeps_its_registration(
    loop, loop_spec, exc_handler, then
):
    """``sock_recv`` waits on socket A and a writer watches A; A is closed under both, and a
    new connection's transport is made while every lower number is taken, so that PyLoop's
    transport, whose own duplicate takes the lowest free number, gets A's. Then the call is
    cancelled, or the writer removed by A's number. Neither may touch the transport's
    registration: it must still receive, and the loop must idle. (Both rewrote or removed
    it: the cancel left the number watched for writing only, level-triggered, and the loop
    spun; the removal took the transport out of the epoll set, and it never read again.)"""
    a, b = _pair()
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    peer, _ = listener.accept()
    listener.close()
    client.setblocking(False)
    number = a.fileno()
    count = _wakeups(loop)

    async def main():
        call = asyncio.ensure_future(loop.sock_recv(a, 100))
        await _settle()
        loop.add_writer(a, Calls())
        await _settle()
        a.close()
        held = []
        try:
            while (fd := os.dup(0)) < number:
                held.append(fd)
            os.close(fd)
            transport, protocol = await loop.connect_accepted_socket(_Received, client)
        finally:
            for fd in held:
                os.close(fd)
        try:
            took_it = os.path.samestat(os.fstat(number), os.fstat(client.fileno()))
        except OSError:
            took_it = False
        try:
            await _settle()
            if then == "cancel the call":
                call.cancel()
                await asyncio.gather(call, return_exceptions=True)
            else:
                try:
                    loop.remove_writer(number)
                except OSError:
                    pass  # asyncio: EBADF, the registration went with A
            peer.send(b"hello")
            for _ in range(100):
                if protocol.data:
                    break
                await asyncio.sleep(0.01)
            idle = await _idle_wakeups(count)
            return took_it, protocol.data, idle
        finally:
            transport.close()
            await _settle()
            if not took_it:
                try:
                    loop.remove_writer(number)
                except OSError:
                    pass
            call.cancel()
            await asyncio.gather(call, return_exceptions=True)

    try:
        took_it, data, idle = run_bounded(loop, main())
    finally:
        for sock in (b, peer, client):
            sock.close()
    # asyncio's cancelled call removes its reader from a descriptor already closed, and
    # reports the EBADF; PyLoop forgets the wait of a closed socket quietly.
    reports = [type(call.get("exception")).__name__ for call in exc_handler.take()]
    if loop_spec.is_pyloop:
        assert took_it, "the transport's duplicate did not get the closed socket's number"
        assert reports == []
    else:
        assert reports in ([], ["OSError"])
    assert data == b"hello"
    assert idle < _FEW_WAKEUPS, idle


def test_a_reader_added_where_a_closed_sockets_writer_was_left(loop):
    """A writer is left registered for socket A, A is closed and a new socket gets its number;
    ``add_reader`` on the new socket must change a registration epoll dropped with A:
    ``FileNotFoundError``, and the selector drops the stale key, so a second ``add_reader``
    works (asyncio's selector does so; PyLoop's kept the key, and every ``add_reader`` on
    the number failed)."""
    a, b = _pair()
    number = a.fileno()
    with b:

        async def main():
            loop.add_writer(a, Calls())
            await _settle()
            a.close()
            c, d = _pair()
            with c, d:
                if (ends := _ends(c, d, number)) is None:
                    loop.remove_writer(number)
                    pytest.skip("the system gave the new pair other numbers")
                mine, _ = ends
                outcomes = []
                for _ in range(2):
                    try:
                        loop.add_reader(mine, Calls())
                        outcomes.append("added")
                    except OSError as exc:
                        outcomes.append(type(exc).__name__)
                removed = loop.remove_reader(mine), loop.remove_writer(number)
                return outcomes, removed

        assert run_bounded(loop, main()) == (["FileNotFoundError", "added"], (True, False))


def test_closing_the_loop_with_a_waiting_call_and_a_writer(loop_factory):
    """A loop is closed while ``sock_recv`` waits on a socket and a writer watches it: the
    close releases both (no descriptor of the loop's stays open, the writer never runs again,
    removing it afterwards finds nothing), and the call's task is left pending, as a task
    pending when its loop closes is, which the loop reports when the task is collected."""
    a, b = _pair()
    reports = []
    with a, b:
        with closing(loop_factory()) as lp:
            lp.set_exception_handler(lambda _, context: reports.append(context["message"]))
            writer = Calls()

            async def start():
                task = asyncio.ensure_future(lp.sock_recv(a, 100))
                await _settle()
                lp.add_writer(a, writer)
                await writer.more(2)
                return task

            task = lp.run_until_complete(start())
            lp.close()
            calls = writer.count
            b.send(b"after the close")
            removed = lp.remove_writer(a)
            pending = not task.done()
            del task
            gc.collect()
        assert (pending, removed, writer.count == calls) == (True, False, True)
        assert reports == ["Task was destroyed but it is pending!"]
        assert a.recv(100) == b"after the close"


@pytest.mark.parametrize("kept", ["writer", "reader"])
def test_the_other_direction_survives_an_add_in_the_direction_of_a_waiting_call(loop, kept):
    """A writer (reader) watches a socket on which ``sock_recv`` (``sock_sendall``) waits;
    then a reader (writer) is added, in the call's direction. asyncio takes it (replacing the
    call's), PyLoop refuses it (tests/deviations.py, "a reader or writer in the direction of
    a pending sock_* call"); on both the callback of the other direction stays registered and
    keeps running. (PyLoop's refusal once dropped the selector's whole key, and with it that
    callback: a change refused is not a file that left the epoll set.)"""
    a, b = _pair()
    with a, b:

        async def main():
            if kept == "writer":
                call = asyncio.ensure_future(loop.sock_recv(a, 100))
                add_other, remove_other = loop.add_writer, loop.remove_writer
                add_new, remove_new = loop.add_reader, loop.remove_reader
                survivor = Calls()
            else:
                call = asyncio.ensure_future(loop.sock_sendall(a, b"s" * BIG))
                add_other, remove_other = loop.add_reader, loop.remove_reader
                add_new, remove_new = loop.add_writer, loop.remove_writer
                survivor = Calls(lambda: _read_what_is_there(a))
            await _settle()
            add_other(a, survivor)
            try:
                add_new(a, Calls())
            except RuntimeError:
                pass  # PyLoop's refusal
            await _settle()
            if kept == "reader":
                b.send(b"ping")
            await survivor.more()
            removed = remove_other(a)
            remove_new(a)
            call.cancel()
            await asyncio.gather(call, return_exceptions=True)
            return removed

        assert run_bounded(loop, main()) is True


@pytest.mark.parametrize("registered_by", ["number", "socket", "file object"])
def test_a_call_on_a_number_whose_closed_file_left_a_writer(loop, registered_by):
    """A writer is left registered for a file (by its number, by the socket, or by a file
    object), the file is closed and a new socket gets its number; ``sock_recv`` on the new
    socket must change a registration epoll dropped with the old file: ``FileNotFoundError``,
    the selector drops the stale key, the old writer never runs for the new socket, and a
    second ``sock_recv`` works. (PyLoop once watched the new socket for the old writer, which
    then ran on nearly every turn while the call stayed pending, if the key was registered by
    number; a closed file object's key raised ``ValueError``.)"""
    a, b = _pair()
    with a, b:
        if registered_by == "file object":
            read_end, write_end = os.pipe()
            os.close(read_end)
            owner = key = os.fdopen(write_end, "wb", buffering=0)
        else:
            owner = a
            key = a.fileno() if registered_by == "number" else a
        number = owner.fileno()

        async def main():
            writer = Calls()
            loop.add_writer(key, writer)
            await writer.more()
            owner.close()
            await _settle()  # a call the last turn queued may still run
            calls = writer.count
            c, d = _pair()
            with c, d:
                if (ends := _ends(c, d, number)) is None:
                    loop.remove_writer(number)
                    pytest.skip("the system gave the new pair other numbers")
                mine, peer = ends
                try:
                    first = await loop.sock_recv(mine, 100)
                except OSError as exc:
                    first = type(exc).__name__
                await _settle(10)
                removed = loop.remove_writer(number)
                peer.send(b"new")
                second = await loop.sock_recv(mine, 100)
                return first, writer.count == calls, removed, second

        assert run_bounded(loop, main()) == ("FileNotFoundError", True, False, b"new")


class _InterruptsOnce(asyncio.Protocol):
    """A protocol whose first ``data_received`` raises ``KeyboardInterrupt``."""

    def __init__(self) -> None:
        self.raised = False

    def data_received(self, data: bytes) -> None:
        if not self.raised:
            self.raised = True
            raise KeyboardInterrupt


def test_readiness_kept_by_an_interrupted_turn_is_not_given_to_a_new_owner(loop):
    """A transport's ``data_received`` raises ``KeyboardInterrupt`` in a turn that also found
    socket A, watched by a reader, readable. Before the loop runs again, the program removes
    A's reader, closes A, and adds a reader for a new socket that got A's number and has no
    data: that reader must not be called (asyncio's removal cancels A's queued reader;
    PyLoop once kept A's readiness by number and gave it to the new socket's reader)."""
    a, b = _pair()
    number = a.fileno()
    listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        transport, protocol = loop.run_until_complete(
            loop.create_connection(_InterruptsOnce, *listener.getsockname())
        )
        peer, _ = listener.accept()
    with b, peer:
        try:
            a_calls = []
            loop.add_reader(a, lambda: a_calls.append(a.recv(10)))

            async def provoke():
                peer.send(b"x")
                b.send(b"y")
                await asyncio.sleep(0.2)

            provoked = loop.create_task(provoke())
            with pytest.raises(KeyboardInterrupt):
                loop.run_until_complete(provoked)
            assert protocol.raised
            loop.remove_reader(a)
            a.close()
            c, d = _pair()
            with c, d:
                if (ends := _ends(c, d, number)) is None:
                    pytest.skip("the system gave the new pair other numbers")
                mine, _ = ends
                new_calls = Calls()
                loop.add_reader(mine, new_calls)
                run_bounded(loop, provoked)  # the rest of its 0.2 s: many turns
                loop.remove_reader(mine)
                assert new_calls.count == 0
        finally:
            a.close()
            transport.abort()
            run_bounded(loop, _settle())
