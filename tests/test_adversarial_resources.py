"""Resources: cycles that must be collected, warnings asyncio emits, descriptors running out
(issue 9, defects 4 and 7).

- A protocol holding its transport (the usual pattern), 20 connections left open, then
  ``loop.close()``: after ``gc.collect()`` no transport alive and no descriptor open, with a
  ``ResourceWarning`` per unclosed transport where asyncio emits one.
- 50 loops dropped without ``close()`` with a pending ``call_later(loop.stop)`` and a future
  made by ``create_future()``: none alive, no descriptor open, ``ResourceWarning`` "unclosed
  event loop" as on asyncio.
- A closed loop that made futures (before and after ``close()``) is freed as soon as its last
  reference goes, with the collector off, as asyncio's is: PyLoop keeps the keywords of
  ``Future(loop=...)`` per loop, a cycle that ``close()`` must break.
- A collection inside ``create_future`` (where PyLoop makes that dictionary) whose gc callback
  closes the loop: the future is made, and the closed loop is still freed by reference counting.
- A closed loop held by its task factory (a closure over the loop): freed by ``gc.collect()``.
- ``new_event_loop()`` when no descriptor is left: ``OSError`` (never pyo3's
  ``PanicException``, a ``BaseException``), in a child with ``RLIMIT_NOFILE`` lowered.
- A server accepting until ``EMFILE``: the error reaches the exception handler as an
  ``OSError``, as asyncio does, and the server keeps serving once descriptors are free again.
- A server, and a client, with too few descriptors for the native transport's duplicate:
  every connection is served (by asyncio's transport), as on asyncio.

The warnings asyncio emits are not written down here: each test asks a fresh stock asyncio
loop for them first (the oracle) and expects the same of the loop under test.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import gc
import json
import os
import select
import socket
import sys
import time
import warnings
import weakref

import pytest

from tests.io_support import IO_LOOPS, open_fds
from tests.loops import ALL_LOOPS
from tests.support import BOUND, run_child

IO_SPECS = pytest.mark.parametrize("spec", IO_LOOPS, ids=[s.id for s in IO_LOOPS])
ALL_SPECS = pytest.mark.parametrize("spec", ALL_LOOPS, ids=[s.id for s in ALL_LOOPS])
ASYNCIO = ALL_LOOPS[0]


#: The ResourceWarnings compared with asyncio's. Not "unclosed <socket.socket ...>": which of
#: a garbage cycle's finalizers runs first is not fixed, and when a socket's runs before its
#: loop's, asyncio's loop finds its self-pipe closed, fails in __del__ ("Invalid file
#: descriptor: -1", an unraisable exception) and leaves its epoll descriptor open. Seen on
#: 3.11.7 for about one loop in 50 and one connection in 40: the reference is not perfect
#: there, so descriptors are compared as "no more than asyncio's".
COMPARED_WARNINGS = ("unclosed transport", "unclosed event loop")


def warning_kinds(caught) -> collections.Counter:
    """The ResourceWarnings of COMPARED_WARNINGS, counted."""
    out: collections.Counter = collections.Counter()
    for w in caught:
        if issubclass(w.category, ResourceWarning):
            for kind in COMPARED_WARNINGS:
                if str(w.message).startswith(kind):
                    out[kind] += 1
    return out


def collect_quietly() -> list[str]:
    """gc.collect() three times; returns the unraisable exceptions finalizers raised (asyncio's
    own loop finalizer can raise, see COMPARED_WARNINGS) instead of failing the test on them."""
    seen: list[str] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(repr(u.exc_value))
    try:
        for _ in range(3):
            gc.collect()
    finally:
        sys.unraisablehook = previous
    return seen


class Holder(asyncio.Protocol):
    """Keeps its transport, as most protocols do: a cycle protocol <-> transport."""

    def connection_made(self, transport) -> None:
        self.transport = transport


async def _open_connections(loop, n: int, refs: list) -> None:
    server = await loop.create_server(Holder, "127.0.0.1", 0)
    addr = server.sockets[0].getsockname()
    for _ in range(n):
        transport, _ = await loop.create_connection(Holder, *addr)
        refs.append(weakref.ref(transport))
    await asyncio.sleep(0.05)  # the server side accepts and makes its transports
    server.close()


def open_connections_then_close_loop(spec, n: int = 20):
    """Returns (transports still alive, fds opened and still open, warning kinds)."""
    if spec.error is not None:
        pytest.fail(spec.error, pytrace=False)
    gc.collect()
    before = open_fds()
    refs: list = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop = spec.new_loop()
        loop.run_until_complete(asyncio.wait_for(_open_connections(loop, n, refs), BOUND))
        loop.close()
        del loop
        collect_quietly()
    leaked_fds = open_fds() - before
    alive = sum(r() is not None for r in refs)
    return alive, leaked_fds, warning_kinds(caught)


_EXPECTED: dict = {}


@IO_SPECS
def test_connections_left_open_then_loop_close_are_collected(spec):
    """Defect 4: pyloop kept 40 transports and 40 descriptors (asyncio: none)."""
    if "connections" not in _EXPECTED:
        _EXPECTED["connections"] = open_connections_then_close_loop(ASYNCIO)
    a_alive, a_fds, a_warnings = _EXPECTED["connections"]
    assert a_alive == 0 and len(a_fds) <= 1
    assert a_warnings["unclosed transport"] == 40
    alive, fds, kinds = open_connections_then_close_loop(spec)
    assert alive == 0, f"{alive} client transports still alive after gc.collect()"
    assert len(fds) <= len(a_fds), f"{len(fds)} descriptors still open (asyncio: {len(a_fds)})"
    assert kinds == a_warnings, "ResourceWarnings differ from stock asyncio's"


def drop_unclosed_loops(spec, n: int = 50):
    if spec.error is not None:
        pytest.fail(spec.error, pytrace=False)
    gc.collect()
    before = open_fds()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        refs = []
        for _ in range(n):
            loop = spec.new_loop()
            loop.call_later(3600, loop.stop)  # a cycle: loop -> timer -> bound method -> loop
            loop.create_future()  # PyLoop: a cycle loop -> Future's keywords -> loop
            refs.append(weakref.ref(loop))
            del loop
        collect_quietly()
    return sum(r() is not None for r in refs), open_fds() - before, warning_kinds(caught)


@ALL_SPECS
def test_loops_dropped_without_close_are_collected(spec):
    """Defect 4: 50 pyloop loops dropped unclosed leaked 200 descriptors (asyncio: 0)."""
    if "loops" not in _EXPECTED:
        _EXPECTED["loops"] = drop_unclosed_loops(ASYNCIO)
    a_alive, a_fds, a_warnings = _EXPECTED["loops"]
    assert a_alive == 0 and len(a_fds) <= 2
    assert a_warnings["unclosed event loop"] == 50
    alive, fds, kinds = drop_unclosed_loops(spec)
    assert alive == 0, f"{alive} of 50 loops still alive after gc.collect()"
    assert len(fds) <= len(a_fds), f"{len(fds)} descriptors still open (asyncio: {len(a_fds)})"
    assert kinds == a_warnings, "ResourceWarnings differ from stock asyncio's"


@ALL_SPECS
def test_a_closed_loop_that_made_futures_is_freed_without_the_collector(spec, gc_disabled):
    loop = spec.new_loop()
    fut = loop.create_future()
    loop.call_soon(fut.set_result, 1)
    assert loop.run_until_complete(fut) == 1
    del fut
    loop.close()
    after = loop.create_future()  # asyncio allows it on a closed loop
    assert after.get_loop() is loop
    after.set_result(2)
    assert after.result() == 2
    ref = weakref.ref(loop)
    del loop, after
    assert ref() is None, "a closed loop outlived its last reference"


def future_made_while_the_collector_closes_the_loop(spec) -> tuple[bool, weakref.ref]:
    loop = spec.new_loop()
    closed = []

    def close_when_collecting(phase, info):
        if phase == "start" and not closed:
            closed.append(True)
            loop.close()

    old = gc.get_threshold()
    gc.callbacks.append(close_when_collecting)
    gc.set_threshold(1)  # a collection at the first allocation that counts
    try:
        fut = loop.create_future()
    finally:
        gc.set_threshold(*old)
        gc.callbacks.remove(close_when_collecting)
    assert fut.get_loop() is loop and loop.is_closed()
    fut.cancel()
    return bool(closed), weakref.ref(loop)


@ALL_SPECS
def test_future_made_while_a_collection_closes_the_loop(spec, gc_disabled):
    """A collection can run inside create_future (PyLoop makes its keyword dictionary there on
    the first call) and a finalizer or gc callback can close the loop: the future is made, and
    the closed loop keeps no cycle (it is freed with the collector off)."""
    gc.enable()  # the collection under test; off again before the loop is dropped
    try:
        collected, ref = future_made_while_the_collector_closes_the_loop(spec)
    finally:
        gc.disable()
    assert collected, "no collection ran inside create_future"
    assert ref() is None, "the loop closed during create_future outlived its last reference"


def closed_loop_held_by_its_task_factory(spec) -> weakref.ref:
    loop = spec.new_loop()

    def factory(lp, coro, **kwargs):
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)

    async def ret():
        return 1

    assert loop.run_until_complete(loop.create_task(ret())) == 1
    loop.close()
    return weakref.ref(loop)


@ALL_SPECS
def test_a_loop_held_by_its_task_factory_is_collected(spec):
    """A task factory that refers to its loop makes a cycle the collector must see (PyLoop keeps
    the factory in the native loop, which reports it to the collector)."""
    ref = closed_loop_held_by_its_task_factory(spec)
    gc.collect()
    assert ref() is None, "a closed loop held by its task factory survived gc.collect()"


NEW_LOOP_WITHOUT_FDS = """
import os
import select
from tests.loops import ALL_LOOPS
from tests.support import take_every_fd
spec = {{s.id: s for s in ALL_LOOPS}}[{loop_id!r}]
held = take_every_fd(64)
child_ready()
try:
    loop = spec.new_loop()
except BaseException as exc:
    print("RAISED", [c.__module__ + "." + c.__qualname__ for c in type(exc).__mro__], flush=True)
else:
    print("MADE", flush=True)
    for fd in held[:8]:
        os.close(fd)
    loop.close()
"""


@ALL_SPECS
def test_new_event_loop_without_descriptors_raises_oserror(spec):
    """Defect 7: pyloop raised PanicException (a BaseException) instead of OSError. A phase
    that needs no descriptor may also just work."""
    result = run_child(NEW_LOOP_WITHOUT_FDS.format(loop_id=spec.id), BOUND)
    assert not result.hung and result.returncode == 0, result.describe()
    line = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    if line.startswith("RAISED"):
        assert "builtins.OSError" in line, f"not an OSError: {line}\n{result.describe()}"
    else:
        assert line == "MADE", result.describe()
    assert "panicked" not in result.stderr, result.describe()


#: What asyncio's accept path says when it runs out of descriptors, and what its
#: _accept_connection2 says when making the transport fails.
ACCEPT_MESSAGES = (
    "socket.accept() out of system resource",
    "Error on transport creation for incoming connection",
)

EMFILE_SERVER = """
import json, resource, sys
from tests.loops import ALL_LOOPS
spec = {{s.id: s for s in ALL_LOOPS}}[{loop_id!r}]
loop = spec.new_loop()
calls = []
def record(loop, context):
    exc = context.get("exception")
    calls.append([context.get("message"), type(exc).__name__, getattr(exc, "errno", None)])
loop.set_exception_handler(record)

class Echo(asyncio.Protocol):
    def connection_made(self, t):
        self.t = t
    def data_received(self, d):
        self.t.write(d)

async def main():
    server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=200)
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    import os
    n_open = len(os.listdir("/proc/self/fd"))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (n_open + 8, hard))
    child_ready()
    await loop.run_in_executor(None, sys.stdin.readline)  # the parent says when to stop
    server.close()

loop.run_until_complete(main())
loop.close()
print("CALLS", json.dumps(calls), flush=True)
"""


def _server_child(code: str):
    """A child running ``CHILD_PRELUDE + code``, talked to through pipes: the server's code
    prints its port, then READY, and stops at a line on its standard input."""
    import subprocess

    from tests.support import CHILD_PRELUDE, REPO_ROOT

    return subprocess.Popen(
        [sys.executable, "-c", CHILD_PRELUDE + code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )


def _echo_once(port: int, timeout: float) -> socket.socket | None:
    """A connection that got its echo within ``timeout``, or None."""
    s = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
    s.settimeout(timeout)
    try:
        s.sendall(b"ping")
        if s.recv(4) == b"ping":
            return s
    except (TimeoutError, ConnectionError):
        pass
    s.close()
    return None


@IO_SPECS
def test_server_accepting_until_emfile_reports_and_keeps_serving(spec):
    """The child runs an echo server with RLIMIT_NOFILE a few descriptors above what it
    uses. Connections are opened until one gets no echo (accept failed with EMFILE); then
    the first ones are closed and a new connection must be served (asyncio retries accept
    after a second). The EMFILE reaches the exception handler as an OSError."""
    proc = _server_child("import asyncio\n" + EMFILE_SERVER.format(loop_id=spec.id))
    clients: list[socket.socket] = []
    try:
        port = int(proc.stdout.readline().split()[1])
        assert proc.stdout.readline().strip().endswith("READY")
        refused = None
        for _ in range(40):
            s = _echo_once(port, 0.5)
            if s is None:
                refused = True
                break
            clients.append(s)
        assert refused, "the server never ran out of descriptors"
        served = len(clients)
        for s in clients[:4]:
            s.close()
        del clients[:4]
        deadline = time.monotonic() + BOUND
        again = None
        while again is None and time.monotonic() < deadline:
            again = _echo_once(port, 1.5)
        assert again is not None, "the server did not serve again once descriptors were free"
        again.close()
        for s in clients:
            s.close()
        clients.clear()
        out, err = proc.communicate("stop\n", timeout=BOUND)
    finally:
        for s in clients:
            s.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    calls = json.loads(out.split("CALLS", 1)[1])
    assert served >= 1
    assert calls, "the EMFILE never reached the exception handler"
    # EMFILE (or ENFILE, the system's limit) from accept, as asyncio reports it; on a loop
    # whose transport needs a descriptor of its own, from making the transport.
    # In debug mode asyncio also reports a transport it failed to create
    # (selector_events._accept_connection2) with whatever OSError that step raised, not
    # always one with an errno.
    debug = sys.flags.dev_mode or bool(os.environ.get("PYTHONASYNCIODEBUG"))

    def expected(c: list) -> bool:
        if c[1] == "OSError" and c[2] in (errno.EMFILE, errno.ENFILE) and c[0] in ACCEPT_MESSAGES:
            return True
        return debug and c[1] == "OSError" and c[0] == ACCEPT_MESSAGES[1]

    # asyncio's own bug, seen on 3.12 (a matter of timing, any version): at EMFILE it
    # schedules _start_serving again after a delay, and if the server is closed before
    # that timer fires, _start_serving fails on the closed socket (ValueError, fd -1).
    # Tolerated on stock asyncio only: PyLoop must not have it.
    def asyncio_retry_after_close(c: list) -> bool:
        return (
            not spec.is_pyloop
            and c[1] == "ValueError"
            and c[0].startswith("Exception in callback BaseSelectorEventLoop._start_serving")
        )

    odd = [c for c in calls if not expected(c) and not asyncio_retry_after_close(c)]
    assert not odd, f"{len(odd)} of {len(calls)} reports are not EMFILE from accept: {odd[:5]}"
    assert "panicked" not in err and "Traceback" not in err, err


SERVER_AT_ITS_LIMIT = """
import asyncio, os, resource
from tests.loops import ALL_LOOPS
loop = {{s.id: s for s in ALL_LOOPS}}[{loop_id!r}].new_loop()
loop.set_exception_handler(lambda loop, context: None)  # accept's EMFILE, as asyncio reports

class EchoForASecond(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        loop.call_later(1.0, transport.close)  # frees its descriptor for the next one
    def data_received(self, data):
        self.transport.write(data)

async def main():
    server = await loop.create_server(EchoForASecond, "127.0.0.1", 0, backlog=50)
    n_open = len(os.listdir("/proc/self/fd")) - 1  # less the one listdir used
    resource.setrlimit(resource.RLIMIT_NOFILE, (n_open + 2, n_open + 2))
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    child_ready()
    await loop.run_in_executor(None, input)  # the parent says when to stop
    server.close()

loop.run_until_complete(main())
"""


@IO_SPECS
def test_a_server_at_its_descriptor_limit_serves_every_queued_connection(spec):
    """A server with two descriptors to spare (the connection's, and one for a duplicate)
    and eight clients that each send and wait for their echo; the server closes each
    connection after a second. asyncio serves them all: accept fails with EMFILE while
    none is free, and asyncio retries a second later. The native transport needs a second
    descriptor for its duplicate; when there is none it must not drop the accepted
    connection (it did: the clients got a reset) but serve it with asyncio's transport."""
    proc = _server_child(SERVER_AT_ITS_LIMIT.format(loop_id=spec.id))
    clients: list[socket.socket] = []
    try:
        port = int(proc.stdout.readline().split()[1])
        assert proc.stdout.readline().strip().endswith("READY")
        for _ in range(8):
            client = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
            client.sendall(b"ping")
            clients.append(client)
        answers = []
        for client in clients:
            try:
                answers.append(client.recv(4))
            except OSError as exc:
                answers.append(type(exc).__name__)
        out, err = proc.communicate("stop\n", timeout=BOUND)
    finally:
        for client in clients:
            client.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert answers == [b"ping"] * 8, answers
    assert proc.returncode == 0, err


CLIENT_WITH_ONE_DESCRIPTOR_LEFT = """
import asyncio, os, resource, socket
from tests.loops import ALL_LOOPS
loop = {{s.id: s for s in ALL_LOOPS}}[{loop_id!r}].new_loop()
listener = socket.create_server(("127.0.0.1", 0))

async def main():
    n_open = len(os.listdir("/proc/self/fd")) - 1  # less the one listdir used
    resource.setrlimit(resource.RLIMIT_NOFILE, (n_open + 1, n_open + 1))
    transport, _ = await loop.create_connection(
        asyncio.Protocol, *listener.getsockname()[:2]
    )
    transport.write(b"hello")
    transport.close()
    await asyncio.sleep(0)
    return transport.is_closing()

print("RESULT", loop.run_until_complete(main()))
loop.close()
"""


@IO_SPECS
def test_create_connection_with_one_descriptor_left(spec):
    """asyncio's client connection takes one descriptor; PyLoop's native transport a second,
    for its duplicate. With only one left, ``create_connection`` must still connect (it
    raised EMFILE): the connection then gets asyncio's transport."""
    result = run_child(CLIENT_WITH_ONE_DESCRIPTOR_LEFT.format(loop_id=spec.id), BOUND)
    assert result.returncode == 0, result.describe()
    assert "RESULT True" in result.stdout, result.describe()


ACCEPT_RETRY_AFTER_CLOSE = """
import asyncio, json, resource, socket
from tests.loops import ALL_LOOPS
spec = {{s.id: s for s in ALL_LOOPS}}[{loop_id!r}]
loop = spec.new_loop()
calls = []
def record(loop, context):
    exc = context.get("exception")
    calls.append([context.get("message"), type(exc).__name__])
loop.set_exception_handler(record)

async def main():
    child_ready()
    server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, backlog=4)
    port = server.sockets[0].getsockname()[1]
    client = socket.socket()
    client.setblocking(False)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    import os
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) - 1, hard))
    try:
        try:
            client.connect(("127.0.0.1", port))  # no new descriptor: the server's accept fails
        except BlockingIOError:
            pass
        await asyncio.sleep(0.3)  # accept runs, fails with EMFILE, a retry is due in 1 s
        server.close()
        await asyncio.sleep(1.5)  # the retry's time passes with the server closed
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        client.close()

loop.run_until_complete(main())
loop.close()
print("CALLS", json.dumps(calls), flush=True)
"""


@IO_SPECS
def test_accept_retry_after_the_server_closed(spec):
    """asyncio retries accept a second after EMFILE; a server closed in that second makes
    asyncio report ValueError from the retry (on 3.11-3.13), which PyLoop does not copy
    (tests/deviations.py: "accept retry after the server closed")."""
    result = run_child(ACCEPT_RETRY_AFTER_CLOSE.format(loop_id=spec.id), BOUND)
    assert not result.hung and result.returncode == 0, result.describe()
    calls = json.loads(result.stdout.split("CALLS", 1)[1])
    assert ["socket.accept() out of system resource", "OSError"] in calls, calls
    retry_reports = [c for c in calls if c[1] == "ValueError"]
    if spec.is_pyloop:
        assert not retry_reports, calls
    else:
        assert retry_reports and all("_start_serving" in c[0] for c in retry_reports), calls


#: Lowers the address-space limit to what the process has mapped plus ``margin`` bytes, so
#: that the next large allocation fails; ``restore()`` puts the limit back.
ADDRESS_SPACE_LIMIT = """
import asyncio
import resource
def mapped() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
SOFT, HARD = resource.getrlimit(resource.RLIMIT_AS)
def limit(margin: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (mapped() + margin, HARD))
def restore() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (SOFT, HARD))
"""

READ_WITHOUT_MEMORY = (
    ADDRESS_SPACE_LIMIT
    + """
import socket
from tests.loops import ALL_LOOPS
spec = {{s.id: s for s in ALL_LOOPS}}[{loop_id!r}]
loop = spec.new_loop()
events = []
loop.set_exception_handler(
    lambda lp, c: events.append([c.get("message"), type(c.get("exception")).__name__]))

class Counting(asyncio.Protocol):
    def connection_made(self, transport):
        Counting.transport = transport
        self.count = 0
    def data_received(self, data):
        self.count += len(data)
    def connection_lost(self, exc):
        events.append(["lost", type(exc).__name__ if exc else None])

async def main():
    server = await loop.create_server(Counting, "127.0.0.1", 0)
    peer = socket.create_connection(server.sockets[0].getsockname())
    await asyncio.sleep(0.05)
    Counting.transport.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    for _ in range(3):  # the loop's read path warmed up: buffers made, spare kept
        peer.sendall(bytes(20000))
        await asyncio.sleep(0.05)
    Counting.transport.pause_reading()
    peer.sendall(bytes(250000))
    await asyncio.sleep(0.05)
    limit(64 * 1024)  # no room for a 250 KB bytes object
    Counting.transport.resume_reading()
    try:
        await asyncio.sleep(0.05)
    finally:
        restore()
    peer.close()
    server.close()
    await asyncio.sleep(0.05)

child_ready()
loop.run_until_complete(main())
loop.run_until_complete(asyncio.sleep(0.01))  # the loop still runs
loop.close()
print("EVENTS", events, flush=True)
"""
)


@IO_SPECS
def test_a_read_without_memory_is_a_fatal_read_error(spec):
    """A read whose ``bytes`` object cannot be allocated (the address space limited): asyncio
    reports "Fatal read error on socket transport" with the ``MemoryError`` and closes the
    connection (``connection_lost(MemoryError)``), and the loop runs on and closes. (Review of
    stop 22: PyLoop's read panicked, a ``PanicException`` stopped the loop, and the loop was
    left "already running" for good, so it could not be closed.)"""
    result = run_child(READ_WITHOUT_MEMORY.format(loop_id=spec.id), BOUND)
    assert not result.hung and result.returncode == 0, result.describe()
    assert "panicked" not in result.stderr, result.describe()
    events = result.stdout.strip().splitlines()[-1]
    fatal = (
        "EVENTS [['Fatal read error on socket transport', 'MemoryError'], ['lost', 'MemoryError']]"
    )
    if spec.is_pyloop:
        assert events == fatal, result.describe()
    else:
        # asyncio's recv shrinks each 256 KB object it makes, which raises glibc's mmap
        # threshold, so it may find this read's memory in its heap; either outcome is its own.
        assert events in (fatal, "EVENTS [['lost', None]]"), result.describe()


WRITE_WITHOUT_MEMORY = (
    ADDRESS_SPACE_LIMIT
    + """
import socket
from tests.loops import ALL_LOOPS
spec = {{s.id: s for s in ALL_LOOPS}}[{loop_id!r}]
loop = spec.new_loop()

class Writer(asyncio.Protocol):
    def connection_made(self, transport):
        Writer.transport = transport

async def main():
    server = await loop.create_server(Writer, "127.0.0.1", 0)
    peer = socket.create_connection(server.sockets[0].getsockname())  # never reads
    await asyncio.sleep(0.05)
    data = bytes(64 << 20)  # made before the limit
    limit(8 << 20)  # the kernel takes a few MB; no room to buffer the rest
    try:
        Writer.transport.write(data)
        outcome = "written"
    except MemoryError:
        outcome = "MemoryError"
    finally:
        restore()
    closing = Writer.transport.is_closing()
    Writer.transport.abort()
    peer.close()
    server.close()
    return outcome, closing

child_ready()
print("OUTCOME", *loop.run_until_complete(main()), flush=True)
loop.close()
"""
)


@IO_SPECS
def test_a_write_without_memory_to_buffer_it_raises_memoryerror(spec):
    """``write()`` of 64 MB to a peer that does not read, with no memory to buffer what the
    kernel did not take: asyncio 3.11 raises ``MemoryError`` from ``write()`` and the
    connection stays open; 3.12's buffers a view of the caller's object and needs no memory
    (PyLoop copies, "write keeps a copy" in tests/deviations.py, so it raises on every
    version). (Review of stop 22: PyLoop's buffer growth aborted the process.)"""
    result = run_child(WRITE_WITHOUT_MEMORY.format(loop_id=spec.id), BOUND)
    assert not result.hung and result.returncode == 0, result.describe()
    outcome = result.stdout.strip().splitlines()[-1]
    if spec.is_pyloop or sys.version_info < (3, 12):
        assert outcome == "OUTCOME MemoryError False", result.describe()
    else:
        assert outcome == "OUTCOME written False", result.describe()


def _epoll_registration(epoll_fd: int, fd: int) -> int | None:
    """The event mask ``fd`` is registered with in the epoll set ``epoll_fd``
    (``/proc/self/fdinfo``), or None if it is not in the set."""
    with open(f"/proc/self/fdinfo/{epoll_fd}") as f:
        for line in f:
            if line.startswith("tfd:"):
                fields = line.split()
                if int(fields[1]) == fd:
                    return int(fields[fields.index("events:") + 1], 16)
    return None


@IO_SPECS
def test_the_loops_own_descriptors_cannot_be_watched(spec):
    """add_reader and add_writer on the numbers of the loop's own descriptors (a stale number
    can be one): PyLoop refuses its epoll set and eventfd with RuntimeError, and its eventfd
    stays edge-triggered, so the loop still sleeps and still wakes from another thread.
    asyncio refuses its epoll descriptor with OSError (epoll's EINVAL) and lets its self-pipe
    be taken (tests/deviations.py: "the loop's own descriptors"). On every loop, a callback
    sent from another thread afterwards still runs, the refusal is the same from another
    thread, and after close() every one of the numbers gets the closed loop's RuntimeError."""
    import threading

    before = open_fds()
    loop = spec.new_loop()
    try:
        own = sorted(open_fds() - before)
        assert own, "the loop opened no descriptor of its own"
        kinds = {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in own}
        refused = []
        for fd in own:
            for add in (loop.add_reader, loop.add_writer):
                try:
                    add(fd, lambda: None)  # where taken (asyncio's self-pipe), left so
                except (RuntimeError, OSError) as exc:
                    refused.append((fd, type(exc)))
        # Its self-pipe (a socket pair, on both kinds of loop) is not asserted on: asyncio
        # lets a reader replace its own there, and so does PyLoop, which keeps asyncio's.
        epolls = [fd for fd, kind in kinds.items() if kind == "anon_inode:[eventpoll]"]
        eventfds = [fd for fd, kind in kinds.items() if kind == "anon_inode:[eventfd]"]
        assert len(epolls) == 1
        mine = sorted(epolls + eventfds)
        refusal = OSError if spec.kind == "asyncio" else RuntimeError
        assert [r for r in refused if r[0] in mine] == [
            (fd, refusal) for fd in mine for _ in range(2)
        ]
        if spec.kind != "asyncio":
            (event_fd,) = eventfds
            mask = _epoll_registration(epolls[0], event_fd)
            assert mask is not None and mask & select.EPOLLET, f"eventfd mask {mask}"

        async def from_another_thread() -> str:
            done = loop.create_future()
            thread = threading.Thread(
                target=loop.call_soon_threadsafe, args=(done.set_result, "ran")
            )
            thread.start()
            try:
                return await asyncio.wait_for(done, BOUND)
            finally:
                thread.join()

        assert loop.run_until_complete(from_another_thread()) == "ran"

        # The same refusal from another thread (asyncio does not check the thread of
        # add_reader outside debug mode, and neither does PyLoop).
        from_thread: list[type] = []

        def add_from_thread() -> None:
            for fd in mine:
                try:
                    loop.add_reader(fd, lambda: None)
                except (RuntimeError, OSError) as exc:
                    from_thread.append(type(exc))

        thread = threading.Thread(target=add_from_thread)
        thread.start()
        thread.join(BOUND)
        assert from_thread == [refusal] * len(mine)
    finally:
        loop.close()
    # After close, on every loop, the numbers (free now, or another file's) meet the closed
    # loop's RuntimeError, never the poller.
    for fd in own:
        with pytest.raises(RuntimeError, match="closed"):
            loop.add_reader(fd, lambda: None)
