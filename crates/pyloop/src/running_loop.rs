//! Whether a loop is asyncio's running loop of the calling thread, asked
//! cheaply enough to be done for every future, where that can be done.
//!
//! `create_future()` is `Future(loop=self)` in asyncio. Passing the loop as a
//! keyword costs the C `Future.__init__` a keyword-argument parse (about 120
//! instructions under callgrind, an eighth of a future's life in the ping-pong
//! workload), while `Future()` with no argument takes the parser's fast path
//! and asks `_get_running_loop()` for its loop. The two are the same future
//! exactly when the running loop of this thread is the loop itself, which is
//! nearly always and yet not certain: `nest_asyncio` and other users of the
//! private `_set_running_loop` can run another loop on top of ours. So the
//! loop asks, and takes the keyword path when the answer is not itself.
//!
//! Asking through a Python call would cost most of what it saves. When
//! `asyncio.events._get_running_loop` is the C function of `_asyncio` (a
//! `METH_NOARGS` built-in) the loop calls that function's C pointer directly,
//! as CPython's own call would, without the call protocol around it.
//!
//! On CPython 3.11 the shortcut is not taken at all. There `_get_running_loop`
//! compares the running loop's process id with `getpid()` on every call (a
//! guard against a forked child, gone in 3.12), and glibc's `getpid` is a
//! system call: asking, and then `Future()` asking again, made two system
//! calls per future. Callgrind counts no instruction in the kernel and showed
//! a saving; the wall clock showed a slower ping-pong. asyncio written in
//! Python (without `_asyncio`) checks the process id on every call in every
//! version, so there the keyword path stays too.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// How to ask for the running loop.
enum RunningLoopQuery {
    /// The C function of a `METH_NOARGS` built-in and the module it is bound
    /// to (its `self`), kept alive with the built-in.
    Native {
        function: ffi::PyCFunction,
        module: *mut ffi::PyObject,
        _builtin: Py<PyAny>,
    },
    /// Not asked: on this CPython each answer costs a system call.
    NotWorthIt,
}

// safety: the module pointer is only used attached (the GIL held), and the
// built-in that keeps it alive is held for as long as the query exists.
unsafe impl Send for RunningLoopQuery {}
// safety: as for `Send`: nothing is touched without the GIL.
unsafe impl Sync for RunningLoopQuery {}

static QUERY: PyOnceLock<RunningLoopQuery> = PyOnceLock::new();

fn query(py: Python<'_>) -> PyResult<&RunningLoopQuery> {
    QUERY.get_or_try_init(py, || {
        if py.version_info() < (3, 12) {
            return Ok(RunningLoopQuery::NotWorthIt);
        }
        let getter = py.import("asyncio.events")?.getattr("_get_running_loop")?;
        let ptr = getter.as_ptr();
        // safety: attached; `ptr` is a live object; the flag and function of a
        // built-in are read only after `PyCFunction_Check` says it is one.
        unsafe {
            if ffi::PyCFunction_Check(ptr) != 0
                && ffi::PyCFunction_GetFlags(ptr) == ffi::METH_NOARGS
            {
                if let Some(function) = ffi::PyCFunction_GetFunction(ptr) {
                    return Ok(RunningLoopQuery::Native {
                        function,
                        module: ffi::PyCFunction_GetSelf(ptr),
                        _builtin: getter.unbind(),
                    });
                }
            }
        }
        Ok(RunningLoopQuery::NotWorthIt)
    })
}

// ANCHOR: is_running_loop
/// True if `event_loop` is what `asyncio._get_running_loop()` returns on this
/// thread now, and asking costs no system call; false if it is not, or if
/// asking would cost one (CPython 3.11, asyncio in Python).
pub(crate) fn is_running_loop_cheaply(event_loop: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = event_loop.py();
    let running = match query(py)? {
        RunningLoopQuery::Native {
            function, module, ..
        } => {
            // safety: attached; a `METH_NOARGS` function is called with its
            // `self` and NULL, as CPython calls it, and returns a new
            // reference or NULL with an error set. The module is alive: the
            // built-in bound to it is kept in the query.
            unsafe { Bound::from_owned_ptr_or_err(py, function(*module, std::ptr::null_mut()))? }
        }
        RunningLoopQuery::NotWorthIt => return Ok(false),
    };
    Ok(running.is(event_loop))
}
// ANCHOR_END: is_running_loop
