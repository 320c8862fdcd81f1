//! State that only the thread attached to the interpreter may touch.

use std::cell::{Cell, RefCell};

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
}

// ANCHOR: gil_slot
/// An optional value reached only with a [`Python`] token, taken out and put
/// back whole: a [`GilCell`] of an `Option` without the `RefCell`'s borrow
/// flag. Every handle keeps its call in one, and the flag's word would move a
/// handle into a larger size class of CPython's allocator. No reference into
/// the slot outlives a call of one of its methods, so there is no borrow to
/// track: [`peek`](Self::peek) moves the value out while its closure looks at
/// it, and an access from inside that closure finds the slot empty rather
/// than aliased. The same rule for that closure as for [`GilCell::with`].
pub(crate) struct GilSlot<T>(Cell<Option<T>>);
// ANCHOR_END: gil_slot

// safety: as for `GilCell`: every access but the collector's takes a `Python`
// token, so only one thread touches the slot at a time; the collector's
// (`peek_in_raw_traverse`) runs attached too.
unsafe impl<T: Send> Sync for GilSlot<T> {}

/// Puts a value taken out by [`GilSlot::peek`] back, also if the closure
/// panics.
struct PutBack<'a, T> {
    slot: &'a Cell<Option<T>>,
    value: Option<T>,
}

impl<T> Drop for PutBack<'_, T> {
    fn drop(&mut self) {
        // The slot is empty unless the closure broke the rule and filled it;
        // then what it put there is dropped here.
        drop(self.slot.replace(self.value.take()));
    }
}

impl<T> GilSlot<T> {
    /// A slot holding `value`.
    pub(crate) fn new(value: Option<T>) -> Self {
        GilSlot(Cell::new(value))
    }

    /// Takes the value out, leaving the slot empty.
    #[inline]
    pub(crate) fn take(&self, _py: Python<'_>) -> Option<T> {
        self.0.take()
    }

    /// Puts `value` in, returning what was there (to be dropped by the
    /// caller, outside anything that must not run Python code).
    #[inline]
    pub(crate) fn replace(&self, _py: Python<'_>, value: T) -> Option<T> {
        self.0.replace(Some(value))
    }

    /// True if the slot holds nothing.
    #[inline]
    pub(crate) fn is_empty(&self, _py: Python<'_>) -> bool {
        // safety: the token: no other thread touches the slot, and no
        // reference into it is held by the methods above between calls.
        unsafe { (*self.0.as_ptr()).is_none() }
    }

    /// Runs `f` on the value, if there is one, and puts it back.
    #[inline]
    pub(crate) fn peek<R>(&self, _py: Python<'_>, f: impl FnOnce(&T) -> R) -> Option<R> {
        let guard = PutBack {
            slot: &self.0,
            value: self.0.take(),
        };
        guard.value.as_ref().map(f)
    }

    /// Runs `f` on the value, if there is one, for a `tp_traverse` slot
    /// written against the C API (no token). A value `peek` has out is not
    /// seen, which only reports fewer references than exist: objects are
    /// kept, never freed early.
    ///
    /// # Safety
    /// Call only from a `tp_traverse` slot CPython called (attached, GIL held),
    /// and with an `f` that does not reach this slot.
    pub(crate) unsafe fn peek_in_raw_traverse<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        // safety: the caller's contract: attached, so no other thread touches
        // the slot; nothing writes it while `f` runs (`f` does not reach it,
        // and the methods above hold no reference into it between calls).
        unsafe { (*self.0.as_ptr()).as_ref().map(f) }
    }
}
