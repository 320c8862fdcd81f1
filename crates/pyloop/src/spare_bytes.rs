//! The `bytes` a native transport hands to `data_received`, made without
//! `malloc`, and without copying, when the last one came back unused.
//!
//! Every read of a `Protocol` becomes a new `bytes` object, and a 1 KB one is
//! too big for CPython's small-object allocator: it goes to the C library's
//! `malloc` and `free`, about 500 instructions a read in the protocol echo
//! (callgrind, `benchmarks/profile/per_function.py`), and the bytes are copied
//! once more, from the buffer `recv` filled into the object. Most protocols do
//! not keep the object: they parse it, copy it into a buffer of their own, or
//! write it on. When `data_received` returns and the loop holds the only
//! reference left, nobody else can ever see the object again, so the loop
//! keeps it, and the next read goes straight into it (`readv`: into the kept
//! object first, then on into the read buffer). If the read has exactly its
//! length, the object is handed over as it is: no allocation and no copy.
//! CPython's own `_PyBytes_Resize` relies on the same fact: an object with
//! one reference belongs to whoever holds that reference.
//!
//! The kept object belongs to the loop, not to a connection, so a server with
//! many connections keeps one, and only a short one (`LONGEST_KEPT`): a long
//! read is dominated by its copies, and lands faster in the page-aligned read
//! buffer than in an object's unaligned storage (the I/O chapter).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::gil_cell::GilCell;
use crate::transport::recv_into;

/// The longest `bytes` kept for reuse.
const LONGEST_KEPT: usize = 16 * 1024;

// ANCHOR: spare_bytes
/// One `bytes` object a loop keeps for its transports' next read.
pub(crate) struct SpareBytes(GilCell<Option<Py<PyBytes>>>);

impl SpareBytes {
    /// Nothing kept yet.
    pub(crate) fn new() -> Self {
        SpareBytes(GilCell::new(None))
    }

    /// Reads from `fd` (at most `scratch.len()` bytes) and returns what came
    /// as a `bytes` object; empty at end of file. With a kept object, the
    /// read fills it first and `scratch` after it; a read of exactly its
    /// length returns it, any other is copied into a new object and the kept
    /// one stays kept. The outer error is the read's; the inner one is
    /// `MemoryError`, when there is no memory for the new object (what came
    /// is then lost, and the caller closes the connection, as asyncio does).
    pub(crate) fn receive<'py>(
        &self,
        py: Python<'py>,
        fd: &OwnedFd,
        scratch: &mut [u8],
    ) -> io::Result<PyResult<Bound<'py, PyBytes>>> {
        let kept = self.0.with(py, Option::take).map(|b| b.into_bound(py));
        let Some(kept) = kept.filter(|b| is_unshared(b) && b.as_bytes().len() <= scratch.len())
        else {
            let n = recv_into(fd, scratch)?;
            return Ok(bytes_of(py, &scratch[..n], &[]));
        };
        let len = kept.as_bytes().len();
        // safety: `kept` is an exact `bytes` object whose only reference is
        // ours (checked above), so no other code can see its contents change,
        // and no Python code runs until the slice is gone; its storage holds
        // `len` bytes before the trailing NUL, which stays.
        let storage = unsafe {
            std::slice::from_raw_parts_mut(ffi::PyBytes_AsString(kept.as_ptr()).cast::<u8>(), len)
        };
        let room = scratch.len() - len;
        let n = match readv(fd, storage, &mut scratch[..room]) {
            Ok(n) => n,
            Err(e) => {
                self.keep(kept);
                return Err(e);
            }
        };
        if n == len {
            // safety: as above; the contents changed, so the cached hash is
            // reset, as `_PyBytes_Resize` resets it.
            #[allow(deprecated)]
            unsafe {
                (*kept.as_ptr().cast::<ffi::PyBytesObject>()).ob_shash = -1;
            }
            return Ok(Ok(kept));
        }
        let bytes = if n < len {
            bytes_of(py, &kept.as_bytes()[..n], &[])
        } else {
            bytes_of(py, kept.as_bytes(), &scratch[..n - len])
        };
        self.keep(kept);
        Ok(bytes)
    }

    /// Keeps `bytes` for the next read if nothing but the caller refers to it
    /// (the protocol did not keep it) and it is short; otherwise lets it go.
    pub(crate) fn keep(&self, bytes: Bound<'_, PyBytes>) {
        let py = bytes.py();
        // Lengths 0 and 1 are CPython's shared singletons: never kept.
        if !(2..=LONGEST_KEPT).contains(&bytes.as_bytes().len()) || !is_unshared(&bytes) {
            return;
        }
        let replaced = self.0.with(py, |kept| kept.replace(bytes.unbind()));
        // A `bytes` object runs no Python code when it is freed.
        drop(replaced);
    }
}
// ANCHOR_END: spare_bytes

/// A new `bytes` object holding `head` then `tail`, or `MemoryError` if there
/// is no memory for it (PyO3's `PyBytes::new` would panic).
fn bytes_of<'py>(py: Python<'py>, head: &[u8], tail: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let len = head.len() + tail.len();
    // safety: attached; with a null source CPython allocates `len` bytes
    // (plus its NUL) and leaves them to us, or returns NULL with MemoryError
    // set. The object is ours alone until both copies have filled it.
    unsafe {
        let object = ffi::PyBytes_FromStringAndSize(std::ptr::null(), len as ffi::Py_ssize_t);
        let object = Bound::from_owned_ptr_or_err(py, object)?;
        let storage = ffi::PyBytes_AsString(object.as_ptr()).cast::<u8>();
        std::ptr::copy_nonoverlapping(head.as_ptr(), storage, head.len());
        std::ptr::copy_nonoverlapping(tail.as_ptr(), storage.add(head.len()), tail.len());
        Ok(object.cast_into_unchecked())
    }
}

/// True if `bytes` is an exact `bytes` object and the caller's reference is its only one.
fn is_unshared(bytes: &Bound<'_, PyBytes>) -> bool {
    // safety: `bytes` is a live object (we hold a reference), so reading its
    // reference count and type is sound.
    let (count, exact) = unsafe {
        (
            ffi::Py_REFCNT(bytes.as_ptr()),
            ffi::PyBytes_CheckExact(bytes.as_ptr()) != 0,
        )
    };
    count == 1 && exact
}

/// `readv(2)` into `first`, then `second`; `Ok(0)` is end of file.
fn readv(fd: &OwnedFd, first: &mut [u8], second: &mut [u8]) -> io::Result<usize> {
    let parts = [
        libc::iovec {
            iov_base: first.as_mut_ptr().cast(),
            iov_len: first.len(),
        },
        libc::iovec {
            iov_base: second.as_mut_ptr().cast(),
            iov_len: second.len(),
        },
    ];
    // safety: both slices are live and writable for the call, and the kernel
    // writes at most `iov_len` bytes into each; `fd` is open.
    let n = unsafe { libc::readv(fd.as_raw_fd(), parts.as_ptr(), 2) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}
