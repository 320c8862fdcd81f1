//! The system calls of the socket methods (`sock_recv`, `sock_recv_into`,
//! `sock_sendall`), each one call that reports "would block" as a value
//! instead of raising: the methods' first attempt, and the attempts the loop
//! makes for them when their descriptor is ready ([`SockOp`]).
//!
//! asyncio tries `sock.recv(n)` first and catches `BlockingIOError`: on a
//! socket that is usually not ready (a server waiting for the next request),
//! every call makes and throws away an exception object and its traceback.
//! These functions make the same system call on the socket's descriptor, with
//! the same errors for everything else (`OSError` and its subclasses, by
//! errno, as the socket module raises them), retrying after a signal as the
//! socket module does (PEP 475). One flag is added, `MSG_DONTWAIT`: the call
//! is made with the GIL held, so on a socket left in blocking mode a call that
//! waited would wait for a peer that may be a Python thread of this process,
//! which could then never run. With the flag it reports "would block" and the
//! loop waits for the descriptor instead.
//!
//! They are used only for objects whose type is exactly `socket.socket`, so a
//! subclass that overrides `recv` or `send` keeps its own method. The
//! descriptor is read from the socket object for each call and used at once,
//! with no Python code in between: it cannot be closed and reused meanwhile.

use std::ffi::c_int;
use std::io;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::pyclass::{PyTraverseError, PyVisit};
use pyo3::types::PyBytes;
use pyo3::{ffi, intern};

use crate::buffer::{ContiguousBuffer, ReadableBuffer};

extern "C" {
    /// CPython's way to shrink a bytes object that nobody else has seen yet
    /// (what `socket.recv` itself does after reading into a new one).
    fn _PyBytes_Resize(bytes: *mut *mut ffi::PyObject, newsize: ffi::Py_ssize_t) -> c_int;
}

// ANCHOR: os_error
/// `err` as the socket module raises it: `OSError(errno, strerror)`, which
/// CPython makes the subclass for that errno (`ConnectionResetError`, ...)
/// with `errno` and `strerror` set. PyO3's own conversion picks the class but
/// leaves `errno` as `None`, and code that handles socket errors reads it.
pub(crate) fn os_error(err: io::Error) -> PyErr {
    let Some(code) = err.raw_os_error() else {
        return err.into();
    };
    let text = io::Error::from_raw_os_error(code).to_string();
    let strerror = text.split(" (os error").next().unwrap_or(&text).to_owned();
    PyOSError::new_err((code, strerror))
}
// ANCHOR_END: os_error

/// The outcome of one system call, `Ok(None)` when it would block.
fn retry_interrupted<T>(
    py: Python<'_>,
    mut call: impl FnMut() -> isize,
    done: impl FnOnce(usize) -> T,
) -> PyResult<Option<T>> {
    loop {
        let n = call();
        if n >= 0 {
            return Ok(Some(done(n as usize)));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EAGAIN) => return Ok(None),
            #[allow(unreachable_patterns)] // EWOULDBLOCK is EAGAIN on Linux
            Some(libc::EWOULDBLOCK) => return Ok(None),
            // As the socket module (PEP 475): run the signal handlers, and
            // try again unless one of them raised.
            Some(libc::EINTR) => py.check_signals()?,
            _ => return Err(os_error(err)),
        }
    }
}

fn fileno(sock: &Bound<'_, PyAny>) -> PyResult<i32> {
    sock.call_method0(intern!(sock.py(), "fileno"))?.extract()
}

/// True if `sock` still has descriptor `fd`: a socket closed since has -1,
/// and its old number may belong to another socket by now.
pub(crate) fn holds_fd(sock: &Bound<'_, PyAny>, fd: i32) -> bool {
    fileno(sock).is_ok_and(|n| n == fd)
}

/// `sock.recv(n)`, or `None` if it would block.
#[pyfunction]
pub(crate) fn sock_recv_nowait<'py>(
    sock: &Bound<'py, PyAny>,
    n: isize,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let py = sock.py();
    if n < 0 {
        return Err(PyValueError::new_err("negative buffersize in recv"));
    }
    let fd = fileno(sock)?;
    if n == 0 {
        // As `socket.recv(0)`: empty at once, whether or not data waits.
        return Ok(Some(PyBytes::new(py, b"")));
    }
    // safety: attached; a new bytes object of `n` bytes, or NULL with an error.
    let mut bytes = unsafe { ffi::PyBytes_FromStringAndSize(std::ptr::null(), n) };
    if bytes.is_null() {
        return Err(PyErr::fetch(py));
    }
    // safety: `bytes` is ours alone and has room for `n` bytes.
    let buf = unsafe { ffi::PyBytes_AsString(bytes) };
    let received = retry_interrupted(
        py,
        // safety: reads at most `n` bytes into the new object's buffer.
        || unsafe { libc::recv(fd, buf.cast(), n as usize, libc::MSG_DONTWAIT) },
        |got| got,
    );
    match received {
        Ok(Some(got)) => {
            // safety: shrinking a bytes object nobody else holds, as
            // socket.recv does; on failure CPython frees it and sets an error.
            if unsafe { _PyBytes_Resize(&mut bytes, got as ffi::Py_ssize_t) } < 0 {
                return Err(PyErr::fetch(py));
            }
            // safety: a new reference, now of length `got`.
            Ok(Some(unsafe {
                Bound::from_owned_ptr(py, bytes).cast_into_unchecked()
            }))
        }
        other => {
            // safety: the reference we made above, not handed out.
            unsafe { ffi::Py_DECREF(bytes) };
            other.map(|_| None)
        }
    }
}

/// `sock.recv_into(buf)`, or `None` if it would block.
#[pyfunction]
pub(crate) fn sock_recv_into_nowait(
    sock: &Bound<'_, PyAny>,
    buf: &Bound<'_, PyAny>,
) -> PyResult<Option<usize>> {
    let py = sock.py();
    let mut view = ContiguousBuffer::writable(buf)?;
    let fd = fileno(sock)?;
    let slice = view.as_mut_slice();
    let (ptr, len) = (slice.as_mut_ptr(), slice.len());
    if len == 0 {
        // As `socket.recv_into` of an empty buffer: 0 at once.
        return Ok(Some(0));
    }
    retry_interrupted(
        py,
        // safety: reads at most `len` bytes into the exported buffer, which
        // `view` keeps alive and no Python code can touch during the call.
        || unsafe { libc::recv(fd, ptr.cast(), len, libc::MSG_DONTWAIT) },
        |got| got,
    )
}

/// One `sock.send(data)`: `None` if it sent all of `data`, else the count it
/// sent (0 if it would block).
#[pyfunction]
pub(crate) fn sock_sendall_nowait(
    sock: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
) -> PyResult<Option<usize>> {
    let view = ReadableBuffer::of(data)?;
    let sent = send_from(sock, view.as_slice())?;
    Ok((sent < view.len()).then_some(sent))
}

/// One `send` of `bytes` on `sock`'s descriptor: the count sent, 0 if it
/// would block.
fn send_from(sock: &Bound<'_, PyAny>, bytes: &[u8]) -> PyResult<usize> {
    let fd = fileno(sock)?;
    Ok(retry_interrupted(
        sock.py(),
        // safety: sends from `bytes`, borrowed for the call.
        || unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_DONTWAIT) },
        |sent| sent,
    )?
    .unwrap_or(0))
}

// ANCHOR: sock_op
/// What the loop does for a socket method waiting on a descriptor once the
/// descriptor is ready: the system call itself, so that the waiting coroutine
/// is resumed once, with the result (as asyncio's reader and writer callbacks
/// complete the method's future).
pub(crate) enum SockOp {
    /// No call: the future completes with `None` and the coroutine makes the
    /// call (`sock_accept`, `sock_connect`).
    Notify,
    /// `sock.recv(size)`; the result is the bytes.
    Recv { size: isize },
    /// `sock.recv_into(buf)`; the result is the count.
    RecvInto { buf: Py<PyAny> },
    /// Sends what is left of `data` (a memoryview, which keeps the exporter
    /// from resizing it meanwhile) from byte `sent`; the result is `None` once
    /// all of it is sent.
    SendRest { data: Py<PyAny>, sent: usize },
}
// ANCHOR_END: sock_op

impl SockOp {
    /// Makes the call on `sock`: `Some(result)` when the method is done,
    /// `None` when it would block (the caller waits again). The descriptor is
    /// read from `sock` now: a socket closed meanwhile fails with `EBADF` and
    /// never reaches a descriptor that was given to another socket.
    pub(crate) fn attempt(&mut self, sock: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        let py = sock.py();
        Ok(match self {
            SockOp::Notify => Some(py.None()),
            SockOp::Recv { size } => {
                sock_recv_nowait(sock, *size)?.map(|bytes| bytes.into_any().unbind())
            }
            SockOp::RecvInto { buf } => sock_recv_into_nowait(sock, buf.bind(py))?
                .map(|count| count.into_pyobject(py).map(|n| n.into_any().unbind()))
                .transpose()?,
            SockOp::SendRest { data, sent } => {
                let view = ReadableBuffer::of(data.bind(py))?;
                let rest = view.as_slice().get(*sent..).unwrap_or_default();
                *sent += send_from(sock, rest)?;
                (*sent >= view.len()).then(|| py.None())
            }
        })
    }

    /// The result of a wait whose call is left to the coroutine (callbacks
    /// were queued ahead of the readiness, `complete_waits`): `None` for a
    /// read, which otherwise completes with bytes or a count, and for a send
    /// the number of bytes sent so far, where a finished send gives `None`.
    pub(crate) fn not_made(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(match self {
            SockOp::Notify | SockOp::Recv { .. } | SockOp::RecvInto { .. } => py.None(),
            SockOp::SendRest { sent, .. } => sent.into_pyobject(py)?.into_any().unbind(),
        })
    }

    /// Reports the objects the operation holds to the collector.
    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        match self {
            SockOp::Notify | SockOp::Recv { .. } => Ok(()),
            SockOp::RecvInto { buf } => visit.call(buf),
            SockOp::SendRest { data, .. } => visit.call(data),
        }
    }
}
