"""The ``sock_*`` methods under hostile use: a cancellation that races the data, a socket
closed under a pending call and its descriptor number given to a new socket, sends far larger
than the socket's buffer from every kind of buffer, a buffer resized while it is being sent, a
peer that resets mid-send, many sockets waiting at once.

PyLoop's ``sock_recv``, ``sock_recv_into`` and ``sock_sendall`` hand a waiting call to the
native loop, which makes the system call itself when the descriptor is ready
(``crates/pyloop/src/fd_wait.rs``); these tests are about what that must never do: read data
for a call nobody waits for any more, touch a descriptor number after its socket closed, or
send from memory the caller may have freed.

Every test runs on stock asyncio (the reference) and on each phase that does I/O, with
conftest's checked ``loop`` (no unexpected exception-handler call, no task left pending, no
descriptor left open).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import errno
import json
import socket
import struct

import pytest

from tests.io_support import ends_on as _ends
from tests.io_support import io_loop_spec, no_fd_leak  # noqa: F401 (fixtures)
from tests.io_support import nonblocking_pair as _pair
from tests.support import BOUND, run_bounded, run_child

loop_spec = io_loop_spec
pytestmark = pytest.mark.usefixtures("no_fd_leak")

#: Larger than a socket pair's buffers on Linux, so a send needs many writable events.
BIG = 4 * 1024 * 1024


def _listener() -> socket.socket:
    """A non-blocking TCP socket listening on 127.0.0.1."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    return listener


async def _connected(loop, listener) -> tuple[socket.socket, socket.socket]:
    """A TCP connection to ``listener`` made with the loop's methods: (client, server)."""
    client = socket.socket()
    client.setblocking(False)
    try:
        await loop.sock_connect(client, listener.getsockname())
        server, _ = await loop.sock_accept(listener)
    except BaseException:
        client.close()
        raise
    return client, server


async def _settle(turns: int = 5) -> None:
    """A few turns of the loop, each of which polls for I/O."""
    for _ in range(turns):
        await asyncio.sleep(0)


@pytest.mark.parametrize("how", ["cancel", "queued_callback"])
@pytest.mark.parametrize("method", ["sock_recv", "sock_recv_into"])
def test_a_call_cancelled_as_its_data_arrives_reads_nothing(loop, method, how):
    """The data arrives and the waiting call is cancelled before the loop polls (``cancel``),
    or by a callback already queued when the data arrives (``queued_callback``: asyncio runs
    it before its reader callback): the call must not consume the data (a cancelled call
    reads nothing), and the next call gets all of it. (Review of stop 23, the second case:
    PyLoop made the read in its I/O step, before the queued callback ran, and the bytes were
    lost; for ``sock_recv_into`` they were in the buffer with the count lost.)"""
    a, b = _pair()
    with a, b:
        buf = bytearray(100)

        def call():
            if method == "sock_recv":
                return loop.sock_recv(a, 100)
            return loop.sock_recv_into(a, buf)

        async def main():
            task = asyncio.ensure_future(call())
            await _settle()
            assert not task.done()
            b.send(b"kept")
            if how == "cancel":
                task.cancel()
            else:
                loop.call_soon(task.cancel)
                await asyncio.sleep(0)
            with pytest.raises(asyncio.CancelledError):
                await task
            assert buf == bytearray(100)
            got = await call()
            return got if method == "sock_recv" else bytes(buf[:got])

        assert run_bounded(loop, main()) == b"kept"


def test_a_read_cancelled_by_a_reader_reported_before_its_data_reads_nothing(loop):
    """A timer callback makes another descriptor readable and then sends the data, so the next
    poll reports both, the other descriptor first, with no callback queued: asyncio runs that
    descriptor's reader (``add_reader``), which cancels the waiting ``sock_recv``, before the
    call's own reader callback, and the data stays in the socket. PyLoop hands such readers to
    Python after its own events, so its call must wait for its coroutine here too."""
    a, b = _pair()
    c, d = _pair()
    with a, b, c, d:

        async def main():
            task = asyncio.ensure_future(loop.sock_recv(a, 100))
            await _settle()
            assert not task.done()

            def cancel_it():
                loop.remove_reader(c.fileno())
                task.cancel()

            loop.add_reader(c.fileno(), cancel_it)

            def both_ready():
                d.send(b"!")
                b.send(b"kept")

            loop.call_later(0.01, both_ready)
            with pytest.raises(asyncio.CancelledError):
                await task
            return await loop.sock_recv(a, 100)

        assert run_bounded(loop, main()) == b"kept"


def _fill(sock: socket.socket) -> int:
    """Sends filler until ``sock`` takes no byte more; returns how many it took."""
    filled = 0
    for size in (65536, 4096, 256, 16, 1):
        with contextlib.suppress(BlockingIOError):
            while True:
                filled += sock.send(b"f" * size)
    return filled


def _drain(sock: socket.socket) -> int:
    """Reads all ``sock`` has without waiting; returns how many bytes."""
    got = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            got += len(sock.recv(1 << 20))
    return got


async def _a_send_waiting_on_a_full_socket(loop, a):
    """Fills ``a``'s send buffer, then starts a ``sock_sendall`` of 4 KB on it, which waits;
    returns the bytes the fill sent and the task."""
    filled = _fill(a)
    task = asyncio.ensure_future(loop.sock_sendall(a, b"DATA" * 1000))
    await _settle()
    assert not task.done()
    return filled, task


def test_a_send_cancelled_by_a_reader_of_its_own_socket_in_the_same_event_sends_no_more(loop):
    """``sock_sendall`` waits on a full socket that also has a reader (``add_reader`` with the
    socket); the peer drains it and sends a byte, so one poll reports the socket readable and
    writable, with no callback queued. asyncio runs the reader first, which cancels the call,
    and the call sends nothing more. (Review of this fix: the reader of the same event was
    not counted as running first, so the rest was sent.)"""
    a, b = _pair()
    with a, b:

        async def main():
            filled, task = await _a_send_waiting_on_a_full_socket(loop, a)

            def cancel_it():
                loop.remove_reader(a)
                task.cancel()

            loop.add_reader(a, cancel_it)
            drained = []

            def drain_and_poke():
                drained.append(_drain(b))
                b.send(b"!")

            loop.call_later(0.01, drain_and_poke)
            with pytest.raises(asyncio.CancelledError):
                await task
            await _settle()
            return sum(drained) + _drain(b) - filled

        assert run_bounded(loop, main()) == 0


def test_a_send_cancelled_by_a_callback_queued_before_the_socket_drains_sends_no_more(loop):
    """``sock_sendall`` waits on a full socket; the peer drains it while a callback that cancels
    the call is already queued: as on asyncio, the call is cancelled and sends nothing more
    (review of stop 23: PyLoop sent all of it and then raised ``CancelledError``, so a caller
    that sent again sent it twice)."""
    a, b = _pair()
    with a, b:

        async def main():
            filled, task = await _a_send_waiting_on_a_full_socket(loop, a)
            drained = _drain(b)
            loop.call_soon(task.cancel)
            await asyncio.sleep(0)
            with pytest.raises(asyncio.CancelledError):
                await task
            await _settle()
            return drained + _drain(b) - filled

        # The socket was full: the first try sent nothing, and nothing was sent after it.
        assert run_bounded(loop, main()) == 0


def test_a_socket_closed_under_a_pending_call_then_its_number_reused(loop):
    """A call waits on socket A; A is closed, the call cancelled, and a new socket gets A's
    descriptor number: a reader and ``sock_recv`` on the new socket work."""
    a, b = _pair()
    with b:
        old_fd = a.fileno()

        async def main():
            task = asyncio.ensure_future(loop.sock_recv(a, 100))
            await _settle()
            a.close()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            c, d = _pair()
            with c, d:
                if (ends := _ends(c, d, old_fd)) is None:
                    pytest.skip("the system gave the new pair other numbers")
                mine, peer = ends
                seen = asyncio.Event()
                loop.add_reader(mine.fileno(), seen.set)
                try:
                    peer.send(b"to the new socket")
                    await seen.wait()
                finally:
                    loop.remove_reader(mine.fileno())
                got = await loop.sock_recv(mine, 100)
                peer.send(b"second")
                return got, await loop.sock_recv(mine, 100)

        assert run_bounded(loop, main()) == (b"to the new socket", b"second")


@pytest.mark.parametrize("new_wait", ["sock_recv", "add_reader"])
def test_a_socket_closed_under_a_pending_call_without_cancelling_it(loop, loop_spec, new_wait):
    """A call waits on socket A and A is closed under it (not cancelled); a new socket gets A's
    number and is waited on with ``sock_recv`` or a reader. Stock asyncio keeps the closed
    descriptor's selector key, so the new registration is a dictionary update with no
    ``epoll_ctl``: it is never reported (tests/deviations.py, "a socket closed under a
    pending sock_* call"). PyLoop reads the descriptor from the socket before any use: the
    new wait completes, and the old call fails with EBADF (when the number is next ready, or
    when a reader takes the number over)."""
    a, b = _pair()
    with b:
        old_fd = a.fileno()

        async def main():
            old = asyncio.ensure_future(loop.sock_recv(a, 100))
            await _settle()
            a.close()
            c, d = _pair()
            with c, d:
                if (ends := _ends(c, d, old_fd)) is None:
                    old.cancel()
                    await asyncio.gather(old, return_exceptions=True)
                    pytest.skip("the system gave the new pair other numbers")
                mine, peer = ends
                if new_wait == "sock_recv":
                    new = asyncio.ensure_future(loop.sock_recv(mine, 100))
                else:
                    new = loop.create_future()
                    loop.add_reader(mine.fileno(), lambda: new.done() or new.set_result(b"ready"))
                await _settle()
                peer.send(b"new")
                await _settle(20)
                if new_wait == "add_reader":
                    loop.remove_reader(mine.fileno())
                outcome = (
                    new.result() if new.done() else "pending",
                    type(old.exception()).__name__ if old.done() else "pending",
                    old.exception().errno if old.done() else None,
                )
                for task in (old, new):
                    task.cancel()
                await asyncio.gather(old, new, return_exceptions=True)
                return outcome

        outcome = run_bounded(loop, main())
        if loop_spec.is_pyloop:
            expected = b"new" if new_wait == "sock_recv" else b"ready"
            assert outcome == (expected, "OSError", 9)
        else:
            assert outcome == ("pending", "pending", None)


#: Buffers of every shape sock_sendall takes whole (asyncio counts len() of the data, so
#: kinds whose len() is not their size in bytes never finish on it; see
#: test_adversarial_buffers.SENDALL_KINDS).
def _payload(kind: str) -> object:
    raw = bytes(range(256)) * (BIG // 256)
    return {
        "bytes": raw,
        "bytearray": bytearray(raw),
        "memoryview": memoryview(raw),
        "memoryview_slice": memoryview(b"xx" + raw + b"yy")[2:-2],
        "array_B": array.array("B", raw),
    }[kind]


SEND_KINDS = ["bytes", "bytearray", "memoryview", "memoryview_slice", "array_B"]


@pytest.mark.parametrize("kind", SEND_KINDS)
def test_sock_sendall_far_larger_than_the_socket_buffer(loop, kind):
    """4 MB through a socket pair read by ``sock_recv`` on the same loop: the send completes
    over many writable events, and every byte arrives once, in order."""
    a, b = _pair()
    with a, b:
        data = _payload(kind)

        async def reader():
            got = bytearray()
            while len(got) < BIG:
                got += await loop.sock_recv(b, 65536)
            return bytes(got)

        async def main():
            received = asyncio.ensure_future(reader())
            await loop.sock_sendall(a, data)
            return await received

        assert run_bounded(loop, main()) == bytes(memoryview(data))


def test_a_bytearray_cannot_be_resized_while_it_is_being_sent(loop):
    """A pending ``sock_sendall`` holds the bytearray's buffer, as asyncio's does: resizing
    it raises ``BufferError`` and the bytes sent are the original ones."""
    a, b = _pair()
    with a, b:
        data = bytearray(b"z" * BIG)

        async def reader():
            got = bytearray()
            while len(got) < BIG:
                got += await loop.sock_recv(b, 65536)
            return bytes(got)

        async def main():
            send = asyncio.ensure_future(loop.sock_sendall(a, data))
            await _settle()
            assert not send.done()
            with pytest.raises(BufferError):
                data.extend(b"more")
            with pytest.raises(BufferError):
                del data[: BIG // 2]
            received = await reader()
            await send
            return received

        assert run_bounded(loop, main()) == b"z" * BIG


def test_sock_sendall_to_a_peer_that_resets(loop):
    """The peer resets the connection while a large send is pending: the send fails with the
    connection error, on every loop."""
    listener = _listener()
    with listener:

        async def main():
            client, server = await _connected(loop, listener)
            with client, server:
                send = asyncio.ensure_future(loop.sock_sendall(client, b"r" * (4 * BIG)))
                await _settle()
                assert not send.done()
                server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                server.close()
                with pytest.raises((ConnectionResetError, BrokenPipeError)):
                    await send

        run_bounded(loop, main())


def test_many_sockets_waiting_at_once_each_get_their_own_data(loop):
    """Fifty calls wait on fifty socket pairs; data is sent in the reverse order: each call
    gets exactly its own socket's bytes."""
    pairs = [_pair() for _ in range(50)]
    try:

        async def main():
            tasks = [asyncio.ensure_future(loop.sock_recv(a, 100)) for a, _ in pairs]
            await _settle()
            for i, (_, b) in reversed(list(enumerate(pairs))):
                b.send(b"pair %d" % i)
            return await asyncio.gather(*tasks)

        assert run_bounded(loop, main()) == [b"pair %d" % i for i in range(len(pairs))]
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_two_calls_on_one_socket_each_direction(loop):
    """A ``sock_recv`` and a ``sock_sendall`` wait on one socket at once (reading and writing
    share one descriptor and one registration): both complete."""
    a, b = _pair()
    with a, b:

        async def drain_b():
            got = 0
            while got < BIG:
                got += len(await loop.sock_recv(b, 65536))
            await loop.sock_sendall(b, b"reply")
            return got

        async def main():
            recv = asyncio.ensure_future(loop.sock_recv(a, 100))
            send = asyncio.ensure_future(loop.sock_sendall(a, b"s" * BIG))
            await _settle()
            assert not recv.done() and not send.done()
            counted = await drain_b()
            await send
            return counted, await recv

        assert run_bounded(loop, main()) == (BIG, b"reply")


def test_socket_errors_carry_their_errno(loop):
    """An error from the system call reaches the caller as the socket module raises it: the
    ``OSError`` subclass for the errno, with ``errno`` set (code that handles socket errors
    reads it). A reset peer fails ``sock_recv`` with ECONNRESET; a closed one fails
    ``sock_sendall`` with EPIPE, whether the first try or a later one meets it."""

    listener = _listener()
    with listener:

        async def main():
            outcomes = []
            client, server = await _connected(loop, listener)
            with client, server:
                recv = asyncio.ensure_future(loop.sock_recv(client, 100))
                await _settle()
                server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                server.close()
                exc = (await asyncio.gather(recv, return_exceptions=True))[0]
                outcomes.append((type(exc).__name__, exc.errno))
            a, b = _pair()
            with a:
                b.close()
                try:
                    await loop.sock_sendall(a, b"x" * BIG)
                except OSError as exc:
                    outcomes.append((type(exc).__name__, exc.errno))
            return outcomes

        assert run_bounded(loop, main()) == [
            ("ConnectionResetError", errno.ECONNRESET),
            ("BrokenPipeError", errno.EPIPE),
        ]


@pytest.mark.parametrize(
    "method", ["sock_recv", "sock_recv_into", "sock_sendall", "sock_accept", "sock_connect"]
)
def test_a_call_that_must_wait_on_a_closed_loop(loop_spec, method):
    """On a closed loop, a call that can complete at once does (asyncio tries the system call
    first), and one that would have to wait raises asyncio's ``RuntimeError``. (PyLoop raised
    ``AttributeError`` from its selector, which ``close()`` had dropped.)"""
    loop = loop_spec.new_loop()
    loop.close()
    a, b = _pair()
    listener = _listener()
    unconnected = socket.socket()
    unconnected.setblocking(False)
    try:
        if method == "sock_sendall":
            while True:  # fill the pair's buffers, so that the send must wait
                try:
                    a.send(b"x" * 65536)
                except BlockingIOError:
                    break
        calls = {
            "sock_recv": lambda: loop.sock_recv(a, 10),
            "sock_recv_into": lambda: loop.sock_recv_into(a, bytearray(4)),
            "sock_sendall": lambda: loop.sock_sendall(a, b"y" * 100_000),
            "sock_accept": lambda: loop.sock_accept(listener),
            "sock_connect": lambda: loop.sock_connect(unconnected, _unroutable()),
        }
        coro = calls[method]()
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            coro.send(None)
        if method in ("sock_recv", "sock_recv_into"):
            b.send(b"data")  # now the call completes at once, closed loop or not
            with pytest.raises(StopIteration) as done:
                calls[method]().send(None)
            assert done.value.value in (b"data", 4)
    finally:
        for sock in (a, b, listener, unconnected):
            sock.close()


def _unroutable() -> tuple[str, int]:
    """A TCP address a non-blocking connect must wait for: one that is never answered
    (TEST-NET-1, RFC 5737). Skips the test on a machine with no route to it, where the
    connect fails at once instead."""
    address = ("192.0.2.1", 9)
    with socket.socket() as probe:
        probe.setblocking(False)
        if probe.connect_ex(address) != errno.EINPROGRESS:
            pytest.skip("no route to TEST-NET-1: a connect there does not wait")
    return address


def test_cancelling_a_call_on_a_closed_socket_leaves_the_new_owner_of_its_number_alone(
    loop, loop_spec
):
    """A call waits on socket A; A is closed; a connection made with ``create_connection``
    gets A's descriptor number; then A's call is cancelled. Cancelling must not touch the
    descriptor number, which now belongs to the connection: PyLoop's connection keeps
    receiving (its transport watches a duplicate of the descriptor, and the cancelled wait
    leaves the number's registration alone, since its socket no longer owns it). Stock
    asyncio cannot make the connection (its ``sock_connect`` modifies the closed socket's
    selector key, and epoll no longer knows the number: ENOENT; tests/deviations.py, "a
    socket closed under a pending sock_* call")."""
    a, b = _pair()
    listener = _listener()
    with b, listener:
        old_fd = a.fileno()

        class Received(asyncio.Protocol):
            def __init__(self):
                self.data = bytearray()
                self.arrived = asyncio.Event()

            def data_received(self, data):
                self.data += data
                self.arrived.set()

        async def main():
            old = asyncio.ensure_future(loop.sock_recv(a, 100))
            await _settle()
            a.close()
            try:
                transport, protocol = await loop.create_connection(
                    Received, *listener.getsockname()
                )
            except OSError as exc:
                old.cancel()
                await asyncio.gather(old, return_exceptions=True)
                return "connect failed", type(exc).__name__
            server, _ = await loop.sock_accept(listener)
            with server:
                reused = transport.get_extra_info("socket").fileno() == old_fd
                old.cancel()
                await asyncio.gather(old, return_exceptions=True)
                await loop.sock_sendall(server, b"after the cancel")
                await asyncio.wait_for(protocol.arrived.wait(), 5)
                transport.close()
                await _settle()
            return ("reused" if reused else "other number"), bytes(protocol.data)

        outcome = run_bounded(loop, main())
        if loop_spec.is_pyloop:
            if outcome[0] == "other number":
                pytest.skip("the connection got another descriptor number")
            assert outcome == ("reused", b"after the cancel")
        else:
            assert outcome[0] == "connect failed"


@pytest.mark.parametrize("method", ["sock_recv", "sock_recv_into", "sock_sendall"])
def test_a_blocking_socket_in_debug_mode(loop, method):
    """In debug mode a socket that is not non-blocking is refused with asyncio's
    ``ValueError`` before any system call; outside debug mode the call goes ahead."""
    a, b = socket.socketpair()
    with a, b:
        b.setblocking(False)

        def call():
            if method == "sock_recv":
                return loop.sock_recv(a, 10)
            if method == "sock_recv_into":
                return loop.sock_recv_into(a, bytearray(10))
            return loop.sock_sendall(a, b"data")

        async def main():
            loop.set_debug(True)
            try:
                with pytest.raises(ValueError, match="non-blocking"):
                    await call()
            finally:
                loop.set_debug(False)
            if method == "sock_sendall":
                await call()
                return b.recv(10)
            b.send(b"data")
            return await call()

        assert run_bounded(loop, main()) == (4 if method == "sock_recv_into" else b"data")


def test_sock_recv_into_a_buffer_resized_while_it_waits(loop):
    """``sock_recv_into`` waits with a bytearray that is then shrunk (no export is held while
    it waits, as with asyncio): when data comes, the call fills what the buffer is by then and
    no more, and the rest of the data stays in the socket."""
    a, b = _pair()
    with a, b:
        buf = bytearray(100)

        async def main():
            call = asyncio.ensure_future(loop.sock_recv_into(a, buf))
            await _settle()
            assert not call.done()
            del buf[10:]
            b.send(b"0123456789abcdefghij")
            got = await call
            return got, bytes(buf), await loop.sock_recv(a, 100)

        assert run_bounded(loop, main()) == (10, b"0123456789", b"abcdefghij")


def test_socket_calls_submitted_from_other_threads(loop):
    """Four threads each submit a ``sock_recv`` and a ``sock_sendall`` on their own socket
    pair with ``run_coroutine_threadsafe`` while the loop runs: every call is made on the
    loop's thread and each thread gets its own bytes back."""
    import threading

    pairs = [_pair() for _ in range(4)]
    results: dict[int, bytes] = {}

    def worker(i: int) -> None:
        a, b = pairs[i]
        recv = asyncio.run_coroutine_threadsafe(loop.sock_recv(a, 100), loop)
        sent = asyncio.run_coroutine_threadsafe(loop.sock_sendall(b, b"thread %d" % i), loop)
        sent.result(BOUND)
        results[i] = recv.result(BOUND)

    async def main():
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(pairs))]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            await asyncio.sleep(0.001)
        for t in threads:
            t.join()

    try:
        run_bounded(loop, main())
    finally:
        for a, b in pairs:
            a.close()
            b.close()
    assert results == {i: b"thread %d" % i for i in range(len(pairs))}


SOCK_CALLS_WITHOUT_FDS = """
import asyncio, json, os, socket
from tests.support import take_every_fd
from tests.loops import ALL_LOOPS
spec = {{s.id: s for s in ALL_LOOPS}}[{loop_id!r}]
loop = spec.new_loop()
listener = socket.create_server(("127.0.0.1", 0))
listener.setblocking(False)
a, b = socket.socketpair()
a.setblocking(False)
client = socket.create_connection(listener.getsockname())
outcome = {{}}

async def main():
    pending = asyncio.ensure_future(loop.sock_recv(a, 100))
    for _ in range(5):
        await asyncio.sleep(0)
    held = take_every_fd(256)
    try:
        await asyncio.wait_for(loop.sock_accept(listener), 5)
        outcome["accept"] = "ok"
    except OSError as exc:
        outcome["accept"] = [type(exc).__name__, exc.errno]
    b.send(b"still served")
    outcome["pending recv"] = (await asyncio.wait_for(pending, 5)).decode()
    for fd in held:
        os.close(fd)
    conn, _ = await asyncio.wait_for(loop.sock_accept(listener), 5)
    conn.close()
    outcome["accept after"] = "ok"

child_ready()
loop.run_until_complete(main())
loop.close()
print(json.dumps(outcome), flush=True)
"""


def test_socket_calls_when_the_process_runs_out_of_descriptors(loop_spec):
    """In a child with ``RLIMIT_NOFILE`` lowered and every descriptor taken: ``sock_accept``
    of a waiting connection fails with ``OSError(EMFILE)``, as on asyncio; a ``sock_recv``
    already waiting still completes (it needs no descriptor); once descriptors are free,
    ``sock_accept`` works again."""
    result = run_child(SOCK_CALLS_WITHOUT_FDS.format(loop_id=loop_spec.id), BOUND)
    assert not result.hung and result.returncode == 0, result.describe()
    assert "panicked" not in result.stderr, result.describe()
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {
        "accept": ["OSError", errno.EMFILE],
        "pending recv": "still served",
        "accept after": "ok",
    }


@pytest.mark.parametrize("method", ["sock_recv", "sock_recv_into"])
def test_a_zero_length_read_returns_at_once(loop, method):
    """``sock_recv(sock, 0)`` and ``sock_recv_into`` of an empty buffer return ``b""`` and 0
    at once, as the socket module's calls do, whether or not data waits (it stays in the
    socket). Before, PyLoop made the system call, which reports "would block" for a
    zero-length read of an empty socket, and waited for data that might never come."""
    a, b = _pair()
    with a, b:

        async def zero_read():
            if method == "sock_recv":
                return await loop.sock_recv(a, 0)
            return await loop.sock_recv_into(a, bytearray())

        async def main():
            nothing_waiting = await zero_read()
            b.send(b"data")
            await _settle()
            data_waiting = await zero_read()
            return nothing_waiting, data_waiting, await loop.sock_recv(a, 10)

        empty = b"" if method == "sock_recv" else 0
        assert run_bounded(loop, main()) == (empty, empty, b"data")


BLOCKING_SOCKET_WITH_A_THREAD_PEER = """
import asyncio, json, socket, threading
from tests.loops import ALL_LOOPS
spec = {{s.id: s for s in ALL_LOOPS}}[{loop_id!r}]
loop = spec.new_loop()
loop.set_debug(False)  # debug mode refuses a blocking socket (PYTHONASYNCIODEBUG=1 runs)
a, b = socket.socketpair()  # a stays blocking
b.settimeout(10)
size = {size}

def peer():
    if {method!r} == "sock_recv":
        b.sendall(b"hello")
        return
    got = 0
    while got < size:
        got += len(b.recv(1 << 20))

async def main():
    thread = threading.Timer(0.05, peer)
    thread.start()
    if {method!r} == "sock_recv":
        result = (await loop.sock_recv(a, 100)).decode()
    else:
        await loop.sock_sendall(a, b"x" * size)
        result = "sent"
    await loop.run_in_executor(None, thread.join)
    return result

child_ready()
print(json.dumps(loop.run_until_complete(main())))
loop.close()
"""


@pytest.mark.parametrize("method", ["sock_recv", "sock_sendall"])
def test_a_blocking_socket_whose_peer_is_a_thread_of_this_process(loop_spec, method):
    """Outside debug mode asyncio lets a call on a socket left blocking go ahead; its
    system call blocks with the GIL released, so a peer that is a Python thread of the same
    process runs and the call completes. PyLoop makes the call with the GIL held: it must not
    wait inside it (the peer could never run), so it asks the kernel not to (``MSG_DONTWAIT``)
    and waits for the descriptor instead. In a child process, so that a deadlock is reported
    as one (the child is killed) instead of hanging the suite."""
    code = BLOCKING_SOCKET_WITH_A_THREAD_PEER.format(
        loop_id=loop_spec.id, method=method, size=4 * 1024 * 1024
    )
    result = run_child(code, BOUND)
    assert not result.hung and result.returncode == 0, result.describe()
    assert json.loads(result.stdout.strip().splitlines()[-1]) == (
        "hello" if method == "sock_recv" else "sent"
    )


class _InterruptsOnce(asyncio.Protocol):
    """A protocol whose first ``data_received`` raises ``KeyboardInterrupt`` (Ctrl-C)."""

    def __init__(self) -> None:
        self.interrupted = False

    def data_received(self, data) -> None:
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt


def test_an_interrupt_in_one_descriptors_callback_loses_no_other_readiness(loop):
    """A transport's ``data_received`` raises ``KeyboardInterrupt`` in a turn where the same
    wait also found a socket with a pending ``sock_recv`` ready. The interrupt leaves
    ``run_until_complete``, as on asyncio; the next run completes the ``sock_recv``. (PyLoop
    waits for a socket method's descriptor with a one-shot registration, which is not
    reported again: a dispatch that stopped at the interrupt used to drop that readiness,
    and the call waited for ever.)"""
    a, b = _pair()
    state: dict = {}

    async def main():
        if "transport" not in state:
            with socket.create_server(("127.0.0.1", 0)) as listener:
                transport, _ = await loop.create_connection(
                    _InterruptsOnce, *listener.getsockname()
                )
                peer, _ = listener.accept()
            state.update(transport=transport, peer=peer)
            state["recv"] = asyncio.ensure_future(loop.sock_recv(a, 100))
            await _settle()
            # Both become ready before the loop waits again: one wait reports both, the
            # transport's first (the order the test cannot force; either order is a pass
            # for asyncio, and PyLoop must lose neither).
            peer.send(b"x")
            b.send(b"for sock_recv")
            await asyncio.sleep(0.05)
        return await asyncio.wait_for(state["recv"], BOUND)

    task = loop.create_task(main())
    outcomes = []
    try:
        for _ in range(2):
            try:
                outcomes.append(loop.run_until_complete(task))
                break
            except KeyboardInterrupt:
                outcomes.append("KeyboardInterrupt")
    finally:
        if "transport" in state:
            state["transport"].abort()
            state["peer"].close()
        a.close()
        b.close()
        loop.run_until_complete(asyncio.sleep(0))
    assert outcomes == ["KeyboardInterrupt", b"for sock_recv"]


def test_readiness_kept_by_an_interrupt_for_a_call_cancelled_meanwhile(loop):
    """An interrupted turn keeps the readiness it did not hand out; before the next turn the
    transport is aborted and the waiting ``sock_recv`` cancelled. The next turn hands the
    kept readiness out to nobody: the cancelled call reads nothing (the data stays in the
    socket), the aborted transport is not touched, and no descriptor stays open (the
    ``no_fd_leak`` fixture checks it)."""
    a, b = _pair()
    with a, b:
        with socket.create_server(("127.0.0.1", 0)) as listener:

            async def setup():
                transport, _ = await loop.create_connection(
                    _InterruptsOnce, *listener.getsockname()
                )
                peer, _ = listener.accept()
                return transport, peer

            transport, peer = loop.run_until_complete(setup())
        with peer:
            recv = loop.create_task(loop.sock_recv(a, 100))
            loop.run_until_complete(_settle())

            async def provoke():
                peer.send(b"x")
                b.send(b"y")
                await asyncio.sleep(0.05)

            provoking = loop.create_task(provoke())
            with pytest.raises(KeyboardInterrupt):
                loop.run_until_complete(provoking)
            transport.abort()
            recv.cancel()
            provoking.cancel()
            loop.run_until_complete(_settle())
            assert recv.cancelled() or recv.exception() is None
            if recv.cancelled():
                a.setblocking(True)
                a.settimeout(BOUND)
                assert a.recv(10) == b"y"


@pytest.mark.parametrize("method", ["sock_recv", "sock_recv_into"])
def test_a_socket_with_a_timeout(loop, loop_spec, method):
    """A socket with a timeout (``settimeout(0.2)``) on which nothing arrives. In debug mode
    both loops refuse it (``ValueError``). Outside it, asyncio makes the socket's own blocking
    call: the loop stops for 0.2 s and the call raises ``TimeoutError('timed out')``; PyLoop
    waits for the descriptor without blocking, so a ticking task keeps running and only the
    caller's own bound ends the wait (tests/deviations.py, "a socket with a timeout in
    sock_*"). Data sent afterwards is read by the next call on both."""
    a, b = socket.socketpair()
    a.settimeout(0.2)

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.ensure_future(ticker())
        await asyncio.sleep(0.02)
        call = (
            loop.sock_recv(a, 10)
            if method == "sock_recv"
            else loop.sock_recv_into(a, bytearray(10))
        )
        before = ticks
        try:
            outcome = await asyncio.wait_for(call, 0.6)
        except TimeoutError as exc:  # the socket's own (str 'timed out') or wait_for's
            outcome = ("timeout", str(exc))
        except ValueError:
            outcome = ("refused",)
        during = ticks - before
        ticking.cancel()
        b.sendall(b"later")
        a.settimeout(0)
        if method == "sock_recv":
            after = await loop.sock_recv(a, 10)
        else:
            buf = bytearray(10)
            after = bytes(buf[: await loop.sock_recv_into(a, buf)])
        return outcome, during, after

    with a, b:
        outcome, during, after = run_bounded(loop, main())
    assert after == b"later"
    if loop.get_debug():
        assert outcome == ("refused",)
    elif loop_spec.is_pyloop:
        assert outcome == ("timeout", "")
        assert during >= 10, "other tasks must run while the call waits"
    else:
        assert outcome == ("timeout", "timed out")
