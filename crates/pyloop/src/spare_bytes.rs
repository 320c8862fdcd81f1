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
//!
//! The read buffer belongs to the loop as well, beside the kept object. It
//! was a thread-local, and in a shared library every use of one is a call
//! into the dynamic linker (`__tls_get_addr`, about 11 instructions a call,
//! with the `RefCell` around it), for a buffer the loop's one thread could as
//! well hold itself: the protocol echo's round trip (two reads) fell by 56
//! instructions on moving it, part of which was the library's layout (the
//! book's "What later fixes cost"). The loop lets go of both when it closes.

use std::alloc::{self, Layout};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use pyo3::exceptions::PyMemoryError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::gil_cell::GilCell;
use crate::transport::recv_into;

/// The longest `bytes` kept for reuse.
const LONGEST_KEPT: usize = 16 * 1024;

/// The most a single read asks for, as asyncio's `max_size`.
const MAX_READ: usize = 256 * 1024;

/// The boundary the read buffer starts on: a page.
const PAGE: usize = 4096;

// ANCHOR: read_buffer
/// Where `recv` lands before the bytes become a `bytes` object: `MAX_READ`
/// bytes that start on a page boundary. A block this large comes from
/// `mmap` with `malloc`'s 16-byte header in front, so it starts 16 bytes
/// into a page, and there the kernel's copy of a 100 KB read ran two to three
/// times slower than into a page-aligned buffer on this machine
/// (`benchmarks/io/recv_alignment.py`; the book's I/O chapter).
/// Allocated by the loop's first read, so that a failed allocation is a
/// `MemoryError` for that read rather than an abort.
#[derive(Default)]
struct ReadBuffer {
    storage: Vec<u8>,
    start: usize,
}

impl ReadBuffer {
    /// The buffer, or `MemoryError` if there is no memory for it yet.
    fn as_mut_slice(&mut self) -> PyResult<&mut [u8]> {
        if self.storage.is_empty() {
            self.storage =
                zeroed_bytes(MAX_READ + PAGE).ok_or_else(|| PyMemoryError::new_err(()))?;
            self.start = self.storage.as_ptr().align_offset(PAGE).min(PAGE);
        }
        Ok(&mut self.storage[self.start..self.start + MAX_READ])
    }
}

/// `len` zero bytes, or `None` if there is no memory for them. Through the
/// allocator's zeroed allocation (`calloc`): when it maps fresh pages from
/// the kernel, zero already, it writes nothing, and only the pages reads
/// reach become resident; writing the zeros ourselves made all of them so.
fn zeroed_bytes(len: usize) -> Option<Vec<u8>> {
    let layout = Layout::array::<u8>(len).ok()?;
    // safety: `layout` has a non-zero size (the callers ask for more than a
    // page). The block, if any, holds `len` initialised (zero) bytes and was
    // allocated by the global allocator with the layout a `Vec<u8>` of
    // capacity `len` uses, so the `Vec` may own and free it.
    unsafe {
        let block = alloc::alloc_zeroed(layout);
        (!block.is_null()).then(|| Vec::from_raw_parts(block, len, len))
    }
}
// ANCHOR_END: read_buffer

// ANCHOR: spare_bytes
/// What a loop keeps for its transports' reads: the read buffer, and one
/// `bytes` object for the next read.
pub(crate) struct SpareBytes {
    kept: GilCell<Option<Py<PyBytes>>>,
    buffer: GilCell<ReadBuffer>,
}

impl SpareBytes {
    /// Nothing kept yet, and no read buffer.
    pub(crate) fn new() -> Self {
        SpareBytes {
            kept: GilCell::new(None),
            buffer: GilCell::new(ReadBuffer::default()),
        }
    }

    /// Reads from `fd` (at most `MAX_READ` bytes) and returns what came as a
    /// `bytes` object; empty at end of file. With a kept object, the read
    /// fills it first and the read buffer after it; a read of exactly its
    /// length returns it, any other is copied into a new object and the kept
    /// one stays kept. The outer error is the read's; the inner one is
    /// `MemoryError`, when there is no memory for the read buffer (nothing is
    /// read) or for the new object (what came is then lost); the caller
    /// closes the connection, as asyncio does.
    pub(crate) fn receive<'py>(
        &self,
        py: Python<'py>,
        fd: &OwnedFd,
    ) -> io::Result<PyResult<Bound<'py, PyBytes>>> {
        // No Python code runs under this borrow: a system call, and `bytes`
        // objects made and freed.
        self.buffer.with(py, |buffer| match buffer.as_mut_slice() {
            Ok(scratch) => self.receive_into(py, fd, scratch),
            Err(no_memory) => Ok(Err(no_memory)),
        })
    }

    fn receive_into<'py>(
        &self,
        py: Python<'py>,
        fd: &OwnedFd,
        scratch: &mut [u8],
    ) -> io::Result<PyResult<Bound<'py, PyBytes>>> {
        let kept = self.kept.with(py, Option::take).map(|b| b.into_bound(py));
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

    /// Lets go of the read buffer and the kept `bytes` (the loop is closed);
    /// a later read would make them again.
    pub(crate) fn release(&self, py: Python<'_>) {
        let kept = self.kept.with(py, Option::take);
        let buffer = self.buffer.with(py, std::mem::take);
        // A `bytes` object runs no Python code when it is freed.
        drop((kept, buffer));
    }

    /// Keeps `bytes` for the next read if nothing but the caller refers to it
    /// (the protocol did not keep it) and it is short; otherwise lets it go.
    pub(crate) fn keep(&self, bytes: Bound<'_, PyBytes>) {
        let py = bytes.py();
        // Lengths 0 and 1 are CPython's shared singletons: never kept.
        if !(2..=LONGEST_KEPT).contains(&bytes.as_bytes().len()) || !is_unshared(&bytes) {
            return;
        }
        let replaced = self.kept.with(py, |kept| kept.replace(bytes.unbind()));
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

/// A scattered read into `first`, then `second`; `Ok(0)` is end of file.
/// `recvmsg` with `MSG_DONTWAIT` rather than `readv`, so that it never blocks
/// whatever mode the descriptor is in (see `transport::send_now`).
fn readv(fd: &OwnedFd, first: &mut [u8], second: &mut [u8]) -> io::Result<usize> {
    let mut parts = [
        libc::iovec {
            iov_base: first.as_mut_ptr().cast(),
            iov_len: first.len(),
        },
        libc::iovec {
            iov_base: second.as_mut_ptr().cast(),
            iov_len: second.len(),
        },
    ];
    // safety: an all-zero msghdr is valid (no name, no control data).
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = parts.as_mut_ptr();
    message.msg_iovlen = parts.len() as _;
    // safety: both slices are live and writable for the call, and the kernel
    // writes at most `iov_len` bytes into each; `message` points only at
    // `parts`, which outlives the call; `fd` is open.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut message, libc::MSG_DONTWAIT) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}
