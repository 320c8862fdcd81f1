"""CPython 3.11's I/O tests that take a loop, run on stock asyncio and on every pyloop phase
that can do I/O (3.2.1).

The tests are CPython's (``test.test_asyncio``), imported from the interpreter and run
unmodified through subclassing, as CPython's own ``Select*Tests``/``EPoll*Tests`` subclasses
do; only how a loop is obtained changes (tests/cpython/harness.py lists what changes):

- ``create_event_loop()`` returns the loop under test: test_sock_lowlevel's
  ``BaseSockTestsMixin``, test_sendfile's ``SendfileMixin`` and ``SockSendfileMixin`` (as
  ``SendfileTestsBase``), and test_events' ``UnixEventLoopTestsMixin`` with
  ``SubprocessTestsMixin``: CPython's ``EPollEventLoopTests`` (EventLoopTestsMixin again, this
  time with the SafeChildWatcher, whose SIGCHLD handler goes through ``add_signal_handler``);
- ``new_loop()`` returns it: test_sslproto's ``BaseStartTLS``, test_server's
  ``BaseStartServer``, test_buffered_proto's ``BaseTestBufferedProtocol``;
- ``asyncio.new_event_loop()`` returns it (a policy for the test's duration): test_ssl's
  ``TestSSL``, test_sslproto's ``SslProtoHandshakeTests``, test_streams' ``StreamTests``,
  test_subprocess' watcher classes (threaded, safe, fast, pidfd) and ``GenericWatcherTests``,
  test_unix_events' ``SelectorEventLoopUnixSockSendfileTests`` and ``TestFunctional``,
  test_events' ``TestPyGetEventLoop``/``TestCGetEventLoop``.

Not included, and why: test_unix_events' ``SelectorEventLoopSignalTests`` and
``SelectorEventLoopUnixSocketTests`` build ``asyncio.SelectorEventLoop()`` themselves in
``setUp`` (no hook to give them another loop); the pipe-transport, child-watcher and
``SubprocessTransportTests`` classes run on mocks or ``test_utils.TestLoop``, not on a loop.
Each class runs on the loops of ``tests.io_support.IO_LOOPS`` only: the phases that cannot do
I/O raise NotImplementedError from every I/O method (tests/test_io_not_implemented.py).
Skips: tests/cpython/skips.py, the one list.
"""

import unittest

from test.test_asyncio import (
    test_buffered_proto,
    test_events,
    test_sendfile,
    test_server,
    test_sock_lowlevel,
    test_ssl,
    test_sslproto,
    test_streams,
    test_subprocess,
    test_unix_events,
)

from tests.cpython.harness import CreateEventLoop, OnLoop, PolicyDuringTest, build, test_utils
from tests.io_support import can_do_io


class NewLoop(OnLoop):
    """For FunctionalTestCaseMixin-style classes: the loop comes from new_loop()."""

    def new_loop(self):
        return self.loop_spec.new_loop()


class SockTests(test_sock_lowlevel.BaseSockTestsMixin, test_utils.TestCase):
    __test__ = False


class SendfileTests(test_sendfile.SendfileTestsBase, test_utils.TestCase):
    __test__ = False


class UnixEventLoopTests(
    test_events.UnixEventLoopTestsMixin, test_events.SubprocessTestsMixin, test_utils.TestCase
):
    __test__ = False


class StartTLSTests(test_sslproto.BaseStartTLS, unittest.TestCase):
    __test__ = False


class StartServerTests(test_server.BaseStartServer, unittest.TestCase):
    __test__ = False


class BufferedProtocolTests(test_buffered_proto.BaseTestBufferedProtocol, unittest.TestCase):
    __test__ = False


CREATE_EVENT_LOOP = [SockTests, SendfileTests, UnixEventLoopTests]
NEW_LOOP = [StartTLSTests, StartServerTests, BufferedProtocolTests]
POLICY = [
    test_ssl.TestSSL,
    test_sslproto.SslProtoHandshakeTests,
    test_streams.StreamTests,
    test_subprocess.SubprocessThreadedWatcherTests,
    test_subprocess.SubprocessSafeWatcherTests,
    test_subprocess.SubprocessFastWatcherTests,
    test_subprocess.GenericWatcherTests,
    test_unix_events.SelectorEventLoopUnixSockSendfileTests,
    test_unix_events.TestFunctional,
    test_events.TestPyGetEventLoop,
]
if hasattr(test_subprocess, "SubprocessPidfdWatcherTests"):
    POLICY.append(test_subprocess.SubprocessPidfdWatcherTests)
if hasattr(test_events, "TestCGetEventLoop"):  # only with the C _asyncio module
    POLICY.append(test_events.TestCGetEventLoop)

CLASSES = CREATE_EVENT_LOOP + NEW_LOOP + POLICY


def _build_io_loops_only() -> None:
    every_loop = {"__name__": __name__}
    build(every_loop, CreateEventLoop, CREATE_EVENT_LOOP)
    build(every_loop, NewLoop, NEW_LOOP)
    build(every_loop, PolicyDuringTest, POLICY)
    for name, cls in every_loop.items():
        if isinstance(cls, type) and can_do_io(cls.loop_spec):
            globals()[name] = cls


_build_io_loops_only()
