"""UNTIL THE I/O ISSUE LANDS (issue 4): a pyloop phase without sockets, subprocesses, pipes,
signals, readers and writers must say so with NotImplementedError for every one of them,
rather than misbehave or implement half of them.

Runs on the phases whose add_reader raises NotImplementedError (``LoopSpec.has_io`` false);
skipped on stock asyncio and on the phases that do I/O (CPython's I/O tests in tests/cpython
run on those instead). Delete this file when every phase does I/O."""

from __future__ import annotations

import asyncio
import inspect
import signal
import socket
import sys

import pytest


def _calls(sock):
    addr = ("127.0.0.1", 1)  # never reached: the call must fail before any I/O
    return {
        "sock_recv": (sock, 1),
        "sock_recv_into": (sock, bytearray(1)),
        "sock_sendall": (sock, b"x"),
        "sock_connect": (sock, addr),
        "sock_accept": (sock,),
        "create_connection": (lambda: None, *addr),
        "create_server": (lambda: None, "127.0.0.1", 0),
        "create_datagram_endpoint": (lambda: None,),
        "create_unix_connection": (lambda: None, "/nonexistent/pyloop-test.sock"),
        "add_reader": (sock.fileno(), print),
        "add_writer": (sock.fileno(), print),
        "remove_reader": (sock.fileno(),),
        "remove_writer": (sock.fileno(),),
        "subprocess_exec": (lambda: None, sys.executable, "-c", "pass"),
        "subprocess_shell": (lambda: None, "true"),
        "connect_read_pipe": (lambda: None, sys.stdin),
        "add_signal_handler": (signal.SIGUSR1, print),
        "remove_signal_handler": (signal.SIGUSR1,),
    }


METHODS = [
    "sock_recv",
    "sock_recv_into",
    "sock_sendall",
    "sock_connect",
    "sock_accept",
    "create_connection",
    "create_server",
    "create_datagram_endpoint",
    "create_unix_connection",
    "add_reader",
    "add_writer",
    "remove_reader",
    "remove_writer",
    "subprocess_exec",
    "subprocess_shell",
    "connect_read_pipe",
    "add_signal_handler",
    "remove_signal_handler",
]


@pytest.mark.parametrize("method", METHODS)
def test_io_methods_raise_not_implemented_until_the_io_issue(loop, loop_spec, method):
    if loop_spec.has_io:
        pytest.skip("this loop does I/O: tests/cpython runs CPython's I/O tests on it")
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        args = _calls(a)[method]
        with pytest.raises(NotImplementedError):
            result = getattr(loop, method)(*args)
            if inspect.isawaitable(result):
                loop.run_until_complete(asyncio.wait_for(result, 2))
    finally:
        a.close()
        b.close()


def test_io_error_names_the_io_phase_and_the_real_default(loop, loop_spec, monkeypatch):
    """The hint says which phase can do I/O, and which phase is the default here (PYLOOP_PHASE
    if set, else the build's), rather than assume the build default is the I/O phase."""
    if loop_spec.has_io:
        pytest.skip("this loop does I/O")
    import pyloop

    monkeypatch.setenv("PYLOOP_PHASE", loop_spec.phase)
    with pytest.raises(NotImplementedError) as info:
        loop.add_reader(0, print)
    message = str(info.value)
    assert 'new_event_loop(phase="3.2.1")' in message
    assert f"the default phase here is {loop_spec.phase}" in message
    monkeypatch.delenv("PYLOOP_PHASE")
    with pytest.raises(NotImplementedError) as info:
        loop.add_reader(0, print)
    assert f"the default phase here is {pyloop._native.BUILD_DEFAULT_PHASE}" in str(info.value)
