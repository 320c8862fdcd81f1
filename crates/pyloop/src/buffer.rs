//! Borrowing the bytes of a Python object through the buffer protocol, the way
//! the socket module does, so that a transport reads into and writes from
//! exactly the memory the object exports and nothing else.
//!
//! `pyo3::buffer::PyBuffer<u8>` asks for the full buffer (format, shape,
//! strides) and then treats it as `len` bytes from `buf`: right for a plain
//! `bytearray`, wrong for a view that is not C-contiguous. A reversed view
//! (`memoryview(b)[16:32][::-1]`) starts at its *last* byte, so writing `len`
//! bytes from `buf` runs past the end of the view into whatever follows it; a
//! strided view gets the data in the wrong bytes. And a view cast to format
//! `'i'` is refused for not being `u8`, though a socket takes it.
//!
//! [`ContiguousBuffer`] asks the exporter for what a socket call needs and no
//! more: `PyBUF_SIMPLE` to read (`socket.send`'s `y*`), `PyBUF_WRITABLE` to
//! write into (`socket.recv_into`'s `w*`). Without `PyBUF_STRIDES` an exporter
//! must either hand out one C-contiguous block or refuse, so a non-contiguous
//! view is refused, as asyncio refuses it; the format does not matter.

use std::cell::Cell;
use std::ffi::c_int;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::pin::Pin;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::{ffi, PyErr};

thread_local! {
    /// One released `Py_buffer` box kept for the thread's next export: every
    /// transport write and socket call borrows a buffer, and a box from the
    /// allocator each time (zeroed, then freed) cost more than the rest of the
    /// borrow.
    static SPARE_VIEW: Cell<Option<Box<ffi::Py_buffer>>> = const { Cell::new(None) };
}

/// A buffer borrowed from a Python object: one C-contiguous block of
/// [`len`](Self::len) bytes, released when dropped.
///
/// No Python code may run while the bytes are in use: an exporter must not
/// resize or free the memory while a buffer is exported (CPython's `bytearray`
/// raises `BufferError` if asked to), but the bytes themselves could be changed
/// by Python code. Holders use the slice for one system call, then drop it.
pub(crate) struct ContiguousBuffer<'py> {
    /// Boxed and pinned: an exporter may keep pointers into its `Py_buffer`.
    /// The box goes back to the thread's spare slot when the export is
    /// released (see [`SPARE_VIEW`]).
    view: ManuallyDrop<Pin<Box<ffi::Py_buffer>>>,
    _attached: PhantomData<Python<'py>>,
}

impl<'py> ContiguousBuffer<'py> {
    // ANCHOR: acquire
    fn acquire(obj: &Bound<'py, PyAny>, flags: c_int) -> PyResult<Self> {
        let mut view = match SPARE_VIEW.take() {
            Some(mut spare) => {
                *spare = ffi::Py_buffer::new();
                Box::into_pin(spare)
            }
            None => Box::pin(ffi::Py_buffer::new()),
        };
        // safety: `view` is a valid, writable Py_buffer that outlives the call;
        // on success we own the export and release it once, in `drop`.
        let rc = unsafe {
            ffi::PyObject_GetBuffer(obj.as_ptr(), view.as_mut().get_unchecked_mut(), flags)
        };
        if rc != 0 {
            return Err(PyErr::fetch(obj.py()));
        }
        let buffer = ContiguousBuffer {
            view: ManuallyDrop::new(view),
            _attached: PhantomData,
        };
        // Exporters honour the flags, but a careless one might not: check the
        // one property the slice relies on.
        // safety: the view was filled in by a successful PyObject_GetBuffer.
        let contiguous = unsafe { ffi::PyBuffer_IsContiguous(&**buffer.view, b'C' as _) } != 0;
        if !contiguous || buffer.view.len < 0 || (buffer.view.buf.is_null() && buffer.view.len > 0)
        {
            return Err(PyTypeError::new_err(format!(
                "{} exported a buffer that is not one contiguous block",
                obj.get_type().name()?
            )));
        }
        Ok(buffer)
    }
    // ANCHOR_END: acquire

    /// The bytes of `obj`, to write into (`socket.recv_into` accepts the same
    /// objects). A read-only or non-contiguous object raises `TypeError`, as
    /// `recv_into` does.
    pub(crate) fn writable(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        Self::acquire(obj, ffi::PyBUF_WRITABLE).map_err(|err| {
            let kind = obj
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default();
            let reason = err.to_string();
            PyTypeError::new_err(format!(
                "the buffer must be a writable, C-contiguous bytes-like object, not {kind} ({reason})"
            ))
        })
    }

    /// The length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.view.len as usize
    }

    /// The bytes, to read.
    pub(crate) fn as_slice(&self) -> &[u8] {
        if self.len() == 0 {
            return &[];
        }
        // safety: the exporter guarantees `len` readable bytes at `buf`, one
        // contiguous block (checked in `acquire`), alive until release.
        unsafe { std::slice::from_raw_parts(self.view.buf as *const u8, self.len()) }
    }

    /// The bytes, to write into. Only for buffers from [`writable`](Self::writable).
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        debug_assert_eq!(self.view.readonly, 0, "as_mut_slice on a read-only buffer");
        if self.len() == 0 || self.view.readonly != 0 {
            return &mut [];
        }
        // safety: a writable export (PyBUF_WRITABLE was granted, readonly is 0)
        // of `len` contiguous bytes, alive until release, and only this value
        // hands out a slice of it.
        unsafe { std::slice::from_raw_parts_mut(self.view.buf as *mut u8, self.len()) }
    }
}

impl Drop for ContiguousBuffer<'_> {
    fn drop(&mut self) {
        // safety: releases the export taken in `acquire`, exactly once, with the
        // interpreter attached (the 'py lifetime proves it).
        unsafe { ffi::PyBuffer_Release(self.view.as_mut().get_unchecked_mut()) }
        // safety: `view` is not used again; the released struct holds nothing.
        let view = unsafe { ManuallyDrop::take(&mut self.view) };
        SPARE_VIEW.set(Some(Pin::into_inner(view)));
    }
}

// ANCHOR: readable_buffer
/// The bytes of an object, to read (`socket.send` accepts the same objects):
/// an exact `bytes` in place, anything else exported as a [`ContiguousBuffer`].
///
/// A `bytes` object is immutable and stays alive while borrowed, so it needs
/// no export: asking for one, filling in the `Py_buffer` and releasing it was
/// a fifth of a protocol write's instructions. A subclass of `bytes` is
/// exported like any other object: since CPython 3.12 a class may define what
/// its buffer is.
pub(crate) enum ReadableBuffer<'a, 'py> {
    /// An exact `bytes`, read in place.
    Bytes(&'a Bound<'py, PyBytes>),
    /// Any other bytes-like object, through the buffer protocol.
    Exported(ContiguousBuffer<'py>),
}

impl<'a, 'py> ReadableBuffer<'a, 'py> {
    /// The bytes of `obj`: one C-contiguous block, or the error
    /// `socket.send` raises for it.
    pub(crate) fn of(obj: &'a Bound<'py, PyAny>) -> PyResult<Self> {
        match obj.cast_exact::<PyBytes>() {
            Ok(bytes) => Ok(ReadableBuffer::Bytes(bytes)),
            Err(_) => {
                ContiguousBuffer::acquire(obj, ffi::PyBUF_SIMPLE).map(ReadableBuffer::Exported)
            }
        }
    }

    /// The bytes, to read.
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            ReadableBuffer::Bytes(bytes) => bytes.as_bytes(),
            ReadableBuffer::Exported(view) => view.as_slice(),
        }
    }

    /// The length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.as_slice().len()
    }
}
// ANCHOR_END: readable_buffer
