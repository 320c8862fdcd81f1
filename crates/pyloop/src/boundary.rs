//! The edge between CPython and our code for the functions written against
//! the C API (the handle types and the loop's scheduling entry points), where
//! PyO3's own trampolines are not there to do it.
//!
//! A Rust panic must never unwind into CPython (undefined behaviour) nor reach
//! Python as PyO3's `PanicException`, a `BaseException` that `except Exception`
//! does not catch. [`enter`] turns a panic into a `RuntimeError` that names it
//! as an internal error of PyLoop, and a `PyResult` into what the C API
//! expects: a new reference, or NULL with an exception set.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PySystemExit};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};

use crate::exit_park;

/// Runs `body` for a C API function called by CPython, with the interpreter
/// attached (`// safety`: callers are C API slots and methods, which CPython
/// only calls from an attached thread).
///
/// # Safety
/// Call only from a function CPython calls with the thread attached.
pub(crate) unsafe fn enter<F>(body: F) -> *mut ffi::PyObject
where
    F: for<'py> FnOnce(Python<'py>) -> PyResult<*mut ffi::PyObject>,
{
    // safety: the caller's contract: CPython called us attached.
    let py = unsafe { Python::assume_attached() };
    match catch_unwind(AssertUnwindSafe(|| body(py))) {
        Ok(Ok(object)) => object,
        Ok(Err(err)) => {
            err.restore(py);
            ptr::null_mut()
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            PyRuntimeError::new_err(format!("internal error in pyloop (please report): {what}"))
                .restore(py);
            ptr::null_mut()
        }
    }
}

/// As [`enter`], for slots that return nothing (`tp_dealloc`): a panic is
/// reported as unraisable, since there is no caller to raise it to.
///
/// # Safety
/// Call only from a function CPython calls with the thread attached.
pub(crate) unsafe fn enter_void<F>(body: F)
where
    F: for<'py> FnOnce(Python<'py>),
{
    // safety: the caller's contract: CPython called us attached.
    let py = unsafe { Python::assume_attached() };
    if catch_unwind(AssertUnwindSafe(|| body(py))).is_err() {
        PyRuntimeError::new_err(
            "internal error in pyloop (please report): a panic in a destructor",
        )
        .restore(py);
        // safety: attached, with the error just set; no object is named (the
        // one being destroyed is half gone).
        unsafe { ffi::PyErr_WriteUnraisable(ptr::null_mut()) };
    }
}

/// True for the exceptions asyncio lets leave the loop (`KeyboardInterrupt`,
/// `SystemExit`) where it hands any other to the exception handler.
pub(crate) fn is_fatal_to_loop(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance_of::<PyKeyboardInterrupt>(py) || err.is_instance_of::<PySystemExit>(py)
}

// ANCHOR: report_to_handler
/// Calls `event_loop.call_exception_handler` with asyncio's `message` and
/// `exception` keys and those `more` adds (`handle`, `transport`, ...), as
/// asyncio calls it: from inside an `except` block that caught the error
/// (`_report_in_except` in `_loop.py`), so that the handler's
/// `sys.exc_info()` is that error and what the handler raises is chained to
/// it; and with the error's traceback attached (on 3.11 PyO3 fetches an
/// error's traceback apart from its value). A thread the interpreter ends in
/// the handler parks (`exit_park.rs`).
pub(crate) fn report_to_handler(
    event_loop: &Bound<'_, PyAny>,
    message: &str,
    err: &PyErr,
    more: impl FnOnce(&Bound<'_, PyDict>) -> PyResult<()>,
) -> PyResult<()> {
    static REPORT_IN_EXCEPT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = event_loop.py();
    let exception = err.value(py);
    if let Some(traceback) = err.traceback(py) {
        // safety: attached; `exception` is an exception instance and
        // `traceback` a traceback; the call takes its own reference.
        unsafe { ffi::PyException_SetTraceback(exception.as_ptr(), traceback.as_ptr()) };
    }
    let context = PyDict::new(py);
    context.set_item(intern!(py, "message"), message)?;
    context.set_item(intern!(py, "exception"), exception)?;
    more(&context)?;
    let report = REPORT_IN_EXCEPT.import(py, "pyloop._loop", "_report_in_except")?;
    let arguments = PyTuple::new(py, [event_loop, context.as_any(), exception.as_any()])?;
    exit_park::call_with(report, &arguments, None).map(drop)
}
// ANCHOR_END: report_to_handler
