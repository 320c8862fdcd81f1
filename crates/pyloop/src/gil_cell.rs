//! State that only the thread attached to the interpreter may touch.

use std::cell::RefCell;

use pyo3::Python;

#[cfg(Py_GIL_DISABLED)]
compile_error!("pyloop relies on the GIL to guard its loop-thread state; free-threaded CPython is not supported yet");

// ANCHOR: gil_cell
/// A cell whose contents are reached only with a [`Python`] token.
///
/// With the GIL, at most one thread is attached to the interpreter at a time,
/// so a token proves exclusive access across threads. Within the thread, the
/// `RefCell` guards against re-entry.
///
/// **The rule for closures passed to [`with`](Self::with)**: they run no Python
/// code. No call into Python, no drop of a Python object that could be its last
/// reference (its destructor may run anything), and no allocation of an object
/// the cyclic collector tracks (a dict, a tuple, a pyclass: allocating one may
/// start a collection, which runs finalizers). Take what is to be dropped or
/// called *out* of the cell and do it after `with` returns. Kept, the rule means
/// the `RefCell` is never found borrowed; broken, the re-entrant access panics,
/// which would reach Python as an exception, never as aliased memory.
pub(crate) struct GilCell<T>(RefCell<T>);
// ANCHOR_END: gil_cell

// safety: every access goes through `with`, which takes a `Python` token; with
// the GIL (free-threaded builds are refused above) only one thread holds a token
// at a time, so the `RefCell` is never touched by two threads at once. `T: Send`
// because the value may be reached from whichever thread holds the GIL.
unsafe impl<T: Send> Sync for GilCell<T> {}

impl<T> GilCell<T> {
    /// A cell holding `value`.
    pub(crate) fn new(value: T) -> Self {
        GilCell(RefCell::new(value))
    }

    /// Runs `f` on the contents. `f` should not call into Python.
    #[inline]
    pub(crate) fn with<R>(&self, _py: Python<'_>, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self
            .0
            .try_borrow_mut()
            .expect("re-entrant access to the event loop's state from a destructor"))
    }

    /// Runs `f` on the contents unless they are borrowed (then `None`). For
    /// `__traverse__`, which has no token but runs only while the collector,
    /// attached to the interpreter, holds the GIL (`_attached` stands for that).
    /// A borrow found here is held by the collecting thread itself, further up
    /// its stack, and cannot end during the collection, so every pass of one
    /// collection sees the same answer: skipping is consistent, and reporting
    /// fewer references than exist only keeps objects alive.
    pub(crate) fn peek_in_traverse<R>(
        &self,
        _attached: &pyo3::pyclass::PyVisit<'_>,
        f: impl FnOnce(&T) -> R,
    ) -> Option<R> {
        self.0.try_borrow().ok().map(|value| f(&value))
    }

    /// As [`peek_in_traverse`](Self::peek_in_traverse), for a `tp_traverse`
    /// slot written against the C API, which has no `PyVisit` to show.
    ///
    /// # Safety
    /// Call only from a `tp_traverse` slot CPython called (attached, GIL held).
    pub(crate) unsafe fn peek_in_raw_traverse<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.0.try_borrow().ok().map(|value| f(&value))
    }

    /// Runs `f` on the contents unless they are borrowed (then `None`): for a
    /// `tp_clear` slot, which the collector may call at any allocation and
    /// which must not panic. The same rule for `f` as for [`with`](Self::with).
    pub(crate) fn try_with<R>(&self, _py: Python<'_>, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        self.0.try_borrow_mut().ok().map(|mut value| f(&mut value))
    }
}
