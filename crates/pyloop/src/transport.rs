//! A native TCP transport: asyncio's socket transport, with the read and
//! write paths in Rust.
//!
//! asyncio's `_SelectorSocketTransport` reacts to readiness by running Python:
//! a selector key lookup, a handle, `_read_ready`, `sock.recv`, and only then
//! the protocol. Here the loop hands a ready descriptor straight to its
//! transport (`TcpTransport::on_ready`), which calls `recv` and the protocol's
//! `data_received` (or `get_buffer`/`buffer_updated`) itself; `write` tries
//! `send` at once and buffers only what the kernel did not take. The state
//! machine (closing, end of file, flow control with water marks, when
//! `connection_lost` is called and with what) is asyncio's, so protocols see
//! the same sequence of calls.

use std::cell::RefCell;
use std::io;

use pyo3::exceptions::{
    PyKeyboardInterrupt, PyRuntimeError, PySystemExit, PyTypeError, PyValueError,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyMemoryView};

use crate::gil_cell::GilCell;

/// The most a single read asks for, as asyncio's `max_size`.
const MAX_READ: usize = 256 * 1024;
/// After this many writes to a lost connection, each further one logs a warning.
const LOG_THRESHOLD_FOR_CONNLOST_WRITES: u32 = 5;
const DEFAULT_HIGH_WATER: usize = 64 * 1024;

/// Interest bits, as `selectors`: 1 read, 2 write.
const READ: u8 = 1;
const WRITE: u8 = 2;

thread_local! {
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_READ]);
}

struct State {
    event_loop: Option<Py<PyAny>>,
    sock: Option<Py<PyAny>>,
    protocol: Option<Py<PyAny>>,
    /// The protocol is an `asyncio.BufferedProtocol`.
    buffered: bool,
    extra: Py<PyDict>,
    server: Option<Py<PyAny>>,
    /// Bytes accepted by `write` and not yet sent, oldest first, from `sent`.
    buffer: Vec<u8>,
    sent: usize,
    /// Set when `connection_lost` has been scheduled; counts writes after it.
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
}

// ANCHOR: transport
/// asyncio's TCP transport, read and written from Rust.
#[pyclass(frozen, weakref, module = "pyloop._native")]
pub struct TcpTransport {
    fd: i32,
    state: GilCell<State>,
}
// ANCHOR_END: transport

fn is_fatal_to_loop(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance_of::<PyKeyboardInterrupt>(py) || err.is_instance_of::<PySystemExit>(py)
}

fn logger(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    LOGGER.import(py, "asyncio.log", "logger")
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// Sends as much of `data` as the kernel takes now.
fn send_now(fd: i32, data: &[u8]) -> io::Result<usize> {
    // safety: `data` is a live slice for the call; the kernel checks `fd`.
    let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(last_error())
    } else {
        Ok(n as usize)
    }
}

/// Reads into `buf`; `Ok(0)` is end of file.
fn recv_into(fd: i32, buf: &mut [u8]) -> io::Result<usize> {
    // safety: `buf` is a live, writable slice for the call.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        Err(last_error())
    } else {
        Ok(n as usize)
    }
}

impl TcpTransport {
    fn loop_of(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.state
            .with(py, |s| s.event_loop.as_ref().map(|l| l.clone_ref(py)))
    }

    fn protocol_of(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.state
            .with(py, |s| s.protocol.as_ref().map(|p| p.clone_ref(py)))
    }

    /// Makes the loop's epoll set watch for `want` (0: nothing).
    fn watch(slf: &Bound<'_, Self>, want: u8) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let (event_loop, current) = this.state.with(py, |s| {
            (s.event_loop.as_ref().map(|l| l.clone_ref(py)), s.watching)
        });
        if current == want {
            return Ok(());
        }
        let Some(event_loop) = event_loop else {
            return Ok(());
        };
        let arg: Py<PyAny> = if want == 0 {
            py.None()
        } else {
            slf.clone().into_any().unbind()
        };
        event_loop.call_method1(py, intern!(py, "_io_watch"), (this.fd, arg, want))?;
        this.state.with(py, |s| s.watching = want);
        Ok(())
    }

    fn interest(s: &State) -> u8 {
        let mut want = 0;
        if s.reading() && s.conn_lost == 0 {
            want |= READ;
        }
        if s.pending() > 0 && s.conn_lost == 0 {
            want |= WRITE;
        }
        want
    }

    fn update_watch(slf: &Bound<'_, Self>) -> PyResult<()> {
        let want = slf.get().state.with(slf.py(), |s| Self::interest(s));
        Self::watch(slf, want)
    }

    /// Called by the loop when its epoll wait found the descriptor ready.
    pub(crate) fn on_ready(slf: &Bound<'_, Self>, readable: bool, writable: bool) -> PyResult<()> {
        if writable {
            Self::write_ready(slf)?;
        }
        if readable {
            let reading = slf
                .get()
                .state
                .with(slf.py(), |s| s.reading() && s.conn_lost == 0);
            if reading {
                Self::read_ready(slf)?;
            }
        }
        Ok(())
    }

    // ANCHOR: read_ready
    fn read_ready(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let (Some(protocol), buffered) = this.state.with(py, |s| {
            (s.protocol.as_ref().map(|p| p.clone_ref(py)), s.buffered)
        }) else {
            return Ok(());
        };
        let protocol = protocol.bind(py);
        if buffered {
            return Self::read_into_protocol_buffer(slf, protocol);
        }
        let received = READ_BUFFER.with(|buf| {
            let mut buf = buf.borrow_mut();
            recv_into(this.fd, &mut buf).map(|n| PyBytes::new(py, &buf[..n]))
        });
        match received {
            Err(e) if would_block(&e) => Ok(()),
            Err(e) => Self::fatal_error(slf, e.into(), "Fatal read error on socket transport"),
            Ok(data) if data.as_bytes().is_empty() => Self::on_eof(slf, protocol),
            Ok(data) => match protocol.call_method1(intern!(py, "data_received"), (data,)) {
                Ok(_) => Ok(()),
                Err(err) if is_fatal_to_loop(py, &err) => Err(err),
                Err(err) => Self::fatal_error(
                    slf,
                    err,
                    "Fatal error: protocol.data_received() call failed.",
                ),
            },
        }
    }
    // ANCHOR_END: read_ready

    fn read_into_protocol_buffer(
        slf: &Bound<'_, Self>,
        protocol: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let buf = match protocol
            .call_method1(intern!(py, "get_buffer"), (-1,))
            .and_then(|b| {
                let view = PyMemoryView::from(&b)?;
                if view.len()? == 0 {
                    Err(PyRuntimeError::new_err(
                        "get_buffer() returned an empty buffer",
                    ))
                } else {
                    Ok(b)
                }
            }) {
            Ok(buf) => buf,
            Err(err) if is_fatal_to_loop(py, &err) => return Err(err),
            Err(err) => {
                return Self::fatal_error(
                    slf,
                    err,
                    "Fatal error: protocol.get_buffer() call failed.",
                )
            }
        };
        let received = {
            let view = pyo3::buffer::PyBuffer::<u8>::get(&buf)?;
            if view.readonly() {
                return Self::fatal_error(
                    slf,
                    PyTypeError::new_err("get_buffer() returned a read-only buffer"),
                    "Fatal error: protocol.get_buffer() call failed.",
                );
            }
            // safety: the buffer is writable and C-contiguous bytes (u8) held
            // alive by `view` for the duration of the call.
            let slice = unsafe {
                std::slice::from_raw_parts_mut(view.buf_ptr() as *mut u8, view.len_bytes())
            };
            recv_into(slf.get().fd, slice)
        };
        match received {
            Err(e) if would_block(&e) => Ok(()),
            Err(e) => Self::fatal_error(slf, e.into(), "Fatal read error on socket transport"),
            Ok(0) => Self::on_eof(slf, protocol),
            Ok(n) => match protocol.call_method1(intern!(py, "buffer_updated"), (n,)) {
                Ok(_) => Ok(()),
                Err(err) if is_fatal_to_loop(py, &err) => Err(err),
                Err(err) => Self::fatal_error(
                    slf,
                    err,
                    "Fatal error: protocol.buffer_updated() call failed.",
                ),
            },
        }
    }

    fn on_eof(slf: &Bound<'_, Self>, protocol: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let keep_open = match protocol
            .call_method0(intern!(py, "eof_received"))
            .and_then(|r| r.is_truthy())
        {
            Ok(keep) => keep,
            Err(err) if is_fatal_to_loop(py, &err) => return Err(err),
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
            let r = send_now(this.fd, &s.buffer[s.sent..]);
            if let Ok(n) = r {
                s.sent += n;
                if s.sent == s.buffer.len() {
                    s.buffer.clear();
                    s.sent = 0;
                } else if s.sent > s.buffer.len() / 2 {
                    s.buffer.drain(..s.sent);
                    s.sent = 0;
                }
            }
            Some(r)
        });
        match result {
            None => Ok(()),
            Some(Err(e)) if would_block(&e) => Ok(()),
            Some(Err(e)) => {
                this.state.with(py, |s| {
                    s.buffer.clear();
                    s.sent = 0;
                });
                Self::update_watch(slf)?;
                let err: PyErr = e.into();
                let waiter = this
                    .state
                    .with(py, |s| s.empty_waiter.as_ref().map(|w| w.clone_ref(py)));
                let value = err.value(py).clone().into_any().unbind();
                Self::fatal_error(slf, err, "Fatal write error on socket transport")?;
                if let Some(waiter) = waiter {
                    waiter.call_method1(py, intern!(py, "set_exception"), (value,))?;
                }
                Ok(())
            }
            Some(Ok(_)) => {
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
                        // safety: shutting down our own socket's sending side.
                        unsafe { libc::shutdown(this.fd, libc::SHUT_WR) };
                    }
                }
                Ok(())
            }
        }
    }

    fn maybe_pause_protocol(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let pause = slf.get().state.with(py, |s| {
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
        let py = slf.py();
        let resume = slf.get().state.with(py, |s| {
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
        match protocol.call_method0(py, method) {
            Ok(_) => Ok(()),
            Err(err) if is_fatal_to_loop(py, &err) => Err(err),
            Err(err) => Self::report(slf, &err, message),
        }
    }

    fn report(slf: &Bound<'_, Self>, err: &PyErr, message: &str) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let Some(event_loop) = this.loop_of(py) else {
            return Ok(());
        };
        let context = PyDict::new(py);
        context.set_item("message", message)?;
        context.set_item("exception", err.value(py))?;
        context.set_item("transport", slf)?;
        context.set_item("protocol", this.protocol_of(py))?;
        event_loop.call_method1(py, intern!(py, "call_exception_handler"), (context,))?;
        Ok(())
    }

    /// asyncio's `_fatal_error`: OS errors are expected (a peer went away) and
    /// logged only in debug mode; others go to the exception handler. Then the
    /// connection is closed at once.
    fn fatal_error(slf: &Bound<'_, Self>, err: PyErr, message: &str) -> PyResult<()> {
        let py = slf.py();
        if err.is_instance_of::<pyo3::exceptions::PyOSError>(py) {
            let debug = match slf.get().loop_of(py) {
                Some(l) => l
                    .call_method0(py, intern!(py, "get_debug"))?
                    .is_truthy(py)?,
                None => false,
            };
            if debug {
                let kwargs = PyDict::new(py);
                kwargs.set_item("exc_info", err.value(py))?;
                logger(py)?.call_method(
                    intern!(py, "debug"),
                    ("%r: %s", slf, message),
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
            s.buffer.clear();
            s.sent = 0;
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
        event_loop.call_method1(py, intern!(py, "call_soon"), (callback, exc))?;
        Ok(())
    }

    fn connection_lost_now(slf: &Bound<'_, Self>, exc: Option<Py<PyAny>>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        Self::watch(slf, 0)?;
        let (protocol, sock, server) = this.state.with(py, |s| {
            s.event_loop = None;
            (s.protocol.take(), s.sock.take(), s.server.take())
        });
        let lost = match &protocol {
            Some(p) => p
                .call_method1(py, intern!(py, "connection_lost"), (exc,))
                .map(drop),
            None => Ok(()),
        };
        if let Some(sock) = sock {
            sock.call_method0(py, intern!(py, "close"))?;
        }
        if let Some(server) = server {
            server.call_method0(py, intern!(py, "_detach"))?;
        }
        lost
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
}

#[pymethods]
impl TcpTransport {
    /// A transport over the connected, non-blocking socket `sock`, for
    /// `protocol`. The loop's `_make_socket_transport` makes it and starts it.
    #[new]
    #[pyo3(signature = (event_loop, sock, protocol, extra, server=None))]
    fn new(
        event_loop: Bound<'_, PyAny>,
        sock: Bound<'_, PyAny>,
        protocol: Bound<'_, PyAny>,
        extra: Bound<'_, PyDict>,
        server: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let py = sock.py();
        let fd: i32 = sock.call_method0(intern!(py, "fileno"))?.extract()?;
        let buffered = is_buffered_protocol(&protocol)?;
        Ok(TcpTransport {
            fd,
            state: GilCell::new(State {
                event_loop: Some(event_loop.unbind()),
                sock: Some(sock.unbind()),
                protocol: Some(protocol.unbind()),
                buffered,
                extra: extra.unbind(),
                server: server.filter(|s| !s.is_none()).map(Bound::unbind),
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

    /// `loop.start_tls()` may wrap this transport.
    #[classattr]
    fn _start_tls_compatible() -> bool {
        true
    }

    /// `loop.sendfile()` tries `os.sendfile` on the socket first, as on
    /// asyncio's socket transport.
    #[classattr]
    fn _sendfile_compatible(py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(py
            .import("asyncio.constants")?
            .getattr("_SendfileMode")?
            .getattr("TRY_NATIVE")?
            .unbind())
    }

    /// A future that completes once the write buffer is empty; `write` is
    /// refused until [`_reset_empty_waiter`]. Used by `loop.sendfile()`.
    fn _make_empty_waiter(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let this = slf.get();
        if this.state.with(py, |s| s.empty_waiter.is_some()) {
            return Err(PyRuntimeError::new_err("Empty waiter is already set"));
        }
        let event_loop = this
            .loop_of(py)
            .ok_or_else(|| PyRuntimeError::new_err("the transport is closed"))?;
        let waiter = event_loop.call_method0(py, intern!(py, "create_future"))?;
        let empty = this.state.with(py, |s| {
            s.empty_waiter = Some(waiter.clone_ref(py));
            s.pending() == 0
        });
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

    /// The loop, until the connection is lost (asyncio's `_loop`).
    #[getter]
    fn _loop(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.loop_of(py)
    }

    /// The socket's descriptor.
    #[getter]
    fn _sock_fd(&self) -> i32 {
        self.fd
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

    /// Queues `data` (bytes-like) for sending; sends at once what it can.
    fn write(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        if !(data.is_instance_of::<PyBytes>()
            || data.is_instance_of::<PyByteArray>()
            || data.is_instance_of::<PyMemoryView>())
        {
            return Err(PyTypeError::new_err(format!(
                "data argument must be a bytes-like object, not {:?}",
                data.get_type().name()?.to_string()
            )));
        }
        let this = slf.get();
        let (eof, conn_lost, sending_file) = this
            .state
            .with(py, |s| (s.eof, s.conn_lost, s.empty_waiter.is_some()));
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
        let view = pyo3::buffer::PyBuffer::<u8>::get(data)?;
        let copied: Vec<u8>;
        let bytes: &[u8] = if view.is_c_contiguous() {
            // safety: a C-contiguous buffer of bytes, kept alive (and its
            // exporter unable to resize it) by `view` until the end of this
            // call; only read, with the GIL held, and no Python code runs
            // while the slice is in use.
            unsafe { std::slice::from_raw_parts(view.buf_ptr() as *const u8, view.len_bytes()) }
        } else {
            copied = view.to_vec(py)?;
            &copied
        };
        if bytes.is_empty() {
            return Ok(());
        }
        if conn_lost > 0 {
            let count = this.state.with(py, |s| {
                s.conn_lost += 1;
                s.conn_lost
            });
            if count > LOG_THRESHOLD_FOR_CONNLOST_WRITES {
                logger(py)?
                    .call_method1(intern!(py, "warning"), ("socket.send() raised exception.",))?;
            }
            return Ok(());
        }
        let outcome = this.state.with(py, |s| {
            let mut rest = bytes;
            if s.pending() == 0 {
                match send_now(this.fd, rest) {
                    Ok(n) => rest = &rest[n..],
                    Err(e) if would_block(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            s.buffer.extend_from_slice(rest);
            Ok(!rest.is_empty())
        });
        match outcome {
            Err(e) => Self::fatal_error(slf, e.into(), "Fatal write error on socket transport"),
            Ok(false) => Ok(()),
            Ok(true) => {
                Self::update_watch(slf)?;
                Self::maybe_pause_protocol(slf)
            }
        }
    }

    /// Writes each item of `list_of_data`.
    fn writelines(slf: &Bound<'_, Self>, list_of_data: &Bound<'_, PyAny>) -> PyResult<()> {
        for item in list_of_data.try_iter()? {
            Self::write(slf, &item?)?;
        }
        Ok(())
    }

    /// Closes the sending side once the buffer is flushed.
    fn write_eof(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        let shut_now = this.state.with(slf.py(), |s| {
            if s.closing || s.eof {
                return false;
            }
            s.eof = true;
            s.pending() == 0
        });
        if shut_now {
            // safety: shutting down our own socket's sending side.
            unsafe { libc::shutdown(this.fd, libc::SHUT_WR) };
        }
        Ok(())
    }

    /// True: TCP can half-close.
    fn can_write_eof(&self) -> bool {
        true
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
            let was = !s.closing && !s.paused;
            s.paused = true;
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
        let extra = self.state.with(py, |s| s.extra.clone_ref(py));
        match extra.bind(py).get_item(name)? {
            Some(v) => Ok(v.unbind()),
            None => Ok(default.unwrap_or_else(|| py.None())),
        }
    }

    /// Replaces the protocol.
    fn set_protocol(&self, protocol: Bound<'_, PyAny>) -> PyResult<()> {
        let py = protocol.py();
        let buffered = is_buffered_protocol(&protocol)?;
        self.state.with(py, |s| {
            s.protocol = Some(protocol.unbind());
            s.buffered = buffered;
        });
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
            (None, Some(l)) => 4 * l,
        };
        let low = low.unwrap_or(high / 4);
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
            .with(py, |s| (s.sock.is_none(), s.closing, s.pending()));
        let status = if closed {
            " closed"
        } else if closing {
            " closing"
        } else {
            ""
        };
        format!("<TcpTransport{status} fd={} bufsize={pending}>", self.fd)
    }
}

fn is_buffered_protocol(protocol: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = protocol.py();
    static BUFFERED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let cls = BUFFERED.import(py, "asyncio.protocols", "BufferedProtocol")?;
    protocol.is_instance(cls)
}
