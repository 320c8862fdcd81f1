"""Which loops do I/O, and what the others say; the loop's own descriptors.

- On every loop that does I/O (stock asyncio, pyloop 3.2.1): ``close()`` releases every file
  descriptor the loop opened for itself (its epoll set, its wake-up fd, asyncio's self-pipe),
  as stock asyncio's ``close()`` closes its selector; a second loop made and closed in a row
  leaves nothing behind either.
- On the pyloop phases that cannot do I/O: each I/O method raises ``NotImplementedError``
  whose message names the phase that can (3.2.1), so that a user knows what to do.
  (tests/test_not_implemented.py checks that every I/O method raises; this checks the words.)
"""

from __future__ import annotations

import asyncio
import gc
import signal
import socket

import pytest

from tests.io_support import IO_LOOPS, IO_PHASE, NO_IO_LOOPS, describe_fds, open_fds
from tests.support import run_bounded


@pytest.mark.parametrize("spec", IO_LOOPS, ids=[s.id for s in IO_LOOPS])
def test_close_releases_the_loops_own_descriptors(spec):
    gc.collect()
    before = open_fds()
    loop = spec.new_loop()
    try:
        a, b = socket.socketpair()
        with a, b:
            loop.add_reader(a, lambda: None)  # the I/O machinery is in use
            run_bounded(loop, asyncio.sleep(0))
            loop.remove_reader(a)
    finally:
        loop.close()
    # The loop object is still referenced here: what it holds open now, close() did not
    # release (stock asyncio closes its selector and self-pipe in close()).
    leaked = open_fds() - before
    assert not leaked, "open after close():\n" + "\n".join(describe_fds(leaked))
    del loop


def _io_calls(sock):
    return {
        "add_reader": lambda loop: loop.add_reader(sock.fileno(), print),
        "add_writer": lambda loop: loop.add_writer(sock.fileno(), print),
        "sock_recv": lambda loop: loop.sock_recv(sock, 1),
        "sock_sendall": lambda loop: loop.sock_sendall(sock, b"x"),
        "create_connection": lambda loop: loop.create_connection(asyncio.Protocol, "127.0.0.1", 9),
        "create_server": lambda loop: loop.create_server(asyncio.Protocol, "127.0.0.1", 0),
        "create_datagram_endpoint": lambda loop: loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        ),
        "subprocess_exec": lambda loop: loop.subprocess_exec(asyncio.SubprocessProtocol, "true"),
        "add_signal_handler": lambda loop: loop.add_signal_handler(signal.SIGUSR1, print),
    }


@pytest.mark.skipif(not NO_IO_LOOPS, reason="every pyloop phase does I/O")
@pytest.mark.parametrize("spec", NO_IO_LOOPS, ids=[s.id for s in NO_IO_LOOPS])
@pytest.mark.parametrize("method", sorted(_io_calls(None)))
def test_phase_without_io_names_the_phase_that_has_it(spec, method):
    loop = spec.new_loop()
    a, b = socket.socketpair()
    try:
        with pytest.raises(NotImplementedError) as info:
            result = _io_calls(a)[method](loop)
            if asyncio.iscoroutine(result):
                loop.run_until_complete(asyncio.wait_for(result, 2))
        message = str(info.value)
        assert IO_PHASE in message, message
        assert spec.phase in message, message
    finally:
        a.close()
        b.close()
        loop.close()
