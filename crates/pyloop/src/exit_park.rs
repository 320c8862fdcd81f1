//! Loops still running in other threads when the interpreter exits.
//!
//! **The hazard.** On CPython 3.11 to 3.13, a thread that wants the GIL back
//! after the interpreter has begun to finalize is ended on the spot with
//! `pthread_exit` (3.14 leaves it hanging instead). A daemon thread running a
//! loop is nearly always somewhere below the loop's Rust frames: in a callback
//! the loop called, or waiting in the poller, detached. `pthread_exit` unwinds
//! through those frames: Rust runs their destructors without the GIL (which
//! drop Python objects while the main thread collects garbage: a segfault),
//! and a `catch_unwind` on the way (PyO3's, or ours at the FFI boundary)
//! catches the forced unwind, which glibc answers with an abort. asyncio's
//! loop, in Python and C without destructors on the stack, lets the thread
//! disappear. A background loop in a daemon thread is a common pattern, so
//! exiting with one must not crash.
//!
//! **What we do.** `pyloop` registers [`park_loop_threads_at_exit`] with
//! `atexit` when it is imported, so it runs after the handlers registered
//! after that import (atexit runs them last in, first out), which may still
//! use such a loop, and before the interpreter finalizes. It marks the exit,
//! then waits, without the GIL, for up to [`EXIT_WAIT`] until no loop is
//! running attached in another thread. A loop that was running when the mark
//! was made stops at the start of its next turn, and any loop that goes idle
//! during the exit stops as it comes back from its wait: it lets go of the GIL
//! (or does not take it back) and waits for work from another thread. Nothing
//! is unwound. If the interpreter begins to finalize first, the thread parks
//! for good and the process exits as it would with asyncio. If work comes
//! first from the exiting thread (an atexit handler registered before `import
//! pyloop` asks the loop to stop, or to run a coroutine; a daemon producer's
//! work does not count: such a producer parks for good, unless the loop it
//! sends to runs on the exiting thread itself, an atexit handler's loop
//! waiting for its answer), the loop takes the GIL back and runs as
//! usual from then on, only looking whether the interpreter finalizes each
//! time it comes back from a wait (and parking for good if so); such a handler
//! sees its loop answer, as with asyncio. A loop started during the exit runs
//! the same way.
//!
//! What is still running when the interpreter finalizes (a callback longer
//! than the wait, a loop kept busy after a late handler woke it) meets
//! `pthread_exit` inside Python code the loop called. The loop makes those
//! calls (callbacks, protocol methods, asyncio's handles, the exception
//! handler, a task factory, debug mode's slow-callback warning, the
//! lost-writes warning, and the destructor run when it lets go of the last
//! reference to a callback, an argument or what the callback returned, after
//! a call that returned) through [`call_no_args`] and its siblings: declared
//! `"C-unwind"`, with a guard on the stack whose drop parks the thread for
//! good, so the unwind stops in the guarded call's frame, before any
//! destructor of ours runs.
//! (pyo3-ffi's `PyEval_RestoreThread`, with which PyO3 takes the GIL back
//! after `detach`, parks the same way; so do the copies of a raising
//! callback and its arguments made for the exception handler, except in
//! debug mode, where the same case still aborts by a path not yet traced.) Python code
//! run in other ways can still meet the unwind: what `cancel()` lets go of,
//! the context and the handle the loop drops (a context whose variable's
//! value has a slow destructor aborts the process on 3.2.1 and 3.3.1, found
//! by the hunt of stop 27), and on
//! 3.11 a collection, with its finalizers, that starts inside an allocation
//! the loop makes. So can a loop that comes back from a wait between the
//! check for finalization and taking the GIL, a window of a few
//! instructions.
//!
//! The registry is two atomics and a count per thread, not a lock: a process
//! forked while another thread held a lock would find it held for ever, and
//! the child starts with only the forking thread, so `after_fork_in_child`
//! (registered with `os.register_at_fork`) counts that thread's loops alone.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

/// How long the exit waits for loops in other threads to park.
pub(crate) const EXIT_WAIT: Duration = Duration::from_secs(1);

/// Set once the exit has begun (cleared only in a forked child).
static EXITING: AtomicBool = AtomicBool::new(false);

/// Loops running attached to the interpreter, on every thread.
static ATTACHED: AtomicUsize = AtomicUsize::new(0);

/// The thread state of the thread running the exit (`clock::thread_token`),
/// once it has begun; 0 before.
static EXIT_THREAD: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Loops running attached on this thread: this thread's part of `ATTACHED`.
    static ATTACHED_HERE: Cell<usize> = const { Cell::new(0) };
    /// True on the thread that runs the exit: its own loops never park.
    static EXITING_HERE: Cell<bool> = const { Cell::new(false) };
}

/// Parks the calling thread for good. Called detached, never attached: the
/// thread's frames stay as they are, nothing is unwound or dropped.
pub(crate) fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// True once the exit has begun (a plain load, for the start of every turn).
#[inline]
pub(crate) fn exiting() -> bool {
    EXITING.load(SeqCst)
}

/// True on the thread running the exit, once it has begun (where atexit
/// handlers run).
pub(crate) fn on_exiting_thread() -> bool {
    EXITING_HERE.with(Cell::get)
}

/// True once the exit has begun, on another thread than this one.
pub(crate) fn exiting_elsewhere() -> bool {
    EXITING.load(SeqCst) && !EXITING_HERE.with(Cell::get)
}

/// True once the interpreter has begun to finalize: after that, taking the
/// GIL back ends the thread. `Py_IsFinalizing` (3.13) or `_Py_IsFinalizing`
/// (3.11, 3.12), found once by name; false if neither is there.
pub(crate) fn finalizing() -> bool {
    type IsFinalizing = unsafe extern "C" fn() -> std::ffi::c_int;
    static FOUND: std::sync::OnceLock<Option<IsFinalizing>> = std::sync::OnceLock::new();
    let found = FOUND.get_or_init(|| {
        [c"Py_IsFinalizing", c"_Py_IsFinalizing"]
            .iter()
            .find_map(|name| {
                // safety: looks a symbol up in the process's global scope, where
                // the interpreter's are; both names are `int (void)` functions.
                let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
                (!symbol.is_null()).then(|| {
                    // safety: a non-null address of one of those functions.
                    unsafe { std::mem::transmute::<*mut libc::c_void, IsFinalizing>(symbol) }
                })
            })
    });
    // safety: reads the runtime's finalizing state, an atomic; callable from
    // any thread, attached or not.
    found.is_some_and(|is_finalizing| unsafe { is_finalizing() } != 0)
}

/// Counts a loop running attached on this thread (as it comes back from a
/// wait, still detached); false, with nothing counted, if the exit has begun
/// on another thread: the loop must then wait the exit out. The count goes up
/// before the exit's mark is read, and the exit sets its mark before it reads
/// the count (both sequentially consistent), so either the exit counts this
/// loop and waits for it to stop at its next turn, or this loop sees the exit.
#[must_use]
pub(crate) fn note_attached() -> bool {
    note_attached_anyway();
    if exiting_elsewhere() {
        leave();
        return false;
    }
    true
}

/// Counts a loop running attached on this thread, exit or not.
pub(crate) fn note_attached_anyway() {
    ATTACHED.fetch_add(1, SeqCst);
    ATTACHED_HERE.with(|here| here.set(here.get() + 1));
}

/// Notes that a loop on this thread no longer runs attached (it waits,
/// detached, or `run_forever` ends). Only what this thread counted is taken
/// back, so an extra call (after a panic skipped a count) is harmless.
pub(crate) fn leave() {
    let noted = ATTACHED_HERE.with(|here| {
        let noted = here.get() > 0;
        if noted {
            here.set(here.get() - 1);
        }
        noted
    });
    if noted {
        ATTACHED.fetch_sub(1, SeqCst);
    }
}

/// Keeps this thread's loop counted while `run_forever` runs: leaves the
/// count when dropped, also on an early return. A loop started during the
/// exit is counted and runs (it was started on purpose).
pub(crate) struct Registered(());

impl Registered {
    /// Counts the running loop.
    pub(crate) fn enter() -> Registered {
        note_attached_anyway();
        Registered(())
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        leave();
    }
}

/// A call into a loop from a thread that runs no loop (a producer, such as a
/// daemon thread sending `call_soon_threadsafe`), counted while it may run
/// Python code under the loop's frames (in debug mode: the checks and the
/// creation stack), so that the exit waits for it as for a loop. Once the exit
/// has begun on another thread, such a call parks its thread for good,
/// detached, instead: its work would wait out the exit anyway, and the
/// interpreter would end the thread under those frames.
pub(crate) struct ProducerCall(());

impl ProducerCall {
    /// Counts the call, or parks the thread if the exit has begun (unless
    /// `served`: see [`park_producer`]).
    pub(crate) fn enter(py: Python<'_>, served: bool) -> ProducerCall {
        let producer = ATTACHED_HERE.with(Cell::get) == 0;
        note_attached_anyway();
        if producer && !served && exiting_elsewhere() {
            leave();
            py.detach(|| park_forever());
        }
        ProducerCall(())
    }
}

impl Drop for ProducerCall {
    fn drop(&mut self) {
        leave();
    }
}

/// Once the exit has begun on another thread: a thread that runs no loop and
/// calls into one (a producer) parks for good, detached (see
/// [`ProducerCall`]); unless the loop it sends to runs on the exiting thread
/// (`running_thread`, that loop's `clock::thread_token`, is the exit's): an
/// atexit handler running a loop and waiting for a daemon thread's answer
/// gets it, as with asyncio.
#[cold]
pub(crate) fn park_producer(py: Python<'_>, running_thread: u64) {
    if exiting_elsewhere() && ATTACHED_HERE.with(Cell::get) == 0 && !serves_exit(running_thread) {
        py.detach(|| park_forever());
    }
}

/// True if `running_thread` (a loop's running thread, `clock::thread_token`)
/// is the thread running the exit.
pub(crate) fn serves_exit(running_thread: u64) -> bool {
    running_thread != 0 && running_thread == EXIT_THREAD.load(SeqCst)
}

// ANCHOR: park_loop_threads_at_exit
/// Registered with `atexit` by `pyloop`: marks the exit and waits, without
/// the GIL, for up to a second until no loop runs attached in another thread
/// (each parks its thread at its next turn; see the module documentation).
/// Returns how many were still running when it stopped waiting.
#[pyfunction]
pub(crate) fn park_loop_threads_at_exit(py: Python<'_>) -> usize {
    EXITING_HERE.with(|here| here.set(true));
    EXIT_THREAD.store(crate::clock::thread_token(py), SeqCst);
    EXITING.store(true, SeqCst);
    let mine = ATTACHED_HERE.with(Cell::get);
    py.detach(|| {
        let deadline = Instant::now() + EXIT_WAIT;
        loop {
            let others = ATTACHED.load(SeqCst).saturating_sub(mine);
            if others == 0 || Instant::now() >= deadline {
                return others;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    })
}
// ANCHOR_END: park_loop_threads_at_exit

/// Registered with `os.register_at_fork(after_in_child=...)` by `pyloop`: the
/// child has only the thread that forked, so only its loops are counted, and
/// an exit that had begun in the parent has not begun in the child.
#[pyfunction]
pub(crate) fn after_fork_in_child() {
    ATTACHED.store(ATTACHED_HERE.with(Cell::get), SeqCst);
    EXITING.store(false, SeqCst);
    EXIT_THREAD.store(0, SeqCst);
    EXITING_HERE.with(|here| here.set(false));
}

// ANCHOR: park_if_ended
/// On the stack across a call into Python that CPython may end with
/// `pthread_exit`; dropped only by that unwind (the call's normal return
/// forgets it), which it stops by parking the thread for good: the thread
/// holds no GIL then, so none of its callers' destructors may run.
struct ParkIfEnded;

impl Drop for ParkIfEnded {
    fn drop(&mut self) {
        park_forever();
    }
}

/// The calls through which the loop runs Python code (a callback, or a
/// destructor through `Py_DecRef`), declared `"C-unwind"`. pyo3-ffi declares
/// them `"C"`, which lets the compiler assume they never unwind and leave out
/// the landing pad that drops [`ParkIfEnded`]; and one symbol has one
/// declaration in the compiled code, so where PyO3's is also used, ours
/// would be taken as not unwinding too (a first version parked in callbacks
/// but not in `data_received`). So each call goes through a function
/// pointer that the compiler cannot see through ([`opaque`]). The same
/// symbols, exported by CPython 3.11 and later.
mod unwinding {
    use pyo3::ffi::PyObject;

    extern "C-unwind" {
        pub fn PyObject_CallNoArgs(callable: *mut PyObject) -> *mut PyObject;
        pub fn PyObject_Vectorcall(
            callable: *mut PyObject,
            args: *const *mut PyObject,
            nargsf: usize,
            kwnames: *mut PyObject,
        ) -> *mut PyObject;
        pub fn PyObject_VectorcallMethod(
            name: *mut PyObject,
            args: *const *mut PyObject,
            nargsf: usize,
            kwnames: *mut PyObject,
        ) -> *mut PyObject;
        pub fn PyObject_Call(
            callable: *mut PyObject,
            args: *mut PyObject,
            kwargs: *mut PyObject,
        ) -> *mut PyObject;
        pub fn Py_DecRef(object: *mut PyObject);
    }
}

type CallNoArgs = unsafe extern "C-unwind" fn(*mut ffi::PyObject) -> *mut ffi::PyObject;
type Vectorcall = unsafe extern "C-unwind" fn(
    *mut ffi::PyObject,
    *const *mut ffi::PyObject,
    usize,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;
type Call = unsafe extern "C-unwind" fn(
    *mut ffi::PyObject,
    *mut ffi::PyObject,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;

type DecRef = unsafe extern "C-unwind" fn(*mut ffi::PyObject);

/// `function`, hidden from the optimizer, so that a call through it keeps
/// its landing pad (see [`unwinding`]). Costs a store and a load.
#[inline(always)]
fn opaque<F>(function: F) -> F {
    std::hint::black_box(function)
}

/// `PyObject_CallNoArgs`, parking the thread for good if the interpreter
/// ends it meanwhile (see the module's notes).
///
/// # Safety
/// As `PyObject_CallNoArgs`: attached, `callable` a live object.
#[inline]
pub(crate) unsafe fn call_no_args(callable: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let guard = ParkIfEnded;
    // safety: as the caller promises.
    let result = unsafe { opaque(unwinding::PyObject_CallNoArgs as CallNoArgs)(callable) };
    std::mem::forget(guard);
    result
}

// ANCHOR_END: park_if_ended

/// `PyObject_Vectorcall`, parking the thread for good if the interpreter
/// ends it meanwhile.
///
/// # Safety
/// As `PyObject_Vectorcall`.
#[inline]
pub(crate) unsafe fn vectorcall(
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
) -> *mut ffi::PyObject {
    let guard = ParkIfEnded;
    // safety: as the caller promises; no keyword names.
    let result = unsafe {
        opaque(unwinding::PyObject_Vectorcall as Vectorcall)(
            callable,
            args,
            nargsf,
            std::ptr::null_mut(),
        )
    };
    std::mem::forget(guard);
    result
}

/// `PyObject_Call`, parking the thread for good if the interpreter ends it
/// meanwhile.
///
/// # Safety
/// As `PyObject_Call`: `args` a tuple, `kwargs` a dict or null.
#[inline]
pub(crate) unsafe fn call(
    callable: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
    kwargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let guard = ParkIfEnded;
    // safety: as the caller promises.
    let result = unsafe { opaque(unwinding::PyObject_Call as Call)(callable, args, kwargs) };
    std::mem::forget(guard);
    result
}

/// `receiver.name(arg)`, parking the thread for good if the interpreter
/// ends it meanwhile.
#[inline]
pub(crate) fn call_method1<'py>(
    receiver: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
    arg: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    method_call(receiver, name, &[receiver.as_ptr(), arg.as_ptr()])
}

/// `receiver.name()`, parking the thread for good if the interpreter ends it
/// meanwhile.
pub(crate) fn call_method0<'py>(
    receiver: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    method_call(receiver, name, &[receiver.as_ptr()])
}

/// `PyObject_VectorcallMethod` on `slots` (the receiver, then the
/// arguments), guarded.
#[inline]
fn method_call<'py>(
    receiver: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
    slots: &[*mut ffi::PyObject],
) -> PyResult<Bound<'py, PyAny>> {
    let guard = ParkIfEnded;
    // safety: attached (a `Bound`); `slots` holds the receiver and the
    // arguments, borrowed and live for the call; a new reference or NULL
    // with an error set.
    let result = unsafe {
        opaque(unwinding::PyObject_VectorcallMethod as Vectorcall)(
            name.as_ptr(),
            slots.as_ptr(),
            slots.len(),
            std::ptr::null_mut(),
        )
    };
    std::mem::forget(guard);
    // safety: attached; the result as above.
    unsafe { Bound::from_owned_ptr_or_err(receiver.py(), result) }
}

/// `callable(*args, **keywords)`, parking the thread for good if the
/// interpreter ends it meanwhile. The dictionary is passed as it is (the
/// callee's `tp_call` receives this very one; it must not keep it).
pub(crate) fn call_with<'py>(
    callable: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
    keywords: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let keywords = keywords.map_or(std::ptr::null_mut(), Bound::as_ptr);
    // safety: attached (a `Bound`); the callable, the tuple and the
    // dictionary (if any) are live for the call; a new reference or NULL
    // with an error set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            callable.py(),
            call(callable.as_ptr(), args.as_ptr(), keywords),
        )
    }
}

/// Lets go of the last reference to `object`, whose destructor may run
/// Python code (a `__del__`): a thread the interpreter ends there parks for
/// good. Through `Py_DecRef`, which does what `Py_DECREF` does on every
/// version; a few instructions more than `Py_DECREF` inline.
///
/// # Safety
/// Attached; `object` is a reference the caller owns and gives up.
#[inline(never)]
pub(crate) unsafe fn release_last(object: *mut ffi::PyObject) {
    let guard = ParkIfEnded;
    // safety: as the caller promises.
    unsafe { opaque(unwinding::Py_DecRef as DecRef)(object) };
    std::mem::forget(guard);
}

/// `callable()`, parking the thread for good if the interpreter ends it
/// meanwhile.
pub(crate) fn call0<'py>(callable: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    // safety: attached (a `Bound`), `callable` live; a new reference or NULL.
    unsafe { Bound::from_owned_ptr_or_err(callable.py(), call_no_args(callable.as_ptr())) }
}
