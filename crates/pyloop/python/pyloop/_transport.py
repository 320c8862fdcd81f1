"""The TCP transport protocols see: an ``asyncio.Transport`` over a native core.

The reading and writing happen in Rust, in ``pyloop._native.TcpTransportCore``: the loop
hands it ready descriptors and it calls the protocol itself. This class is what the
protocol and libraries hold. It derives from ``asyncio.Transport``, so that
``isinstance(transport, asyncio.Transport)`` holds as libraries (and CPython's own tests)
expect, and forwards every method to its core. A native class cannot derive from
``asyncio.Transport`` itself: ``asyncio.BaseTransport`` has ``__slots__``, which give it an
instance layout no native layout can share.
"""

from __future__ import annotations

import asyncio
import sys
import warnings
from asyncio import constants
from typing import Any

from . import _native


class TcpTransport(asyncio.Transport):
    """PyLoop's transport for a connected TCP socket (asyncio's socket transport API)."""

    _start_tls_compatible = True
    _sendfile_compatible = constants._SendfileMode.TRY_NATIVE

    # ANCHOR: init
    def __init__(self, loop, sock, protocol, extra: dict[str, Any], server=None) -> None:
        super().__init__(extra)
        core = _native.TcpTransportCore(self, loop, sock, protocol, self._extra, server)
        self._core = core
        # The calls protocols and streams make most go straight to the core: an
        # instance attribute holding the core's bound method is found before the
        # class's forwarding method, so these cost no Python frame. The class
        # keeps the forwarding methods for introspection and subclasses.
        self.write = core.write
        self.is_closing = core.is_closing
        self.pause_reading = core.pause_reading
        self.resume_reading = core.resume_reading
        self.get_write_buffer_size = core.get_write_buffer_size
        # ANCHOR_END: init

    def __repr__(self) -> str:
        return repr(self._core)

    def __del__(self, _warn=warnings.warn) -> None:
        core = self.__dict__.get("_core")
        if core is not None and core._sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            core._close_unclosed()

    # -- asyncio.Transport ----------------------------------------------------------

    def write(self, data) -> None:
        self._core.write(data)

    def writelines(self, list_of_data) -> None:
        core = self._core
        if not _WRITELINES_312:
            # CPython 3.11: WriteTransport.writelines joins the items, then writes.
            core.write(b"".join(list_of_data))
            return
        # CPython 3.12+: the checks and errors of its socket transport's writelines, each
        # item taken as a memoryview; then one write of the items together. (asyncio then
        # sends the views with sendmsg; where its bookkeeping of them fails, on multi-byte
        # items or after close, tests/deviations.py says what PyLoop does instead.)
        if core._eof:
            raise RuntimeError("Cannot call writelines() after write_eof()")
        if core._sendfile_in_progress:
            raise RuntimeError("unable to writelines; sendfile is in progress")
        if not list_of_data:
            return
        views = [memoryview(data) for data in list_of_data]
        for view in views:
            if not view.c_contiguous:
                core.write(view)  # the fatal write error sendmsg would have met
                return
        core.write(b"".join(views))

    def write_eof(self) -> None:
        self._core.write_eof()

    def can_write_eof(self) -> bool:
        return True

    def abort(self) -> None:
        self._core.abort()

    def close(self) -> None:
        self._core.close()

    def is_closing(self) -> bool:
        return self._core.is_closing()

    def is_reading(self) -> bool:
        return self._core.is_reading()

    def pause_reading(self) -> None:
        self._core.pause_reading()

    def resume_reading(self) -> None:
        self._core.resume_reading()

    def get_extra_info(self, name, default=None):
        return self._core.get_extra_info(name, default)

    def set_protocol(self, protocol) -> None:
        self._core.set_protocol(protocol)

    def get_protocol(self):
        return self._core.get_protocol()

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        self._core.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._core.get_write_buffer_limits()

    def get_write_buffer_size(self) -> int:
        return self._core.get_write_buffer_size()

    # -- what asyncio's own code reads on its socket transports ----------------------

    @property
    def _loop(self):
        return self._core._loop

    @property
    def _sock(self):
        return self._core._sock

    @property
    def _sock_fd(self) -> int:
        return self._core._sock_fd

    @property
    def _paused(self) -> bool:
        return self._core._paused

    @property
    def _protocol_paused(self) -> bool:
        return self._core._protocol_paused

    def _force_close(self, exc) -> None:
        self._core._force_close(exc)

    def _make_empty_waiter(self):
        return self._core._make_empty_waiter()

    def _reset_empty_waiter(self) -> None:
        self._core._reset_empty_waiter()

    def _start_reading(self) -> None:
        self._core._start_reading()

    def _call_connection_lost(self, exc) -> None:
        self._core._call_connection_lost(exc)


#: CPython 3.12 gave the socket transport its own writelines (sendmsg of the items).
_WRITELINES_312 = sys.version_info >= (3, 12)


def attach_to_server(server, transport: TcpTransport) -> None:
    """``server._attach``: CPython 3.13's servers also track their transports."""
    if sys.version_info >= (3, 13):
        server._attach(transport)
    else:
        server._attach()
