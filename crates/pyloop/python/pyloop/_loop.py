"""The part of PyLoop's event loop written in Python.

The native base class (one per phase, in ``pyloop._native``) provides the hot
paths: ``call_soon``, ``call_soon_threadsafe``, ``call_later``, ``call_at``,
``time``, ``stop`` and the turn of the loop. This mixin adds the rest of
``asyncio.AbstractEventLoop`` with asyncio's semantics: running until a future
completes, tasks and futures, the exception handler, the executor and
asynchronous generators. ``IoLoopMixin`` adds asyncio's sockets, servers, pipes,
subprocesses and signals on the phase that can wait for I/O; on the others
``NoIoMixin`` makes each of them raise ``NotImplementedError`` saying why.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import functools
import logging
import os
import selectors
import socket
import sys
import threading
import traceback
import warnings
import weakref
from asyncio import (
    base_events,
    constants,
    coroutines,
    events,
    futures,
    tasks,
    trsock,
    unix_events,
)
from typing import Any

from . import _transport

logger = logging.getLogger("asyncio")

#: PYLOOP_NATIVE_TRANSPORT=0 falls back to asyncio's own socket transport
#: (the same epoll wait, Python read and write paths), for comparison.
_native_transport = os.environ.get("PYLOOP_NATIVE_TRANSPORT", "1") != "0"

_IO_MISSING = (
    "{name}() needs I/O, which phase {phase} cannot wait for: its idle loop sleeps "
    "without a file descriptor to wake it. Use phase {io_phase}: "
    'pyloop.new_event_loop(phase="{io_phase}") (the default phase here is {default}).'
)


def _report_in_except(
    loop: asyncio.AbstractEventLoop, context: dict[str, Any], exception: BaseException
) -> None:
    """Calls ``loop.call_exception_handler(context)`` from an ``except`` block that caught
    ``exception``, as asyncio's ``Handle._run`` calls it: in the handler ``sys.exc_info()``
    is that exception, and what the handler raises is chained to it. The interpreter's own
    ``except`` sets the exception being handled and puts the previous state back; what the
    raise changes on the exception (this frame on its traceback, its ``__context__`` if an
    outer exception is being handled) is put back as it was."""
    kept_traceback, kept_context = exception.__traceback__, exception.__context__
    try:
        raise exception
    except BaseException:
        exception.__traceback__, exception.__context__ = kept_traceback, kept_context
        loop.call_exception_handler(context)


def _interpreter_turn() -> None:
    """Called by the native loop every 256 turns and every 1,024 callbacks of one long turn
    (``interpreter_turn`` in event_loop.rs). A Python function's first instruction is where
    the interpreter runs signal handlers and hands the GIL to a thread that asked for it;
    callbacks that are C functions run no bytecode, and a busy loop of them kept both out."""


def _stop_loop_when_done(future: asyncio.Future[Any]) -> None:
    """Done-callback of ``run_until_complete``: stop the future's loop, unless
    the future ended with ``SystemExit`` or ``KeyboardInterrupt``, which are
    already unwinding ``run_forever``."""
    if not future.cancelled() and isinstance(future.exception(), (SystemExit, KeyboardInterrupt)):
        return
    futures._get_loop(future).stop()


def _io_not_implemented(name: str):
    def method(self, *args, **kwargs):
        from . import _default_phase  # PYLOOP_PHASE, else the build's default

        raise NotImplementedError(
            _IO_MISSING.format(
                name=name, phase=self.phase, io_phase="3.2.1", default=_default_phase()
            )
        )

    method.__name__ = name
    method.__doc__ = f"Not available on this phase: {name} needs a loop that can wait for I/O."
    return method


class LoopMixin:
    """asyncio's event-loop API around a native loop of one phase."""

    slow_callback_duration = 0.1

    def __init__(self) -> None:
        self._exception_handler = None
        self._task_factory = None
        self._default_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._executor_shutdown_called = False
        self._asyncgens: weakref.WeakSet = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._origin_tracking_depth: int | None = None
        self.set_debug(coroutines._is_debug_mode())

    @property
    def _debug(self) -> bool:
        """asyncio's code reads ``loop._debug``; ours lives in the native loop."""
        return self.get_debug()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} phase={self.phase} running={self.is_running()} "
            f"closed={self.is_closed()} debug={self.get_debug()}>"
        )

    def __del__(self, _warn=warnings.warn) -> None:
        try:
            closed = self.is_closed()
        except Exception:
            return
        if not closed:
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()

    # -- running ---------------------------------------------------------

    def _check_closed(self) -> None:
        if self.is_closed():
            raise RuntimeError("Event loop is closed")

    def _check_running(self) -> None:
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if events._get_running_loop() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")

    def _track_coroutine_origins(self, enabled: bool) -> None:
        if enabled and self._origin_tracking_depth is None:
            self._origin_tracking_depth = sys.get_coroutine_origin_tracking_depth()
            sys.set_coroutine_origin_tracking_depth(constants.DEBUG_STACK_DEPTH)
        elif not enabled and self._origin_tracking_depth is not None:
            sys.set_coroutine_origin_tracking_depth(self._origin_tracking_depth)
            self._origin_tracking_depth = None

    def set_debug(self, enabled: bool) -> None:
        """Turn debug mode on or off (checks, slow-callback warnings, origins)."""
        self._set_debug_native(enabled)
        if self.is_running():
            self.call_soon_threadsafe(self._track_coroutine_origins, bool(enabled))

    def run_forever(self) -> None:
        """Run until ``stop()`` is called."""
        self._check_closed()
        self._check_running()
        self._track_coroutine_origins(self.get_debug())
        old_hooks = sys.get_asyncgen_hooks()
        try:
            sys.set_asyncgen_hooks(
                firstiter=self._asyncgen_firstiter_hook,
                finalizer=self._asyncgen_finalizer_hook,
            )
            events._set_running_loop(self)
            self._run_forever_native()
        finally:
            events._set_running_loop(None)
            self._track_coroutine_origins(False)
            sys.set_asyncgen_hooks(*old_hooks)

    def run_until_complete(self, future):
        """Run until ``future`` is done and return its result (or raise)."""
        self._check_closed()
        self._check_running()
        wrapped = not futures.isfuture(future)
        future = tasks.ensure_future(future, loop=self)
        if wrapped:
            future._log_destroy_pending = False
        future.add_done_callback(_stop_loop_when_done)
        try:
            self.run_forever()
        except BaseException:
            if wrapped and future.done() and not future.cancelled():
                future.exception()
            raise
        finally:
            future.remove_done_callback(_stop_loop_when_done)
        if not future.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return future.result()

    def close(self) -> None:
        """Close the loop: drop pending callbacks, shut the executor down."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        if self.get_debug():
            logger.debug("Close %r", self)
        self._close_native()
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)

    # -- futures and tasks -----------------------------------------------

    def _create_task_general(self, coro, name, context):
        """``create_task`` when the native loop's common case does not apply: a name, a
        context, a task factory, debug mode, or a closed loop."""
        self._check_closed()
        if self._task_factory is None:
            task = tasks.Task(coro, loop=self, name=name, context=context)
            if task._source_traceback:
                del task._source_traceback[-1]
        else:
            if context is None:
                task = self._task_factory(self, coro)
            else:
                task = self._task_factory(self, coro, context=context)
            if name is not None:
                try:
                    task.set_name(name)
                except AttributeError:
                    pass
        return task

    def set_task_factory(self, factory) -> None:
        """Set the factory ``create_task`` uses, or ``None`` for the default."""
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self):
        """The task factory, or ``None``."""
        return self._task_factory

    # -- exception handling ----------------------------------------------

    def get_exception_handler(self):
        """The exception handler, or ``None`` for the default."""
        return self._exception_handler

    def set_exception_handler(self, handler) -> None:
        """Set ``handler(loop, context)`` as the exception handler."""
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context) -> None:
        """Log the error described by ``context`` on the ``asyncio`` logger."""
        message = context.get("message") or "Unhandled exception in event loop"
        exception = context.get("exception")
        exc_info = (
            (type(exception), exception, exception.__traceback__)
            if exception is not None
            else False
        )
        lines = [message]
        for key in sorted(context):
            if key in ("message", "exception"):
                continue
            value = context[key]
            if key == "source_traceback":
                text = "".join(traceback.format_list(value)).rstrip()
                value = "Object created at (most recent call last):\n" + text
            elif key == "handle_traceback":
                text = "".join(traceback.format_list(value)).rstrip()
                value = "Handle created at (most recent call last):\n" + text
            else:
                value = repr(value)
            lines.append(f"{key}: {value}")
        logger.error("\n".join(lines), exc_info=exc_info)

    def call_exception_handler(self, context) -> None:
        """Pass ``context`` to the exception handler; never raise but for
        ``SystemExit`` and ``KeyboardInterrupt``. From CPython 3.12 on, as asyncio there,
        a custom handler runs in the context of the task, future or handle the error
        comes from (what ``get_context()`` of the first of them returns)."""
        handler = self._exception_handler
        if handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler", exc_info=True)
            return
        try:
            ctx = _handler_context(context) if _HANDLER_IN_CONTEXT else None
            if ctx is not None:
                ctx.run(handler, self, context)
            else:
                handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler(
                    {
                        "message": "Unhandled error in exception handler",
                        "exception": exc,
                        "context": context,
                    }
                )
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error(
                    "Exception in default exception handler while handling an "
                    "unexpected error in custom exception handler",
                    exc_info=True,
                )

    # -- executor --------------------------------------------------------

    def run_in_executor(self, executor, func, *args):
        """Run ``func(*args)`` in ``executor`` (the default one if ``None``)."""
        self._check_closed()
        if self.get_debug():
            if coroutines.iscoroutine(func) or coroutines.iscoroutinefunction(func):
                raise TypeError("coroutines cannot be used with run_in_executor()")
            if not callable(func):
                raise TypeError(
                    f"a callable object was expected by run_in_executor(), got {func!r}"
                )
        if executor is None:
            executor = self._default_executor
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="pyloop")
                self._default_executor = executor
        return futures.wrap_future(executor.submit(func, *args), loop=self)

    def set_default_executor(self, executor) -> None:
        """Use ``executor`` (a ``ThreadPoolExecutor``) for ``run_in_executor(None, ...)``."""
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor instance")
        self._default_executor = executor

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Shut the default executor down without blocking the loop.

        ``timeout`` (CPython 3.12's parameter, accepted on every version): how long the
        executor's threads may take to finish; past it a ``RuntimeWarning`` is issued and the
        executor is left to finish on its own, as asyncio does. ``None`` waits as long as it
        takes."""
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is None:
            return
        done = self.create_future()

        def shut_down() -> None:
            try:
                executor.shutdown(wait=True)
            except Exception as exc:
                if not self.is_closed():
                    self.call_soon_threadsafe(_set_exception_unless_done, done, exc)
            else:
                if not self.is_closed():
                    self.call_soon_threadsafe(_set_result_unless_done, done, None)

        thread = threading.Thread(target=shut_down, name="pyloop-executor-shutdown")
        thread.start()
        try:
            async with asyncio.timeout(timeout):
                await done
        except TimeoutError:
            warnings.warn(
                f"The executor did not finishing joining its threads within {timeout} seconds.",
                RuntimeWarning,
                stacklevel=2,
            )
            executor.shutdown(wait=False)
        else:
            thread.join()

    # -- asynchronous generators -----------------------------------------

    def _asyncgen_firstiter_hook(self, agen) -> None:
        if self._asyncgens_shutdown_called:
            warnings.warn(
                f"asynchronous generator {agen!r} was scheduled after "
                "loop.shutdown_asyncgens() call",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )
        self._asyncgens.add(agen)

    def _asyncgen_finalizer_hook(self, agen) -> None:
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    async def shutdown_asyncgens(self) -> None:
        """Close every asynchronous generator still open on this loop."""
        self._asyncgens_shutdown_called = True
        if not self._asyncgens:
            return
        closing = list(self._asyncgens)
        self._asyncgens.clear()
        results = await tasks.gather(*(agen.aclose() for agen in closing), return_exceptions=True)
        for result, agen in zip(results, closing, strict=False):
            if isinstance(result, Exception):
                self.call_exception_handler(
                    {
                        "message": "an error occurred during closing of "
                        f"asynchronous generator {agen!r}",
                        "exception": result,
                        "asyncgen": agen,
                    }
                )

    # -- name resolution (through the executor, as asyncio) -----------------

    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        """``socket.getaddrinfo`` in the default executor."""
        call = functools.partial(socket.getaddrinfo, host, port, family, type, proto, flags)
        return await self.run_in_executor(None, call)

    async def getnameinfo(self, sockaddr, flags=0):
        """``socket.getnameinfo`` in the default executor."""
        return await self.run_in_executor(None, socket.getnameinfo, sockaddr, flags)


#: CPython 3.12 runs a custom exception handler in the failing thing's context.
_HANDLER_IN_CONTEXT = sys.version_info >= (3, 12)


def _handler_context(context):
    """The ``contextvars.Context`` asyncio 3.12+ runs a custom handler in: that of the
    ``task``, else the ``future``, else the ``handle`` of the error, if it has one."""
    thing = context.get("task")
    if thing is None:
        thing = context.get("future")
    if thing is None:
        thing = context.get("handle")
    if thing is not None and hasattr(thing, "get_context"):
        ctx = thing.get_context()
        if ctx is not None and hasattr(ctx, "run"):
            return ctx
    return None


def _set_result_unless_done(future, result) -> None:
    if not future.done():
        future.set_result(result)


def _set_exception_unless_done(future, exc) -> None:
    if not future.done():
        future.set_exception(exc)


class NoIoMixin:
    """The I/O methods of a phase that cannot wait for I/O: each raises
    ``NotImplementedError`` saying why and which phase can."""

    for _name in (
        "add_reader",
        "remove_reader",
        "add_writer",
        "remove_writer",
        "sock_recv",
        "sock_recv_into",
        "sock_recvfrom",
        "sock_recvfrom_into",
        "sock_sendall",
        "sock_sendto",
        "sock_connect",
        "sock_accept",
        "sock_sendfile",
        "create_connection",
        "create_server",
        "create_unix_connection",
        "create_unix_server",
        "create_datagram_endpoint",
        "connect_accepted_socket",
        "start_tls",
        "sendfile",
        "connect_read_pipe",
        "connect_write_pipe",
        "subprocess_exec",
        "subprocess_shell",
        "add_signal_handler",
        "remove_signal_handler",
    ):
        locals()[_name] = _io_not_implemented(_name)
    del _name


class _NativeSelector(selectors._BaseSelectorImpl):
    """A ``selectors`` selector whose registrations are mirrored into the
    native loop's epoll set. asyncio's ``selector_events`` code registers
    readers and writers through it; the native loop waits and reports ready
    descriptors back (``_pyloop_io_ready``). ``select()`` is never called."""

    def __init__(self, loop) -> None:
        super().__init__()
        self._loop = loop
        # The loop's own self-pipe, which does not count as I/O to look for
        # while busy. Kept by number: at unregistration the socket may be closed.
        self._internal: set[int] = set()

    def register(self, fileobj, events, data=None):
        key = super().register(fileobj, events, data)
        ssock = getattr(self._loop, "_ssock", None)
        internal = ssock is not None and ssock.fileno() == key.fd
        try:
            self._loop._io_register(key.fd, events, internal)
        except BaseException:
            super().unregister(fileobj)
            raise
        if internal:
            self._internal.add(key.fd)
        return key

    def unregister(self, fileobj):
        key = super().unregister(fileobj)
        internal = key.fd in self._internal
        self._internal.discard(key.fd)
        self._loop._io_unregister(key.fd, internal)
        return key

    def modify(self, fileobj, events, data=None):
        try:
            key = self._fd_to_key[self._fileobj_lookup(fileobj)]
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None
        if events != key.events:
            try:
                self._loop._io_modify(key.fd, events)
            except OSError:
                # As asyncio's selector: a key whose change failed (its file was
                # closed and left the epoll set) is dropped, so that the next
                # registration of the number starts afresh. A change the loop
                # refuses (RuntimeError: a direction a pending sock_* call waits
                # in) leaves the key, and the other direction's callback, as it was.
                self.unregister(fileobj)
                raise
        new_key = key._replace(events=events, data=data)
        self._fd_to_key[key.fd] = new_key
        return new_key

    def select(self, timeout=None):
        raise RuntimeError("PyLoop waits for I/O in its own turn; select() is not used")


class _SendfileFlow(base_events._SendfileFallbackProtocol):
    """asyncio's sendfile fallback protocol (it pauses reading and tracks the
    transport's write flow control while a file is sent), set up for a native
    transport, which asyncio's constructor refuses for not being one of its
    own classes."""

    def __init__(self, transp) -> None:  # not super().__init__: that is the check we skip
        self._transport = transp
        self._proto = transp.get_protocol()
        self._should_resume_reading = transp.is_reading()
        self._should_resume_writing = transp._protocol_paused
        transp.pause_reading()
        transp.set_protocol(self)
        self._write_ready_fut = transp._loop.create_future() if transp._protocol_paused else None


class IoLoopMixin:
    """asyncio's selector-based I/O (sockets, servers, TLS, UDP, Unix sockets,
    pipes, subprocesses, signals), running over the native loop's epoll wait.

    It sits before ``asyncio.unix_events._UnixSelectorEventLoop`` in the MRO:
    the native loop provides scheduling and the turn, ``LoopMixin`` the rest of
    the loop API, and asyncio's own classes the I/O methods and transports.
    """

    def __init__(self) -> None:
        LoopMixin.__init__(self)
        unix_events._UnixSelectorEventLoop.__init__(self, _NativeSelector(self))

    def _make_socket_transport(self, sock, protocol, waiter=None, *, extra=None, server=None):
        """A native TCP transport for a plain stream socket (TLS and the rest
        keep asyncio's transports, which run over the same epoll wait). A socket
        of a subclass keeps asyncio's transport too: the native one reads and
        writes the descriptor itself, and would bypass an overridden ``recv`` or
        ``send``, which asyncio's transport calls."""
        if (
            type(sock) is not socket.socket
            or sock.family not in (socket.AF_INET, socket.AF_INET6)
            or not _native_transport
        ):
            return super()._make_socket_transport(
                sock, protocol, waiter, extra=extra, server=server
            )
        info = dict(extra or {})
        info["socket"] = trsock.TransportSocket(sock)
        try:
            info["sockname"] = sock.getsockname()
        except OSError:
            info["sockname"] = None
        if "peername" not in info:
            try:
                info["peername"] = sock.getpeername()
            except OSError:
                info["peername"] = None
        try:
            transport = _transport.TcpTransport(self, sock, protocol, info, server)
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE):
                raise
            # The native transport works on a duplicate of the socket's descriptor, and
            # the process has none left: asyncio's transport needs none, so the connection
            # is served by it rather than dropped (tests/test_adversarial_resources.py).
            return super()._make_socket_transport(
                sock, protocol, waiter, extra=extra, server=server
            )
        if server is not None:
            _transport.attach_to_server(server, transport)
        self._transports[sock.fileno()] = transport
        base_events._set_nodelay(sock)
        self.call_soon(protocol.connection_made, transport)
        self.call_soon(transport._start_reading)
        if waiter is not None:
            self.call_soon(futures._set_result_unless_cancelled, waiter, None)
        return transport

    def _start_serving(self, protocol_factory, sock, *args, **kwargs) -> None:
        """asyncio's, except that a listening socket closed meanwhile is left alone.
        asyncio calls this again a second after ``accept`` ran out of descriptors; if the
        server closed in that second, asyncio reports a ``ValueError`` on the closed socket
        (descriptor -1) to the exception handler (tests/deviations.py)."""
        if sock.fileno() == -1:
            return
        super()._start_serving(protocol_factory, sock, *args, **kwargs)

    def _make_self_pipe(self) -> None:
        super()._make_self_pipe()
        self._ssock_fd = self._ssock.fileno()

    def _close_self_pipe(self) -> None:
        """asyncio's, except that the reader is removed by the number the socket had when it
        was registered: a loop collected as garbage with its self-pipe may find the socket
        finalized (closed, its number now -1) before the loop's own ``__del__`` closes it."""
        self._remove_reader(self._ssock_fd)
        self._ssock.close()
        self._ssock = None
        self._csock.close()
        self._csock = None
        self._internal_fds -= 1

    def add_signal_handler(self, sig, callback, *args) -> None:
        super().add_signal_handler(sig, callback, *args)
        # Signals arrive through the self-pipe: look at it even while busy.
        self._io_poll_self_pipe(True)

    def remove_signal_handler(self, sig) -> bool:
        removed = super().remove_signal_handler(sig)
        self._io_poll_self_pipe(bool(self._signal_handlers))
        return removed

    async def _sendfile_fallback(self, transp, file, offset, count):
        """asyncio's read-and-write fallback of ``loop.sendfile``, for the
        native transport too (asyncio's accepts only its own transports)."""
        if not isinstance(transp, _transport.TcpTransport):
            return await super()._sendfile_fallback(transp, file, offset, count)
        if offset:
            file.seek(offset)
        chunk = bytearray(min(count, 16384) if count else 16384)
        sent = 0
        flow = _SendfileFlow(transp)
        try:
            while not count or sent < count:
                want = len(chunk) if not count else min(len(chunk), count - sent)
                view = memoryview(chunk)[:want]
                got = await self.run_in_executor(None, file.readinto, view)
                if not got:
                    break
                await flow.drain()
                transp.write(view[:got])
                sent += got
            return sent
        finally:
            if sent and hasattr(file, "seek"):
                file.seek(offset + sent)
            await flow.restore()

    def _pyloop_io_ready(self, events) -> None:
        """Called by the native loop with ``[(fd, mask), ...]`` after a wait."""
        selector = self._selector
        if selector is None:
            return
        fd_to_key = selector._fd_to_key
        self._process_events([(fd_to_key[fd], mask) for fd, mask in events if fd in fd_to_key])

    def close(self) -> None:
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        try:
            unix_events._UnixSelectorEventLoop.close(self)
        finally:
            # Whatever asyncio's part raised, the native loop lets go of its epoll set
            # and eventfd and refuses new callbacks.
            LoopMixin.close(self)
