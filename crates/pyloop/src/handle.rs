//! `Handle` and `TimerHandle`: a scheduled callback, as asyncio has them.
//!
//! A handle owns its callback and arguments until it runs or is cancelled, and
//! then lets go of them at once. That is why handles are not tracked by the
//! cyclic garbage collector: a cycle through a handle (an object holding the
//! handle of a callback bound to itself) exists only while the callback is
//! still pending, and the loop holds it then. The loop's own `__traverse__`
//! reports what a pending handle holds when the loop holds the only reference
//! to it ([`Handle::visit_contents`]), so a cycle through a loop that was
//! dropped without being closed (a pending `call_later(loop.stop)`) is still
//! found and collected. Untracked handles save the collector's bookkeeping on
//! every `call_soon`; the book measures it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit, PyTypeError};
use pyo3::prelude::*;
use pyo3::pyclass::{PyTraverseError, PyVisit};
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{ffi, intern};

use crate::gil_cell::GilCell;

/// A callback and its positional arguments.
struct Call {
    callback: Py<PyAny>,
    args: Py<PyTuple>,
}

// ANCHOR: handle
/// A callback scheduled by `call_soon`, `call_soon_threadsafe` or (as the base
/// of [`TimerHandle`]) `call_at`; returned to the caller so it can cancel it.
#[pyclass(frozen, subclass, weakref, freelist = 256, module = "pyloop._native")]
pub struct Handle {
    /// The call to make; `None` once it has run or been cancelled.
    call: GilCell<Option<Call>>,
    /// The `contextvars.Context` the callback runs in.
    context: Py<PyAny>,
    /// In debug mode, where the handle was made (asyncio's `_source_traceback`).
    source_traceback: Option<Py<PyAny>>,
    cancelled: AtomicBool,
}
// ANCHOR_END: handle

fn format_callback<'py>(
    py: Python<'py>,
    callback: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
) -> PyResult<String> {
    static FORMAT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    FORMAT
        .import(py, "asyncio.format_helpers", "_format_callback_source")?
        .call1((callback, args))?
        .extract()
}

/// The context a new handle runs in: the one given (checked to be a
/// `contextvars.Context`), or a copy of the caller's.
fn context_for(py: Python<'_>, context: Option<Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
    match context {
        Some(ctx) if !ctx.is_none() => {
            // safety: `ctx` is a live object; the check only reads its type.
            if unsafe { ffi::PyContext_CheckExact(ctx.as_ptr()) } == 0 {
                return Err(PyTypeError::new_err(format!(
                    "context must be a contextvars.Context, not {}",
                    ctx.get_type().name()?
                )));
            }
            Ok(ctx.unbind())
        }
        _ => {
            // safety: attached to the interpreter; returns a new reference or NULL with an error set.
            unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyContext_CopyCurrent()) }
                .map(Bound::unbind)
        }
    }
}

/// Takes a new handle out of the cyclic collector's list (see the module doc:
/// a handle lets go of its callback once it has run or been cancelled).
pub(crate) fn untrack<T>(obj: &Py<T>) {
    // safety: `obj` is a live, fully initialised object of a GC type (every
    // `#[pyclass]` is one); untracking only unlinks it from the collector's
    // list, and the untrack in its `tp_dealloc` is a no-op for an untracked object.
    unsafe { ffi::PyObject_GC_UnTrack(obj.as_ptr().cast()) }
}

impl Handle {
    /// A handle for `callback(*args)` in `context` (a copy of the current
    /// context if `None`). Raises `TypeError`, naming `method`, if `callback`
    /// is not callable: always, where asyncio checks only in debug mode. In
    /// `debug` mode it records where it was made, as asyncio's handles do.
    pub(crate) fn new(
        py: Python<'_>,
        method: &str,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
        debug: bool,
    ) -> PyResult<Self> {
        if !callback.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "a callable object was expected by {method}(), got {}",
                callback.repr()?
            )));
        }
        let source_traceback = if debug { Some(caller_stack(py)?) } else { None };
        Ok(Handle {
            call: GilCell::new(Some(Call {
                callback: callback.unbind(),
                args: args.unbind(),
            })),
            context: context_for(py, context)?,
            source_traceback,
            cancelled: AtomicBool::new(false),
        })
    }

    /// Reports to the collector what the handle holds (the loop's
    /// `__traverse__` calls this for a handle only it holds; see the module
    /// documentation).
    pub(crate) fn visit_contents(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.call
            .peek_in_traverse(visit, |call| match call {
                Some(call) => {
                    visit.call(&call.callback)?;
                    visit.call(&call.args)
                }
                None => Ok(()),
            })
            .unwrap_or(Ok(()))?;
        visit.call(&self.context)?;
        visit.call(&self.source_traceback)
    }

    /// Marks the handle cancelled and drops its call; true if it was not
    /// cancelled before.
    pub(crate) fn cancel_call(&self, py: Python<'_>) -> bool {
        if self.cancelled.swap(true, Relaxed) {
            return false;
        }
        let call = self.call.with(py, Option::take);
        drop(call);
        true
    }

    /// True once cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Relaxed)
    }

    // ANCHOR: run
    /// Runs the callback in its context. An exception goes to the loop's
    /// exception handler, as in asyncio; only `KeyboardInterrupt` and
    /// `SystemExit` (and a failure of the handler itself) come back as `Err`,
    /// to end `run_forever`. The handle keeps its call until
    /// [`release`](Self::release), so that its repr still names the callback
    /// in reports made after the run (the slow-callback warning).
    pub(crate) fn run(this: &Bound<'_, Handle>, event_loop: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = this.py();
        let handle = this.get();
        if handle.is_cancelled() {
            return Ok(());
        }
        let Some((callback, args)) = handle.call.with(py, |call| {
            call.as_ref()
                .map(|c| (c.callback.clone_ref(py), c.args.clone_ref(py)))
        }) else {
            return Ok(());
        };
        let ctx = handle.context.as_ptr();
        // safety: attached to the interpreter; `ctx` is a Context (checked when
        // the handle was made) and `callback`/`args` are owned references live
        // for the whole block. A failed enter leaves an error set, which
        // `PyErr::fetch` takes; exit follows a successful enter only, after the
        // call's error (if any) has been fetched.
        let result = unsafe {
            if ffi::PyContext_Enter(ctx) < 0 {
                Err(PyErr::fetch(py))
            } else {
                let out =
                    ffi::PyObject_Call(callback.as_ptr(), args.as_ptr(), std::ptr::null_mut());
                let out = Bound::from_owned_ptr_or_err(py, out);
                ffi::PyContext_Exit(ctx);
                out
            }
        };
        match result {
            Ok(_) => Ok(()),
            Err(err) => report_callback_error(this, event_loop, &callback, &args, err),
        }
    }

    /// Drops the call once it has run, so that the handle no longer keeps the
    /// callback and its arguments alive.
    pub(crate) fn release(&self, py: Python<'_>) {
        let call = self.call.with(py, Option::take);
        drop(call);
    }
    // ANCHOR_END: run
}

/// The stack of the Python code calling into the loop now, as asyncio's
/// `format_helpers.extract_stack` gives it (most recent call last).
fn caller_stack(py: Python<'_>) -> PyResult<Py<PyAny>> {
    static EXTRACT_STACK: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    static GETFRAME: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    // Frame 0 is the caller's: a native method has no frame of its own.
    let frame = GETFRAME.import(py, "sys", "_getframe")?.call1((0,))?;
    Ok(EXTRACT_STACK
        .import(py, "asyncio.format_helpers", "extract_stack")?
        .call1((frame,))?
        .unbind())
}

/// Hands an exception raised by a callback to the loop's exception handler,
/// with asyncio's message and keys; passes `KeyboardInterrupt` and
/// `SystemExit` through.
fn report_callback_error(
    handle: &Bound<'_, Handle>,
    event_loop: &Bound<'_, PyAny>,
    callback: &Py<PyAny>,
    args: &Py<PyTuple>,
    err: PyErr,
) -> PyResult<()> {
    let py = handle.py();
    if err.is_instance_of::<PyKeyboardInterrupt>(py) || err.is_instance_of::<PySystemExit>(py) {
        return Err(err);
    }
    let source = format_callback(py, callback.bind(py), args.bind(py))?;
    let context = PyDict::new(py);
    context.set_item(
        intern!(py, "message"),
        format!("Exception in callback {source}"),
    )?;
    context.set_item(intern!(py, "exception"), err.value(py))?;
    context.set_item(intern!(py, "handle"), handle)?;
    if let Some(stack) = &handle.get().source_traceback {
        context.set_item(intern!(py, "source_traceback"), stack)?;
    }
    event_loop.call_method1(intern!(py, "call_exception_handler"), (context,))?;
    Ok(())
}

fn describe(py: Python<'_>, handle: &Handle, kind: &str, extra: &str) -> PyResult<String> {
    if handle.is_cancelled() {
        return Ok(format!("<{kind}{extra} cancelled>"));
    }
    let source = handle.call.with(py, |call| {
        call.as_ref()
            .map(|c| (c.callback.clone_ref(py), c.args.clone_ref(py)))
    });
    match source {
        Some((callback, args)) => Ok(format!(
            "<{kind}{extra} {}>",
            format_callback(py, callback.bind(py), args.bind(py))?
        )),
        None => Ok(format!("<{kind}{extra} done>")),
    }
}

#[pymethods]
impl Handle {
    /// Cancels the callback: it will not run. Cancelling twice does nothing.
    fn cancel(&self, py: Python<'_>) {
        self.cancel_call(py);
    }

    /// True if the callback was cancelled.
    fn cancelled(&self) -> bool {
        self.is_cancelled()
    }

    /// The `contextvars.Context` the callback runs in.
    fn get_context(&self, py: Python<'_>) -> Py<PyAny> {
        self.context.clone_ref(py)
    }

    /// The callback, until the handle has run or been cancelled (asyncio's
    /// `_callback`, which asyncio's own helpers read).
    #[getter]
    fn _callback(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.call
            .with(py, |call| call.as_ref().map(|c| c.callback.clone_ref(py)))
    }

    /// The arguments, until the handle has run or been cancelled (`_args`).
    #[getter]
    fn _args(&self, py: Python<'_>) -> Option<Py<PyTuple>> {
        self.call
            .with(py, |call| call.as_ref().map(|c| c.args.clone_ref(py)))
    }

    /// In debug mode, where the handle was made (`_source_traceback`).
    #[getter]
    fn _source_traceback(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.source_traceback.as_ref().map(|s| s.clone_ref(py))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        describe(py, self, "Handle", "")
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.visit_contents(&visit)
    }

    fn __clear__(&self) {
        Python::attach(|py| {
            let call = self.call.with(py, Option::take);
            drop(call);
        })
    }
}

// ANCHOR: timer_handle
/// A callback scheduled for a time by `call_at` or `call_later`.
#[pyclass(frozen, extends = Handle, module = "pyloop._native")]
pub struct TimerHandle {
    when: f64,
    /// True while the handle is in the loop's timer heap.
    pub(crate) scheduled: AtomicBool,
    /// The loop's count of timers cancelled since its last turn, which it
    /// uses to decide when to compact its heap.
    cancelled_timers: Arc<AtomicUsize>,
}
// ANCHOR_END: timer_handle

impl TimerHandle {
    /// A timer handle due at `when` on the loop's clock.
    pub(crate) fn new(when: f64, cancelled_timers: Arc<AtomicUsize>) -> Self {
        TimerHandle {
            when,
            scheduled: AtomicBool::new(true),
            cancelled_timers,
        }
    }
}

#[pymethods]
impl TimerHandle {
    /// The time, on the loop's clock, the callback is scheduled for.
    fn when(&self) -> f64 {
        self.when
    }

    /// Cancels the callback and tells the loop, so that it can drop the
    /// entry from its heap.
    fn cancel(slf: &Bound<'_, Self>) {
        let newly = slf.as_super().get().cancel_call(slf.py());
        let timer = slf.get();
        if newly && timer.scheduled.swap(false, Relaxed) {
            timer.cancelled_timers.fetch_add(1, Relaxed);
        }
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let extra = format!(" when={}", slf.get().when);
        describe(slf.py(), slf.as_super().get(), "TimerHandle", &extra)
    }
}
