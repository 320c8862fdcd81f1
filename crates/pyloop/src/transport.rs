//! A native TCP transport: asyncio's socket transport, with the read and
//! write paths in Rust.
//!
//! asyncio's `_SelectorSocketTransport` reacts to readiness by running Python:
//! a selector key lookup, a handle, `_read_ready`, `sock.recv`, and only then
//! the protocol. Here the loop hands a ready descriptor straight to its
//! transport (`TcpTransportCore::on_ready`), which calls `recv` and the
//! protocol's `data_received` (or `get_buffer`/`buffer_updated`) itself; `write`
//! tries `send` at once and buffers only what the kernel did not take. The state
//! machine (closing, end of file, flow control with water marks, when
//! `connection_lost` is called and with what) is asyncio's, so protocols see
//! the same sequence of calls.
//!
//! **Two objects.** What protocols and libraries hold is
//! `pyloop._transport.TcpTransport`, a Python subclass of `asyncio.Transport`
//! (so `isinstance(transport, asyncio.Transport)` holds, as libraries check),
//! which forwards each method to its [`TcpTransportCore`], this file. A native
//! class cannot itself derive from `asyncio.Transport`: the `__slots__` of
//! `asyncio.BaseTransport` give it an instance layout that conflicts with any
//! native layout. The core keeps its transport alive until the connection is
//! lost, as asyncio's selector keeps a registered transport alive.
//!
//! **The rules this file keeps**, each the fix of a fault found by testing:
//! - *No descriptor is used after its socket is closed.* The core reads,
//!   writes and registers its own duplicate of the socket's descriptor, held as
//!   an [`OwnedFd`] and closed exactly once, when the connection is lost. A
//!   number the core no longer owns can belong to another socket by then: a
//!   write on it would deliver the bytes to that socket's peer.
//! - *Only the bytes a buffer exports are touched* (`ContiguousBuffer` in `buffer.rs`).
//! - *No Python code runs while the state is borrowed* (see `GilCell` in `gil_cell.rs`):
//!   protocols are called, and objects dropped, after the borrow ends.
//! - *The collector sees every reference* (`__traverse__`/`__clear__`), so a
//!   protocol that holds its transport, the usual pattern, is collected.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use pyo3::exceptions::{
    PyConnectionError, PyMemoryError, PyOSError, PyOverflowError, PyRuntimeError, PyTypeError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::pyclass::{PyTraverseError, PyVisit};
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyMemoryView, PyString};
use pyo3::{ffi, intern};

use crate::boundary;
use crate::buffer::{ContiguousBuffer, ReadableBuffer};
use crate::event_loop::IoLoop;
use crate::exit_park;
use crate::gil_cell::GilCell;
use crate::sock_calls::os_error;
use crate::spare_bytes::SpareBytes;

/// Writes to a lost connection after this many each log a warning, as asyncio.
const LOG_THRESHOLD_FOR_CONNLOST_WRITES: u32 = 5;
const DEFAULT_HIGH_WATER: usize = 64 * 1024;
/// The allocation an emptied write buffer keeps for the next write (four
/// times the default high water mark); more is given back.
const KEPT_CAPACITY: usize = 4 * DEFAULT_HIGH_WATER;

/// Interest bits, as `selectors`: 1 read, 2 write.
const READ: u8 = 1;
const WRITE: u8 = 2;

struct State {
    /// Our duplicate of the socket's descriptor: `None` once the connection is
    /// lost. Every system call goes through it, never through a bare number.
    fd: Option<OwnedFd>,
    event_loop: Option<IoLoop>,
    /// The `asyncio.Transport` the protocol holds; kept until the connection is
    /// lost, so that a protocol that does not hold it still has one.
    transport: Option<Py<PyAny>>,
    sock: Option<Py<PyAny>>,
    protocol: Option<Py<PyAny>>,
    /// The protocol is an `asyncio.BufferedProtocol`.
    buffered: bool,
    extra: Option<Py<PyDict>>,
    server: Option<Py<PyAny>>,
    /// The context the protocol's read and write callbacks run in: a copy of
    /// the one the transport was made in, as asyncio's reader handle has.
    context: Option<Py<PyAny>>,
    /// Bytes accepted by `write` and not yet sent, oldest first, from `sent`.
    buffer: Vec<u8>,
    sent: usize,
    /// Non-zero once `connection_lost` is scheduled or called; counts writes after it.
    conn_lost: u32,
    closing: bool,
    /// Reading paused by `pause_reading`.
    paused: bool,
    /// `write_eof` was called.
    eof: bool,
    /// `eof_received` asked to keep the connection open: no more reading.
    read_done: bool,
    protocol_paused: bool,
    high_water: usize,
    low_water: usize,
    /// What the epoll set watches for this descriptor now.
    watching: u8,
    /// While `loop.sendfile()` sends directly on the socket: the future that
    /// completes when the write buffer is empty (asyncio's `_empty_waiter`).
    empty_waiter: Option<Py<PyAny>>,
}

impl State {
    fn pending(&self) -> usize {
        self.buffer.len() - self.sent
    }

    fn reading(&self) -> bool {
        !self.closing && !self.paused && !self.read_done
    }

    fn raw_fd(&self) -> i32 {
        self.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// What the epoll set should watch for now.
    fn interest(&self) -> u8 {
        let mut want = 0;
        if self.conn_lost == 0 && self.fd.is_some() {
            if self.reading() {
                want |= READ;
            }
            if self.pending() > 0 {
                want |= WRITE;
            }
        }
        want
    }

    /// Empties the buffer, and gives back all but [`KEPT_CAPACITY`] of its
    /// allocation: a burst once written to a slow peer must not hold its
    /// peak for the rest of the connection.
    fn empty_buffer(&mut self) {
        self.buffer.clear();
        self.buffer.shrink_to(KEPT_CAPACITY);
        self.sent = 0;
    }

    /// Drops the sent prefix of the buffer once it is more than half of it.
    fn consume(&mut self, n: usize) {
        self.sent += n;
        if self.sent == self.buffer.len() {
            self.empty_buffer();
        } else if self.sent > self.buffer.len() / 2 {
            self.buffer.drain(..self.sent);
            self.sent = 0;
        }
    }
}

// ANCHOR: transport
/// The state and the read and write paths of a TCP transport; the
/// `asyncio.Transport` protocols see (`pyloop._transport.TcpTransport`)
/// forwards to it.
#[pyclass(frozen, weakref, module = "pyloop._native")]
pub struct TcpTransportCore {
    /// The socket's own descriptor number, as asyncio's `_sock_fd` (the key of
    /// the loop's `_transports`); never used for a system call.
    sock_fd: i32,
    state: GilCell<State>,
}
// ANCHOR_END: transport

fn logger(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    LOGGER.import(py, "asyncio.log", "logger")
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// Sends as much of `data` as the kernel takes now. Non-blocking by its
/// flag, not by the descriptor's mode: the duplicate shares that mode with the
/// user's socket, which anyone (a `setblocking(True)`, another process holding
/// the descriptor) can make blocking, and a blocking send here would wait with
/// the GIL held, stopping every thread of the process, the peer's among them.
fn send_now(fd: &OwnedFd, data: &[u8]) -> io::Result<usize> {
    // safety: `data` is a live slice for the call; `fd` is open (we own it).
    let n = unsafe {
        libc::send(
            fd.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Reads into `buf`; `Ok(0)` is end of file. Non-blocking by its flag, as
/// [`send_now`].
pub(crate) fn recv_into(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // safety: `buf` is a live, writable slice for the call; `fd` is open.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

// ANCHOR: duplicate
/// A new descriptor for the same socket as `fd`, owned by the caller.
fn duplicate(fd: i32) -> io::Result<OwnedFd> {
    // safety: F_DUPFD_CLOEXEC only reads `fd` (the kernel checks it) and returns
    // a new descriptor that nobody else owns.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // safety: `new` was just made for us and is open.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}
// ANCHOR_END: duplicate

/// The `contextvars.Context` current now, copied.
fn copy_context(py: Python<'_>) -> PyResult<Py<PyAny>> {
    // safety: attached; returns a new reference or NULL with an error set.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyContext_CopyCurrent()) }.map(Bound::unbind)
}

/// Runs `f` inside `context` (if any), as a handle runs its callback.
fn in_context<R>(
    py: Python<'_>,
    context: Option<&Bound<'_, PyAny>>,
    f: impl FnOnce() -> PyResult<R>,
) -> PyResult<R> {
    let Some(context) = context else {
        return f();
    };
    // safety: `context` is a Context (made by PyContext_CopyCurrent); enter and
    // exit pair up on this thread, and exit runs whatever `f` returned.
    unsafe {
        if ffi::PyContext_Enter(context.as_ptr()) < 0 {
            return Err(PyErr::fetch(py));
        }
        let out = f();
        if ffi::PyContext_Exit(context.as_ptr()) < 0 {
            let exit_err = PyErr::fetch(py);
            return out.and(Err(exit_err));
        }
        out
    }
}

impl TcpTransportCore {
    fn loop_of(&self, py: Python<'_>) -> Option<IoLoop> {
        self.state
            .with(py, |s| s.event_loop.as_ref().map(|l| l.clone_ref(py)))
    }

    fn protocol_of(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.state
            .with(py, |s| s.protocol.as_ref().map(|p| p.clone_ref(py)))
    }

    /// What the exception handler is told the transport is: the
    /// `asyncio.Transport` the protocol holds, or this core once it is gone.
    fn public(slf: &Bound<'_, Self>) -> Py<PyAny> {
        let py = slf.py();
        slf.get()
            .state
            .with(py, |s| s.transport.as_ref().map(|t| t.clone_ref(py)))
            .unwrap_or_else(|| slf.clone().into_any().unbind())
    }

    /// Makes the loop's epoll set watch our descriptor for `want` (0: nothing).
    fn watch(slf: &Bound<'_, Self>, want: u8) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let (event_loop, current, fd) = this.state.with(py, |s| {
            (
                s.event_loop.as_ref().map(|l| l.clone_ref(py)),
                s.watching,
                s.raw_fd(),
            )
        });
        if current == want {
            return Ok(());
        }
        let Some(event_loop) = event_loop else {
            return Ok(());
        };
        if want != 0 && fd < 0 {
            return Ok(());
        }
        if event_loop.is_closed() {
            // The loop let go of its descriptors when it closed. As asyncio's
            // `_remove_reader` and `_add_reader` on a closed loop: watching
            // for less is a no-op, watching for more raises.
            if want & !current != 0 {
                return Err(crate::event_loop::closed_error());
            }
            this.state.with(py, |s| s.watching = want);
            return Ok(());
        }
        event_loop.watch_transport(py, fd, slf, want)?;
        this.state.with(py, |s| s.watching = want);
        Ok(())
    }

    fn update_watch(slf: &Bound<'_, Self>) -> PyResult<()> {
        let want = slf.get().state.with(slf.py(), |s| s.interest());
        Self::watch(slf, want)
    }

    /// Called by the loop when its epoll wait found the descriptor ready: the
    /// read side first, then the write side, as asyncio queues its reader's
    /// handle before its writer's; both in the transport's context.
    /// `spare` is the loop's read buffer and kept `bytes` (`spare_bytes.rs`).
    pub(crate) fn on_ready(
        slf: &Bound<'_, Self>,
        readable: bool,
        writable: bool,
        spare: &SpareBytes,
    ) -> PyResult<()> {
        let py = slf.py();
        // Bound, not Py: dropping a `Py` first asks a thread-local whether
        // the thread is attached, a call into the dynamic linker.
        let context = slf
            .get()
            .state
            .with(py, |s| s.context.as_ref().map(|c| c.bind(py).clone()));
        in_context(py, context.as_ref(), || {
            if readable {
                Self::read_ready(slf, spare)?;
            }
            if writable {
                Self::write_ready(slf)?;
            }
            Ok(())
        })
    }

    // ANCHOR: read_ready
    fn read_ready(slf: &Bound<'_, Self>, spare: &SpareBytes) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let Some((protocol, buffered)) = this.state.with(py, |s| {
            if s.conn_lost > 0 || !s.reading() {
                return None;
            }
            s.protocol
                .as_ref()
                .map(|p| (p.bind(py).clone(), s.buffered))
        }) else {
            return Ok(());
        };
        let protocol = &protocol;
        if buffered {
            return Self::read_into_protocol_buffer(slf, protocol);
        }
        // recv into the loop's spare `bytes` and read buffer, under the
        // state's borrow (a system call, no Python).
        let received = this
            .state
            .with(py, |s| s.fd.as_ref().map(|fd| spare.receive(py, fd)));
        const READ_FAILED: &str = "Fatal read error on socket transport";
        match received {
            None => Ok(()),
            Some(Err(e)) if would_block(&e) => Ok(()),
            Some(Err(e)) => Self::fatal_error(slf, os_error(e), READ_FAILED),
            Some(Ok(Err(no_memory))) => Self::fatal_error(slf, no_memory, READ_FAILED),
            Some(Ok(Ok(data))) if data.as_bytes().is_empty() => Self::on_eof(slf, protocol),
            Some(Ok(Ok(data))) => {
                match exit_park::call_method1(protocol, intern!(py, "data_received"), &data) {
                    Ok(_) => {
                        spare.keep(data);
                        Ok(())
                    }
                    Err(err) if boundary::is_fatal_to_loop(py, &err) => Err(err),
                    Err(err) => Self::fatal_error(
                        slf,
                        err,
                        "Fatal error: protocol.data_received() call failed.",
                    ),
                }
            }
        }
    }
    // ANCHOR_END: read_ready

    // ANCHOR: read_into_protocol_buffer
    /// The read path of a `BufferedProtocol`: `recv` straight into the buffer
    /// `get_buffer()` returns, asked for as a writable, C-contiguous block, as
    /// `socket.recv_into` asks for it; anything else is a fatal read error, as
    /// in asyncio.
    fn read_into_protocol_buffer(
        slf: &Bound<'_, Self>,
        protocol: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let buf = match exit_park::call_method1(
            protocol,
            intern!(py, "get_buffer"),
            (-1i32).into_pyobject(py)?.as_any(),
        )
        .and_then(|b| {
            if b.len()? == 0 {
                Err(PyRuntimeError::new_err(
                    "get_buffer() returned an empty buffer",
                ))
            } else {
                Ok(b)
            }
        }) {
            Ok(buf) => buf,
            Err(err) if boundary::is_fatal_to_loop(py, &err) => return Err(err),
            Err(err) => {
                return Self::fatal_error(
                    slf,
                    err,
                    "Fatal error: protocol.get_buffer() call failed.",
                )
            }
        };
        let mut view = match ContiguousBuffer::writable(&buf) {
            Ok(view) => view,
            Err(err) => return Self::fatal_error(slf, err, "Fatal read error on socket transport"),
        };
        // get_buffer() ran Python code: the connection may be gone by now.
        let received = slf.get().state.with(py, |s| {
            s.fd.as_ref().map(|fd| recv_into(fd, view.as_mut_slice()))
        });
        drop(view);
        // ... and the protocol may have been replaced (`set_protocol` from
        // `get_buffer`): what was read goes to the current one, as in asyncio.
        let current = slf
            .get()
            .state
            .with(py, |s| s.protocol.as_ref().map(|p| p.clone_ref(py)));
        let protocol = current.as_ref().map_or(protocol, |p| p.bind(py));
        match received {
            None => Ok(()),
            Some(Err(e)) if would_block(&e) => Ok(()),
            Some(Err(e)) => {
                Self::fatal_error(slf, os_error(e), "Fatal read error on socket transport")
            }
            Some(Ok(0)) => Self::on_eof(slf, protocol),
            Some(Ok(n)) => match exit_park::call_method1(
                protocol,
                intern!(py, "buffer_updated"),
                n.into_pyobject(py)?.as_any(),
            ) {
                Ok(_) => Ok(()),
                Err(err) if boundary::is_fatal_to_loop(py, &err) => Err(err),
                Err(err) => Self::fatal_error(
                    slf,
                    err,
                    "Fatal error: protocol.buffer_updated() call failed.",
                ),
            },
        }
    }
    // ANCHOR_END: read_into_protocol_buffer

    fn on_eof(slf: &Bound<'_, Self>, protocol: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let keep_open = match exit_park::call_method0(protocol, intern!(py, "eof_received"))
            .and_then(|r| r.is_truthy())
        {
            Ok(keep) => keep,
            Err(err) if boundary::is_fatal_to_loop(py, &err) => return Err(err),
            Err(err) => {
                return Self::fatal_error(
                    slf,
                    err,
                    "Fatal error: protocol.eof_received() call failed.",
                )
            }
        };
        if keep_open {
            slf.get().state.with(py, |s| s.read_done = true);
            Self::update_watch(slf)
        } else {
            Self::close(slf)
        }
    }

    fn write_ready(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let result = this.state.with(py, |s| {
            if s.conn_lost > 0 || s.pending() == 0 {
                return None;
            }
            let fd = s.fd.as_ref()?;
            let sent = send_now(fd, &s.buffer[s.sent..]);
            if let Ok(n) = sent {
                s.consume(n);
            }
            Some(sent)
        });
        match result {
            None => Ok(()),
            Some(Err(e)) if would_block(&e) => Ok(()),
            Some(Err(e)) => {
                this.state.with(py, State::empty_buffer);
                Self::update_watch(slf)?;
                let err: PyErr = os_error(e);
                let value = err.value(py).clone().into_any().unbind();
                let waiter = this
                    .state
                    .with(py, |s| s.empty_waiter.as_ref().map(|w| w.clone_ref(py)));
                Self::fatal_error(slf, err, "Fatal write error on socket transport")?;
                if let Some(waiter) = waiter {
                    waiter.call_method1(py, intern!(py, "set_exception"), (value,))?;
                }
                Ok(())
            }
            Some(Ok(_)) => {
                // The watch first: if `resume_writing` raises KeyboardInterrupt
                // (which leaves the loop), the descriptor must not stay watched
                // for a buffer that is empty, waking every turn for nothing.
                Self::update_watch(slf)?;
                Self::maybe_resume_protocol(slf)?;
                let (empty, closing, eof) = this
                    .state
                    .with(py, |s| (s.pending() == 0, s.closing, s.eof));
                Self::update_watch(slf)?;
                if empty {
                    let waiter = this
                        .state
                        .with(py, |s| s.empty_waiter.as_ref().map(|w| w.clone_ref(py)));
                    if let Some(waiter) = waiter {
                        waiter.call_method1(py, intern!(py, "set_result"), (py.None(),))?;
                    }
                    if closing {
                        Self::connection_lost_now(slf, None)?;
                    } else if eof {
                        Self::shutdown_write(slf)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Half-closes the socket (`write_eof` once the buffer is flushed); its
    /// error as asyncio's `sock.shutdown(SHUT_WR)` raises it.
    fn shutdown_write(slf: &Bound<'_, Self>) -> PyResult<()> {
        let result = slf.get().state.with(slf.py(), |s| match &s.fd {
            // safety: shuts down the sending side of the socket we own.
            Some(fd) => unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_WR) },
            None => 0,
        });
        if result < 0 {
            return Err(os_error(io::Error::last_os_error()));
        }
        Ok(())
    }

    fn maybe_pause_protocol(slf: &Bound<'_, Self>) -> PyResult<()> {
        let pause = slf.get().state.with(slf.py(), |s| {
            if s.pending() > s.high_water && !s.protocol_paused {
                s.protocol_paused = true;
                true
            } else {
                false
            }
        });
        if pause {
            Self::call_protocol_flow(slf, "pause_writing", "protocol.pause_writing() failed")?;
        }
        Ok(())
    }

    fn maybe_resume_protocol(slf: &Bound<'_, Self>) -> PyResult<()> {
        let resume = slf.get().state.with(slf.py(), |s| {
            if s.protocol_paused && s.pending() <= s.low_water {
                s.protocol_paused = false;
                true
            } else {
                false
            }
        });
        if resume {
            Self::call_protocol_flow(slf, "resume_writing", "protocol.resume_writing() failed")?;
        }
        Ok(())
    }

    fn call_protocol_flow(slf: &Bound<'_, Self>, method: &str, message: &str) -> PyResult<()> {
        let py = slf.py();
        let Some(protocol) = slf.get().protocol_of(py) else {
            return Ok(());
        };
        match exit_park::call_method0(protocol.bind(py), &PyString::intern(py, method)) {
            Ok(_) => Ok(()),
            Err(err) if boundary::is_fatal_to_loop(py, &err) => Err(err),
            Err(err) => Self::report(slf, &err, message),
        }
    }

    /// Hands `err` to the loop's exception handler with asyncio's keys.
    fn report(slf: &Bound<'_, Self>, err: &PyErr, message: &str) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let Some(event_loop) = this.loop_of(py) else {
            return Ok(());
        };
        boundary::report_to_handler(event_loop.as_any().bind(py), message, err, |context| {
            context.set_item("transport", Self::public(slf))?;
            context.set_item("protocol", this.protocol_of(py))
        })
    }

    /// asyncio's `_fatal_error`: OS errors are expected (a peer went away) and
    /// logged only in debug mode; others go to the exception handler. Then the
    /// connection is closed at once.
    fn fatal_error(slf: &Bound<'_, Self>, err: PyErr, message: &str) -> PyResult<()> {
        let py = slf.py();
        if err.is_instance_of::<PyOSError>(py) {
            let debug = slf.get().loop_of(py).is_some_and(|l| l.get_debug());
            if debug {
                let kwargs = PyDict::new(py);
                kwargs.set_item("exc_info", err.value(py))?;
                logger(py)?.call_method(
                    intern!(py, "debug"),
                    ("%r: %s", Self::public(slf), message),
                    Some(&kwargs),
                )?;
            }
        } else {
            Self::report(slf, &err, message)?;
        }
        Self::force_close(slf, Some(err.value(py).clone().into_any().unbind()))
    }

    fn force_close(slf: &Bound<'_, Self>, exc: Option<Py<PyAny>>) -> PyResult<()> {
        let py = slf.py();
        let proceed = slf.get().state.with(py, |s| {
            if s.conn_lost > 0 {
                return false;
            }
            s.empty_buffer();
            s.closing = true;
            s.conn_lost += 1;
            true
        });
        if !proceed {
            return Ok(());
        }
        Self::watch(slf, 0)?;
        Self::schedule_connection_lost(slf, exc)
    }

    fn schedule_connection_lost(slf: &Bound<'_, Self>, exc: Option<Py<PyAny>>) -> PyResult<()> {
        let py = slf.py();
        let Some(event_loop) = slf.get().loop_of(py) else {
            return Ok(());
        };
        let callback = slf.getattr(intern!(py, "_call_connection_lost"))?;
        event_loop
            .as_any()
            .call_method1(py, intern!(py, "call_soon"), (callback, exc))?;
        Ok(())
    }

    /// Calls `connection_lost`, then closes the socket and our descriptor and
    /// lets go of the loop, the protocol and the server, as asyncio's
    /// `_call_connection_lost`. Runs once: a second call finds nothing to do.
    fn connection_lost_now(slf: &Bound<'_, Self>, exc: Option<Py<PyAny>>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        Self::watch(slf, 0)?;
        let taken = this.state.with(py, |s| {
            let fd = s.fd.take()?;
            s.closing = true;
            // From here on writes are dropped and counted, never sent.
            s.conn_lost = s.conn_lost.max(1);
            s.buffer = Vec::new();
            s.sent = 0;
            Some((
                fd,
                s.protocol.take(),
                s.sock.take(),
                s.server.take(),
                s.transport.take(),
                s.event_loop.take(),
                s.empty_waiter.take(),
            ))
        });
        let Some((fd, protocol, sock, server, transport, event_loop, waiter)) = taken else {
            return Ok(());
        };
        drop(fd);
        let lost = match &protocol {
            Some(p) => exit_park::call_method1(
                p.bind(py),
                intern!(py, "connection_lost"),
                &exc.into_pyobject(py)?,
            )
            .map(drop),
            None => Ok(()),
        };
        let closed = match sock {
            Some(sock) => sock.call_method0(py, intern!(py, "close")).map(drop),
            None => Ok(()),
        };
        let detached = match server {
            // CPython 3.13 servers track their transports (close_clients).
            Some(server) if py.version_info() >= (3, 13) => server
                .call_method1(
                    py,
                    intern!(py, "_detach"),
                    (transport.as_ref().map(|t| t.clone_ref(py)),),
                )
                .map(drop),
            Some(server) => server.call_method0(py, intern!(py, "_detach")).map(drop),
            None => Ok(()),
        };
        if let Some(waiter) = waiter {
            if !waiter
                .call_method0(py, intern!(py, "done"))?
                .is_truthy(py)?
            {
                let err = PyConnectionError::new_err("Connection is closed by peer");
                waiter.call_method1(py, intern!(py, "set_exception"), (err.value(py),))?;
            }
        }
        drop((protocol, transport, event_loop));
        lost.and(closed).and(detached)
    }

    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let lose_now = slf.get().state.with(py, |s| {
            if s.closing {
                return None;
            }
            s.closing = true;
            if s.pending() == 0 {
                s.conn_lost += 1;
                Some(true)
            } else {
                Some(false)
            }
        });
        match lose_now {
            None => Ok(()),
            Some(lose) => {
                Self::update_watch(slf)?;
                if lose {
                    Self::schedule_connection_lost(slf, None)?;
                }
                Ok(())
            }
        }
    }

    /// Queues `data` (bytes, bytearray or memoryview) for sending; sends at
    /// once what the kernel takes. (The Python method `write` is
    /// `entry::transport_write`, installed on the class when the module loads.)
    pub(crate) fn write(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        Self::check_bytes_like(data)?;
        let this = slf.get();
        let (eof, sending_file) = this.state.with(py, |s| (s.eof, s.empty_waiter.is_some()));
        if eof {
            return Err(PyRuntimeError::new_err(
                "Cannot call write() after write_eof()",
            ));
        }
        if sending_file {
            return Err(PyRuntimeError::new_err(
                "unable to write; sendfile is in progress",
            ));
        }
        // An exact `bytes` (the usual data) is empty exactly when it is false.
        let empty = match data.cast_exact::<PyBytes>() {
            Ok(bytes) => bytes.as_bytes().is_empty(),
            Err(_) => !data.is_truthy()?,
        };
        if empty {
            return Ok(());
        }
        let lost_writes = this.state.with(py, |s| {
            if s.conn_lost == 0 {
                return 0;
            }
            let before = s.conn_lost;
            s.conn_lost += 1;
            before
        });
        if lost_writes > 0 {
            if lost_writes >= LOG_THRESHOLD_FOR_CONNLOST_WRITES {
                let warning = logger(py)?.getattr(intern!(py, "warning"))?;
                let arguments = ("socket.send() raised exception.",).into_pyobject(py)?;
                exit_park::call_with(&warning, &arguments, None)?;
            }
            return Ok(());
        }
        // As socket.send: one C-contiguous block; another view is a fatal
        // write error, as it is in asyncio. Except on CPython 3.11 with data
        // already buffered: its asyncio appends to the buffer without trying
        // a send, and the append raises its TypeError to the caller, the
        // connection intact.
        let view = match ReadableBuffer::of(data) {
            Ok(view) => view,
            Err(err) => {
                let buffered = this.state.with(py, |s| s.pending() > 0);
                if buffered && py.version_info() < (3, 12) {
                    return Err(PyTypeError::new_err(format!(
                        "can't concat {} to bytearray",
                        data.get_type().name()?
                    )));
                }
                return Self::fatal_error(slf, err, "Fatal write error on socket transport");
            }
        };
        // (Ok(true): some of it is buffered; Ok(None): no memory to buffer it.)
        let mut was_empty = false;
        let outcome = this.state.with(py, |s| {
            let mut rest = view.as_slice();
            was_empty = s.pending() == 0;
            if was_empty {
                let Some(fd) = s.fd.as_ref() else {
                    return Ok(Some(false));
                };
                match send_now(fd, rest) {
                    Ok(n) => rest = &rest[n..],
                    Err(e) if would_block(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            if s.buffer.try_reserve(rest.len()).is_err() {
                return Ok(None);
            }
            s.buffer.extend_from_slice(rest);
            Ok(Some(!rest.is_empty()))
        });
        drop(view);
        match outcome {
            Err(e) => Self::fatal_error(slf, os_error(e), "Fatal write error on socket transport"),
            // What was sent is sent; the rest is refused, as asyncio 3.11's
            // write() refuses it when its buffer cannot grow.
            Ok(None) => Err(PyMemoryError::new_err(())),
            Ok(Some(false)) => Ok(()),
            Ok(Some(true)) => {
                if let Err(err) = Self::update_watch(slf) {
                    // As asyncio, which starts watching for writability
                    // before it buffers the rest (and fails there when its
                    // loop is closed): the rest is refused, not kept.
                    if was_empty {
                        this.state.with(py, |s| {
                            s.buffer.clear();
                            s.sent = 0;
                        });
                    }
                    return Err(err);
                }
                Self::maybe_pause_protocol(slf)
            }
        }
    }

    fn check_bytes_like(data: &Bound<'_, PyAny>) -> PyResult<()> {
        if data.is_instance_of::<PyBytes>()
            || data.is_instance_of::<PyByteArray>()
            || data.is_instance_of::<PyMemoryView>()
        {
            return Ok(());
        }
        Err(PyTypeError::new_err(format!(
            "data argument must be a bytes-like object, not '{}'",
            data.get_type().name()?
        )))
    }
}

#[pymethods]
impl TcpTransportCore {
    /// The core of a transport over the connected, non-blocking socket `sock`
    /// for `protocol`; `transport` is the `asyncio.Transport` that forwards to it.
    #[new]
    #[pyo3(signature = (transport, event_loop, sock, protocol, extra, server=None))]
    fn new(
        transport: Bound<'_, PyAny>,
        event_loop: Bound<'_, PyAny>,
        sock: Bound<'_, PyAny>,
        protocol: Bound<'_, PyAny>,
        extra: Bound<'_, PyDict>,
        server: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let py = sock.py();
        let sock_fd: i32 = sock.call_method0(intern!(py, "fileno"))?.extract()?;
        if sock_fd < 0 {
            return Err(PyValueError::new_err("the socket is closed"));
        }
        let buffered = is_buffered_protocol(&protocol)?;
        let context = copy_context(py)?;
        let fd = duplicate(sock_fd).map_err(os_error)?;
        Ok(TcpTransportCore {
            sock_fd,
            state: GilCell::new(State {
                fd: Some(fd),
                event_loop: Some(IoLoop::from_bound(&event_loop)?),
                transport: Some(transport.unbind()),
                sock: Some(sock.unbind()),
                protocol: Some(protocol.unbind()),
                buffered,
                extra: Some(extra.unbind()),
                server: server.filter(|s| !s.is_none()).map(Bound::unbind),
                context: Some(context),
                buffer: Vec::new(),
                sent: 0,
                conn_lost: 0,
                closing: false,
                paused: false,
                eof: false,
                read_done: false,
                protocol_paused: false,
                high_water: DEFAULT_HIGH_WATER,
                low_water: DEFAULT_HIGH_WATER / 4,
                watching: 0,
                empty_waiter: None,
            }),
        })
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.state
            .peek_in_traverse(&visit, |s| {
                visit.call(s.event_loop.as_ref().map(IoLoop::as_any))?;
                visit.call(&s.transport)?;
                visit.call(&s.sock)?;
                visit.call(&s.protocol)?;
                visit.call(&s.extra)?;
                visit.call(&s.server)?;
                visit.call(&s.context)?;
                visit.call(&s.empty_waiter)
            })
            .unwrap_or(Ok(()))
    }

    fn __clear__(&self) {
        Python::attach(|py| {
            let taken = self.state.with(py, |s| {
                (
                    s.event_loop.take(),
                    s.transport.take(),
                    s.sock.take(),
                    s.protocol.take(),
                    s.extra.take(),
                    s.server.take(),
                    s.context.take(),
                    s.empty_waiter.take(),
                )
            });
            drop(taken);
        })
    }

    /// A future that completes once the write buffer is empty; `write` is
    /// refused until `_reset_empty_waiter`. Used by `loop.sendfile()`.
    fn _make_empty_waiter(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let this = slf.get();
        if this.state.with(py, |s| s.empty_waiter.is_some()) {
            return Err(PyRuntimeError::new_err("Empty waiter is already set"));
        }
        let event_loop = this
            .loop_of(py)
            .ok_or_else(|| PyRuntimeError::new_err("the transport is closed"))?;
        let waiter = event_loop
            .as_any()
            .bind(py)
            .call_method0(intern!(py, "create_future"))?
            .unbind();
        // `create_future` can run Python code that made a waiter meanwhile:
        // the new one replaces it, as in asyncio, and the old one is dropped
        // only once the state is no longer borrowed (its callbacks' `__del__`
        // may use the transport).
        let (replaced, empty) = this.state.with(py, |s| {
            let replaced = s.empty_waiter.replace(waiter.clone_ref(py));
            (replaced, s.pending() == 0)
        });
        drop(replaced);
        if empty {
            waiter.call_method1(py, intern!(py, "set_result"), (py.None(),))?;
        }
        Ok(waiter)
    }

    /// Ends what `_make_empty_waiter` started.
    fn _reset_empty_waiter(&self, py: Python<'_>) {
        let waiter = self.state.with(py, |s| s.empty_waiter.take());
        drop(waiter);
    }

    /// True while the protocol has been told to pause writing.
    #[getter]
    fn _protocol_paused(&self, py: Python<'_>) -> bool {
        self.state.with(py, |s| s.protocol_paused)
    }

    /// True once `write_eof` was called (asyncio's `_eof`).
    #[getter]
    fn _eof(&self, py: Python<'_>) -> bool {
        self.state.with(py, |s| s.eof)
    }

    /// True while `loop.sendfile()` sends on the socket (writes are refused).
    #[getter]
    fn _sendfile_in_progress(&self, py: Python<'_>) -> bool {
        self.state.with(py, |s| s.empty_waiter.is_some())
    }

    /// True while reading is paused by `pause_reading` (asyncio's `_paused`).
    #[getter]
    fn _paused(&self, py: Python<'_>) -> bool {
        self.state.with(py, |s| s.paused)
    }

    /// The loop, until the connection is lost (asyncio's `_loop`).
    #[getter]
    fn _loop(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.loop_of(py).map(|l| l.as_any().clone_ref(py))
    }

    /// The socket's descriptor number (asyncio's `_sock_fd`).
    #[getter]
    fn _sock_fd(&self) -> i32 {
        self.sock_fd
    }

    /// The socket, until the connection is lost (asyncio's `_sock`).
    #[getter]
    fn _sock(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.state
            .with(py, |s| s.sock.as_ref().map(|x| x.clone_ref(py)))
    }

    /// Starts reading, if still wanted: scheduled right after `connection_made`.
    fn _start_reading(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::update_watch(slf)
    }

    /// Calls `connection_lost`, closes the socket and detaches from the server.
    #[pyo3(signature = (exc=None))]
    fn _call_connection_lost(slf: &Bound<'_, Self>, exc: Option<Py<PyAny>>) -> PyResult<()> {
        Self::connection_lost_now(slf, exc)
    }

    /// Closes at once, dropping buffered data; `connection_lost(exc)` follows
    /// (asyncio's `_force_close`, which its TLS protocol calls).
    #[pyo3(signature = (exc=None))]
    fn _force_close(slf: &Bound<'_, Self>, exc: Option<Py<PyAny>>) -> PyResult<()> {
        Self::force_close(slf, exc)
    }

    /// Closes the socket without the protocol's `connection_lost`: the
    /// transport was collected while still open (`__del__`, with a
    /// `ResourceWarning`), as asyncio's transport closes its socket then.
    /// True if there was something to close.
    fn _close_unclosed(slf: &Bound<'_, Self>) -> PyResult<bool> {
        let py = slf.py();
        let this = slf.get();
        if this.state.with(py, |s| s.fd.is_none()) {
            return Ok(false);
        }
        let closed_loop = this.loop_of(py).is_none_or(|l| l.is_closed());
        if !closed_loop {
            Self::watch(slf, 0)?;
        }
        let (fd, sock) = this.state.with(py, |s| {
            s.closing = true;
            s.conn_lost = s.conn_lost.max(1);
            (s.fd.take(), s.sock.take())
        });
        drop(fd);
        if let Some(sock) = sock {
            sock.call_method0(py, intern!(py, "close"))?;
        }
        Ok(true)
    }

    /// Closes the sending side once the buffer is flushed.
    fn write_eof(slf: &Bound<'_, Self>) -> PyResult<()> {
        let shut_now = slf.get().state.with(slf.py(), |s| {
            if s.closing || s.eof {
                return false;
            }
            s.eof = true;
            s.pending() == 0
        });
        if shut_now {
            Self::shutdown_write(slf)?;
        }
        Ok(())
    }

    /// Closes at once, dropping buffered data; `connection_lost(None)` follows.
    fn abort(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::force_close(slf, None)
    }

    /// Closes after the buffer is flushed; `connection_lost(None)` follows.
    #[pyo3(name = "close")]
    fn py_close(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::close(slf)
    }

    /// True once closing or closed.
    fn is_closing(&self, py: Python<'_>) -> bool {
        self.state.with(py, |s| s.closing)
    }

    /// True if reading (not paused, not closing).
    fn is_reading(&self, py: Python<'_>) -> bool {
        self.state.with(py, |s| !s.closing && !s.paused)
    }

    /// Stops calling the protocol with data until `resume_reading`.
    fn pause_reading(slf: &Bound<'_, Self>) -> PyResult<()> {
        let changed = slf.get().state.with(slf.py(), |s| {
            // As asyncio: nothing at all unless reading (a closing transport
            // is not, and stays unpaused).
            let was = !s.closing && !s.paused;
            if was {
                s.paused = true;
            }
            was
        });
        if changed {
            Self::update_watch(slf)?;
        }
        Ok(())
    }

    /// Starts calling the protocol with data again.
    fn resume_reading(slf: &Bound<'_, Self>) -> PyResult<()> {
        let changed = slf.get().state.with(slf.py(), |s| {
            if s.closing || !s.paused {
                return false;
            }
            s.paused = false;
            true
        });
        if changed {
            Self::update_watch(slf)?;
        }
        Ok(())
    }

    /// Extra information: `socket`, `sockname`, `peername`.
    #[pyo3(signature = (name, default=None))]
    fn get_extra_info(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        default: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let extra = self
            .state
            .with(py, |s| s.extra.as_ref().map(|e| e.clone_ref(py)));
        if let Some(extra) = extra {
            if let Some(v) = extra.bind(py).get_item(name)? {
                return Ok(v.unbind());
            }
        }
        Ok(default.unwrap_or_else(|| py.None()))
    }

    /// Replaces the protocol.
    fn set_protocol(&self, protocol: Bound<'_, PyAny>) -> PyResult<()> {
        let py = protocol.py();
        let buffered = is_buffered_protocol(&protocol)?;
        // The old protocol is dropped after the borrow: its `__del__` may call
        // back into this transport.
        let old = self.state.with(py, |s| {
            s.buffered = buffered;
            s.protocol.replace(protocol.unbind())
        });
        drop(old);
        Ok(())
    }

    /// The protocol.
    fn get_protocol(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.protocol_of(py)
    }

    /// Sets the water marks of write flow control (asyncio's defaults: 64 KiB
    /// high, a quarter of it low).
    #[pyo3(signature = (high=None, low=None))]
    fn set_write_buffer_limits(
        slf: &Bound<'_, Self>,
        high: Option<i64>,
        low: Option<i64>,
    ) -> PyResult<()> {
        let high = match (high, low) {
            (Some(h), _) => h,
            (None, None) => DEFAULT_HIGH_WATER as i64,
            (None, Some(l)) => l.checked_mul(4).ok_or_else(|| {
                PyOverflowError::new_err(format!(
                    "the default high water mark, 4 * low ({l}), does not fit 64 bits"
                ))
            })?,
        };
        // Floor division, as asyncio's `high // 4` (for the message of a
        // negative `high`).
        let low = low.unwrap_or(high.div_euclid(4));
        if !(high >= low && low >= 0) {
            return Err(PyValueError::new_err(format!(
                "high ({high}) must be >= low ({low}) must be >= 0"
            )));
        }
        slf.get().state.with(slf.py(), |s| {
            s.high_water = high as usize;
            s.low_water = low as usize;
        });
        Self::maybe_pause_protocol(slf)
    }

    /// `(low, high)` water marks.
    fn get_write_buffer_limits(&self, py: Python<'_>) -> (usize, usize) {
        self.state.with(py, |s| (s.low_water, s.high_water))
    }

    /// Bytes buffered and not yet sent.
    fn get_write_buffer_size(&self, py: Python<'_>) -> usize {
        self.state.with(py, |s| s.pending())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let (closed, closing, pending) = self
            .state
            .with(py, |s| (s.fd.is_none(), s.closing, s.pending()));
        let status = if closed {
            " closed"
        } else if closing {
            " closing"
        } else {
            ""
        };
        format!(
            "<TcpTransport{status} fd={} bufsize={pending}>",
            self.sock_fd
        )
    }
}

fn is_buffered_protocol(protocol: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = protocol.py();
    static BUFFERED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let cls = BUFFERED.import(py, "asyncio.protocols", "BufferedProtocol")?;
    protocol.is_instance(cls)
}
