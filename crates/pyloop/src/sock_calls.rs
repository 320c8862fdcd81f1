//! The first attempt of the socket methods (`sock_recv`, `sock_recv_into`,
//! `sock_sendall`) as one system call that reports "would block" as `None`
//! (or 0 bytes sent) instead of raising.
//!
//! asyncio tries `sock.recv(n)` first and catches `BlockingIOError`: on a
//! socket that is usually not ready (a server waiting for the next request),
//! every call makes and throws away an exception object and its traceback.
//! These functions make the same system call on the socket's descriptor, with
//! the same flags and the same errors for everything else (`OSError` and its
//! subclasses, by errno, as the socket module raises them), retrying after a
//! signal as the socket module does (PEP 475).
//!
//! They are used only for objects whose type is exactly `socket.socket`, so a
//! subclass that overrides `recv` or `send` keeps its own method. The
//! descriptor is read from the socket object for each call and used at once,
//! with no Python code in between: it cannot be closed and reused meanwhile.

use std::ffi::c_int;
use std::io;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::{ffi, intern};

use crate::buffer::ContiguousBuffer;

extern "C" {
    /// CPython's way to shrink a bytes object that nobody else has seen yet
    /// (what `socket.recv` itself does after reading into a new one).
    fn _PyBytes_Resize(bytes: *mut *mut ffi::PyObject, newsize: ffi::Py_ssize_t) -> c_int;
}

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
            _ => return Err(err.into()),
        }
    }
}

fn fileno(sock: &Bound<'_, PyAny>) -> PyResult<i32> {
    sock.call_method0(intern!(sock.py(), "fileno"))?.extract()
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
        || unsafe { libc::recv(fd, buf.cast(), n as usize, 0) },
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
    retry_interrupted(
        py,
        // safety: reads at most `len` bytes into the exported buffer, which
        // `view` keeps alive and no Python code can touch during the call.
        || unsafe { libc::recv(fd, ptr.cast(), len, 0) },
        |got| got,
    )
}

/// `sock.send(data)`: the bytes sent, 0 if it would block.
#[pyfunction]
pub(crate) fn sock_send_nowait(
    sock: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
) -> PyResult<usize> {
    let py = sock.py();
    let view = ContiguousBuffer::readable(data)?;
    let fd = fileno(sock)?;
    let bytes = view.as_slice();
    Ok(retry_interrupted(
        py,
        // safety: sends from the exported buffer, alive for the call.
        || unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), 0) },
        |sent| sent,
    )?
    .unwrap_or(0))
}
