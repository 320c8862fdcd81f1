//! State that only the thread attached to the interpreter may touch.

use std::cell::RefCell;

use pyo3::Python;

#[cfg(Py_GIL_DISABLED)]
compile_error!("pyloop relies on the GIL to guard its loop-thread state; free-threaded CPython is not supported yet");

/// A cell whose contents are reached only with a [`Python`] token.
///
/// With the GIL, at most one thread is attached to the interpreter at a time,
/// so a token proves exclusive access across threads. Within the thread, the
/// `RefCell` catches re-entry (a Python destructor run by a drop inside
/// [`with`](Self::with) that calls back into the loop): it panics, which PyO3
/// turns into a Python exception, instead of aliasing a `&mut`.
pub(crate) struct GilCell<T>(RefCell<T>);

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
}
