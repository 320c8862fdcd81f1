//! The event loop, written once over any phase's ready queue.
//!
//! [`LoopCore`] holds everything a loop has: the phase's queue for callbacks
//! from other threads, the loop thread's own lane, the timer heap, the flags.
//! `event_loop_class!` stamps one `#[pyclass]` per phase around it (a
//! `#[pyclass]` cannot be generic), so the phases differ in the queue only.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use pyloop_core::{Cancellable, ReadyQueue, Timers, TryPushError};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pyclass::{PyTraverseError, PyVisit};
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::boundary;
use crate::clock::{monotonic, thread_token, CLOCK_RESOLUTION};
use crate::exit_park;
use crate::fd_map::FdMap;
use crate::fd_wait::{mask, FdWaits, Interest, Sharing, Waiter, READ, WRITE};
use crate::gil_cell::GilCell;
use crate::handle::{ArgRefs, HandleRef, TimerPart};
use crate::sock_calls::{holds_fd, os_error, SockOp};
use crate::spare_bytes::SpareBytes;
use crate::transport::TcpTransportCore;

/// The longest the loop sleeps in one go, so that a signal (Ctrl-C) arriving
/// while it sleeps on a condition variable is handled within this time. A loop
/// that waits in epoll with a wake-up fd will not need it.
pub(crate) const MAX_IDLE_WAIT: Duration = Duration::from_millis(100);

// ANCHOR: interpreter_turn
/// A busy loop lets the interpreter in (`interpreter_turn`) once every this
/// many turns (a turn runs at most 128 callbacks from other threads besides
/// its own lane's: a few milliseconds at most, the interpreter's switch
/// interval being 5 ms)...
const TURNS_BETWEEN_INTERPRETER_TURNS: u32 = 256;
/// ... and a turn whose own lane is long, once every this many of its
/// callbacks.
const CALLBACKS_BETWEEN_INTERPRETER_TURNS: usize = 1024;

/// Calls `pyloop._loop._interpreter_turn`, a Python function that does
/// nothing, so that the interpreter does at its first instruction what it
/// does at function entries and loop jumps: runs signal handlers (a
/// `KeyboardInterrupt` comes back as this call's error) and lets go of the
/// GIL if another thread has asked for it. A callback that is a C function
/// (`functools.partial` of a builtin, a bound method of a C type) runs no
/// bytecode: a busy loop of them kept the GIL, and Ctrl-C, from every other
/// thread for as long as it ran. Letting the GIL go and taking it back by
/// hand instead would starve the other threads: a waiting thread asks the
/// holder to let go only when its 5 ms wait runs out without the GIL being
/// let go, and each release by hand woke it early to find the GIL taken
/// back, so it began another 5 ms wait, again and again.
#[cold]
#[inline(never)]
fn interpreter_turn(py: Python<'_>) -> PyResult<()> {
    static INTERPRETER_TURN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    INTERPRETER_TURN
        .import(py, "pyloop._loop", "_interpreter_turn")
        .and_then(exit_park::call0)
        .map(drop)
}
// ANCHOR_END: interpreter_turn

/// Whether callbacks run before what a descriptor's readiness wakes, as in
/// asyncio: those queued before the turn's readiness, and the readers and
/// writers of descriptors reported before it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Callbacks {
    /// None do: the socket methods' calls are made at once.
    None,
    /// Some do: a socket method's call waits for its coroutine.
    Queued,
}

/// Completes the futures of waits whose call is left to the coroutine, unless
/// a reader or callback that ran first has cancelled them. Every one is
/// completed even if one fails; the first error is returned.
#[cold]
#[inline(never)]
fn complete_left_to_coroutines(py: Python<'_>, ready: Vec<(Py<PyAny>, Py<PyAny>)>) -> PyResult<()> {
    let mut first_error = None;
    for (future, result) in ready {
        let future = future.bind(py);
        let done = (|| {
            if !future.call_method0(intern!(py, "done"))?.is_truthy()? {
                future.call_method1(intern!(py, "set_result"), (result,))?;
            }
            Ok(())
        })();
        if let Err(err) = done {
            let unsent = fail_future(future, &err);
            first_error.get_or_insert(unsent.err().unwrap_or(err));
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// How often a loop waiting out the interpreter's exit looks whether it has
/// begun to finalize.
const EXIT_POLL: Duration = Duration::from_millis(5);

/// A callback in the loop's own lane.
pub(crate) enum Ready {
    /// One of our handles, run without going through Python.
    Native(HandleRef),
    /// A handle made by asyncio's own code (a reader or writer registered by
    /// `selector_events`, a signal handler): run by calling its `_run()`.
    Foreign(Py<PyAny>),
}

/// An entry of the loop's timer heap.
pub(crate) struct ScheduledTimer(HandleRef);

impl Cancellable for ScheduledTimer {
    fn is_cancelled(&self) -> bool {
        self.0.timer_state().is_none_or(|(_, scheduled)| !scheduled)
    }
}

/// asyncio's error for a call on a closed loop.
pub(crate) fn closed_error() -> PyErr {
    PyRuntimeError::new_err("Event loop is closed")
}

/// Reports a pending handle the loop holds (one reference) to the collector.
/// A tracked handle (every `TimerHandle`, and a `Handle` once published; see
/// `handle.rs`): the loop reports the one reference it owns, the handle
/// itself, and the handle reports what it holds. An untracked `Handle`: the
/// loop reports what it holds if the loop holds the only reference to it, so
/// owns what it holds then. One someone else also holds is not reported; its
/// holder keeps it, and what it holds, alive.
// ANCHOR: visit_pending_handle
fn visit_pending_handle(visit: &PyVisit<'_>, handle: &HandleRef) -> Result<(), PyTraverseError> {
    if handle.is_tracked() {
        return visit.call(handle.as_any());
    }
    // Nothing can change the count during a collection: the collector holds
    // the GIL and runs no Python code between its passes.
    if handle.refcount() != 1 {
        return Ok(());
    }
    handle.visit_contents(visit)
}
// ANCHOR_END: visit_pending_handle

/// What a change of a shared descriptor's waits asks the epoll set to watch
/// it for, if it is shared and that changed.
fn shared_watch(interest: Interest) -> Option<u8> {
    match interest {
        Interest::Shared(sharing) => sharing.watch(),
        _ => None,
    }
}

/// Completes each future not yet done with `None`.
/// Fails `future` with `err` unless it is already done (cancelled, or
/// completed by a call that raced this failure).
fn fail_future(future: &Bound<'_, PyAny>, err: &PyErr) -> PyResult<()> {
    let py = future.py();
    if !future.call_method0(intern!(py, "done"))?.is_truthy()? {
        future.call_method1(intern!(py, "set_exception"), (err.value(py),))?;
    }
    Ok(())
}

/// What a closed (or collected) loop still held, taken out of its state so
/// that it is dropped after every borrow has ended.
struct Pending {
    handles: Vec<HandleRef>,
    foreign: Vec<Py<PyAny>>,
    timers: Vec<ScheduledTimer>,
    transports: FdMap<Py<TcpTransportCore>>,
    waits: Vec<Waiter>,
}

impl Pending {
    /// Lets go of it all. As asyncio, pending callbacks are dropped, not
    /// cancelled; each handle lets go of its callback so that no cycle through
    /// it outlives the loop.
    fn release(self, py: Python<'_>) {
        let Pending {
            handles,
            foreign,
            timers,
            transports,
            waits,
        } = self;
        for handle in &handles {
            handle.release(py);
        }
        for timer in &timers {
            timer.0.set_unscheduled();
            timer.0.release(py);
        }
        drop((handles, foreign, timers, transports, waits));
    }
}

// ANCHOR: core
/// Everything an event loop holds, generic over the phase's queue `Q`.
pub struct LoopCore<Q: ReadyQueue<HandleRef>> {
    /// Callbacks from other threads: the phase under study.
    queue: Q,
    /// The queue's consumer-side state; only the loop thread touches it. Taken
    /// out (`None`) while the loop waits or runs a batch, so that nothing a
    /// callback does can reach it then.
    consumer: GilCell<Option<Q::Consumer>>,
    /// Callbacks scheduled on the loop thread itself (or while the loop is not
    /// running). They never touch the queue's lock, so a callback run while
    /// a phase holds that lock can schedule more without deadlocking.
    local: GilCell<VecDeque<Ready>>,
    /// Registered file descriptors, not counting the loop's own self-pipe: while
    /// there are any, a busy loop still looks for I/O every turn. Each side
    /// counts its own: a descriptor with a reader or writer from Python and
    /// pending socket waits (see `fd_wait.rs`) counts twice, and once when
    /// either goes.
    io_fds: AtomicUsize,
    /// Native transports by descriptor (the transport's own duplicate): their
    /// readiness is handled in Rust, without going through asyncio's selector code.
    transports: GilCell<FdMap<Py<TcpTransportCore>>>,
    /// One-shot waits of the socket methods, by descriptor (see `fd_wait.rs`).
    fd_waits: GilCell<FdWaits>,
    /// An empty buffer for the readiness of the next turn with I/O, traded
    /// with the queue's (`ReadyQueue::take_io_events`).
    io_events: GilCell<Vec<pyloop_core::IoEvent>>,
    /// How many more idle turns go straight to the sleeping wait before
    /// [`poll_io_attached`](Self::poll_io_attached) is tried again (it found
    /// nothing the last time).
    attached_polls_skipped: GilCell<u8>,
    /// The socket methods' waits of this turn whose call is left to the
    /// coroutine: (future, "ready" result), completed once the turn's
    /// readers are queued (`dispatch_io`).
    left_to_coroutines: GilCell<Vec<(Py<PyAny>, Py<PyAny>)>>,
    /// Readiness a dispatch did not reach because a callback raised
    /// `KeyboardInterrupt` or `SystemExit`: handed out first by the next
    /// dispatch, since a one-shot wait is not reported twice.
    io_left: GilCell<Vec<pyloop_core::IoEvent>>,
    /// Poll even a busy loop's self-pipe: set while signal handlers exist,
    /// since asyncio delivers signals through it.
    poll_self_pipe: AtomicBool,
    timers: GilCell<Timers<ScheduledTimer>>,
    /// Timers cancelled since the last turn (counted by `TimerHandle.cancel`).
    cancelled_timers: Arc<AtomicUsize>,
    /// The running thread's token; 0 while the loop is not running.
    running_thread: AtomicU64,
    stopping: AtomicBool,
    /// During the interpreter's exit: this loop was given work by the exiting
    /// thread (or started after the exit began), and runs as usual from then
    /// on, only looking whether the interpreter finalizes after each wait.
    serving_exit: AtomicBool,
    /// During the interpreter's exit: the exiting thread sent this loop work.
    exit_request: AtomicBool,
    closed: AtomicBool,
    debug: AtomicBool,
    /// `{"loop": <this loop>}`, the keywords of `asyncio.Future(loop=...)`
    /// and `asyncio.Task(coro, loop=...)`, made at the first use and dropped
    /// at `close()`. CPython turns keywords passed by vectorcall into a new
    /// dictionary for a type without its own vectorcall (asyncio's `Future`
    /// and `Task` on 3.11-3.13); a dictionary given as is goes through. It
    /// makes a cycle with the loop, which `traverse` reports.
    loop_keywords: GilCell<Option<Py<PyDict>>>,
    /// The task factory (`set_task_factory`), if any.
    task_factory: GilCell<Option<Py<PyAny>>>,
    /// The read buffer, and the `bytes` of a transport's last read if its
    /// protocol did not keep it (the next read of the same length reuses
    /// it); `close()` lets go of both (`spare_bytes.rs`).
    spare_bytes: SpareBytes,
}
// ANCHOR_END: core

/// A loop in `run_forever`: when it ends, also by a panic unwinding through
/// it, the consumer's state goes back into its cell and the loop is marked
/// stopped and not running, so that it can run again or be closed. (Without
/// this, a panic left the loop "already running" for good.)
struct Running<'a, Q: ReadyQueue<HandleRef>> {
    core: &'a LoopCore<Q>,
    py: Python<'a>,
    consumer: Option<Q::Consumer>,
}

impl<Q: ReadyQueue<HandleRef>> Drop for Running<'_, Q> {
    fn drop(&mut self) {
        let consumer = self.consumer.take();
        self.core.consumer.with(self.py, |slot| *slot = consumer);
        self.core.stopping.store(false, Relaxed);
        self.core.running_thread.store(0, Relaxed);
    }
}

impl<Q: ReadyQueue<HandleRef>> LoopCore<Q> {
    /// A new loop's state; fails if the phase's queue cannot get what it needs
    /// from the system (3.2.1: an epoll set and an eventfd, so `EMFILE` when the
    /// process is out of descriptors).
    pub fn new() -> io::Result<Self> {
        let queue = Q::try_new()?;
        let consumer = queue.consumer();
        Ok(LoopCore {
            queue,
            consumer: GilCell::new(Some(consumer)),
            local: GilCell::new(VecDeque::new()),
            io_fds: AtomicUsize::new(0),
            transports: GilCell::new(FdMap::default()),
            fd_waits: GilCell::new(FdWaits::default()),
            io_events: GilCell::new(Vec::new()),
            attached_polls_skipped: GilCell::new(0),
            left_to_coroutines: GilCell::new(Vec::new()),
            io_left: GilCell::new(Vec::new()),
            poll_self_pipe: AtomicBool::new(false),
            timers: GilCell::new(Timers::new()),
            cancelled_timers: Arc::new(AtomicUsize::new(0)),
            running_thread: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            serving_exit: AtomicBool::new(false),
            exit_request: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            debug: AtomicBool::new(false),
            loop_keywords: GilCell::new(None),
            task_factory: GilCell::new(None),
            spare_bytes: SpareBytes::new(),
        })
    }

    pub(crate) fn check_closed(&self) -> PyResult<()> {
        if self.closed.load(Relaxed) {
            Err(closed_error())
        } else {
            Ok(())
        }
    }

    /// True if the caller is the running loop's thread.
    fn on_loop_thread(&self, py: Python<'_>) -> bool {
        self.running_thread.load(Relaxed) == thread_token(py)
    }

    /// In debug mode, asyncio's checks for non-thread-safe calls and for
    /// coroutines passed as callbacks.
    fn debug_checks(
        &self,
        py: Python<'_>,
        callback: &Bound<'_, PyAny>,
        method: &str,
        threadsafe: bool,
    ) -> PyResult<()> {
        if !self.debug.load(Relaxed) {
            return Ok(());
        }
        let running = self.running_thread.load(Relaxed);
        if !threadsafe && running != 0 && running != thread_token(py) {
            return Err(PyRuntimeError::new_err(
                "Non-thread-safe operation invoked on an event loop other than the current one",
            ));
        }
        static IS_COROUTINE_FUNCTION: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let iscorofn =
            IS_COROUTINE_FUNCTION.import(py, "asyncio.coroutines", "iscoroutinefunction")?;
        if crate::is_coroutine(py, callback)? || iscorofn.call1((callback,))?.is_truthy()? {
            return Err(PyTypeError::new_err(format!(
                "coroutines cannot be used with {method}()"
            )));
        }
        Ok(())
    }

    // ANCHOR: schedule
    /// Queues `handle`: on the loop's own lane if called on the loop thread
    /// or while the loop is not running, otherwise on the phase's queue.
    #[inline(always)]
    fn schedule(&self, py: Python<'_>, handle: HandleRef) -> PyResult<()> {
        let running = self.running_thread.load(Relaxed);
        let own_lane = if running == 0 {
            // Not running, so the loop thread is not using its consumer state:
            // the GIL we hold makes this look safe from any thread. What other
            // threads sent meanwhile (or a `stop()` left in the phase's queue)
            // goes first, and everything after it in order: one lane, as
            // asyncio's one ready queue, so that timers falling due later run
            // after all of it, as they do in asyncio.
            self.move_pending_to_own_lane(py);
            true
        } else {
            running == thread_token(py)
        };
        if own_lane {
            self.local
                .with(py, |lane| lane.push_back(Ready::Native(handle)));
            return Ok(());
        }
        if exit_park::exiting() && exit_park::on_exiting_thread() {
            // An atexit handler sends this loop work: it serves it (see
            // `wait_out_exit`); a daemon thread's sends do not wake it then.
            self.exit_request.store(true, Relaxed);
        }
        match self.queue.try_push(handle) {
            Ok(()) => Ok(()),
            Err(TryPushError::Closed(handle)) => {
                drop(handle);
                Err(closed_error())
            }
            // The lock is held, maybe by a loop running a batch under it, which
            // needs the GIL we hold: let go of the GIL while waiting.
            Err(TryPushError::Contended(handle)) => py
                .detach(|| self.queue.push(handle).map_err(|closed| closed.0))
                .map_err(|handle| {
                    drop(handle);
                    closed_error()
                }),
        }
    }

    /// Wakes the loop from another thread. The queue's lock may be held by the
    /// loop thread running a batch under it (phases 3.1.1-3.1.3), and that batch
    /// needs the GIL we hold: if the lock is taken, wait for it detached.
    fn wake_from_other_thread(&self, py: Python<'_>) {
        if !self.queue.try_wake() {
            py.detach(|| self.queue.wake());
        }
    }
    // ANCHOR_END: schedule

    /// `loop.call_soon` and `loop.call_soon_threadsafe`.
    #[inline(always)]
    pub(crate) fn call_soon(
        &self,
        py: Python<'_>,
        callback: &Bound<'_, PyAny>,
        args: ArgRefs<'_>,
        context: Option<&Bound<'_, PyAny>>,
        threadsafe: bool,
    ) -> PyResult<HandleRef> {
        self.check_closed()?;
        let method = if threadsafe {
            "call_soon_threadsafe"
        } else {
            "call_soon"
        };
        if threadsafe && exit_park::exiting() {
            exit_park::park_producer(py, self.running_thread.load(Relaxed));
        }
        let debug = self.debug.load(Relaxed);
        // In debug mode Python code runs below (the checks, the creation
        // stack): a producer is counted meanwhile, for the interpreter's exit.
        let _counted = debug.then(|| {
            let served = exit_park::serves_exit(self.running_thread.load(Relaxed));
            exit_park::ProducerCall::enter(py, served)
        });
        if debug {
            self.debug_checks(py, callback, method, threadsafe)?;
        }
        let handle = HandleRef::new(py, method, callback, args, context, debug, None)?;
        self.schedule(py, handle.clone_ref(py))?;
        Ok(handle)
    }

    /// `loop.call_at`.
    pub(crate) fn call_at(
        &self,
        py: Python<'_>,
        method: &str,
        when: f64,
        callback: &Bound<'_, PyAny>,
        args: ArgRefs<'_>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<HandleRef> {
        if when.is_nan() {
            return Err(PyValueError::new_err("when must not be NaN"));
        }
        self.check_closed()?;
        let debug = self.debug.load(Relaxed);
        if debug {
            self.debug_checks(py, callback, method, false)?;
        }
        let timer = TimerPart::new(when, self.cancelled_timers.clone());
        let handle = HandleRef::new(py, method, callback, args, context, debug, Some(timer))?;
        let entry = ScheduledTimer(handle.clone_ref(py));
        self.timers.with(py, |timers| timers.push(when, entry));
        if self.is_running() && !self.on_loop_thread(py) {
            // Not thread-safe in asyncio either, but harmless here (the heap is
            // guarded by the GIL): wake the loop so it sees the new deadline.
            self.wake_from_other_thread(py);
        }
        Ok(handle)
    }

    /// `loop.time()`.
    pub fn time(&self) -> f64 {
        monotonic()
    }

    /// `loop.stop()`: the loop finishes its current turn, then returns.
    pub fn stop(&self, py: Python<'_>) {
        self.stopping.store(true, Relaxed);
        // Waking takes the queue's lock, which the loop thread may hold while
        // running a batch (phases 3.1.1-3.1.3): only other threads wake it.
        if !self.on_loop_thread(py) {
            self.wake_from_other_thread(py);
        }
    }

    /// True while `run_forever` runs.
    pub fn is_running(&self) -> bool {
        self.running_thread.load(Relaxed) != 0
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Relaxed)
    }

    /// Debug mode on or off.
    pub fn set_debug(&self, enabled: bool) {
        self.debug.store(enabled, Relaxed);
    }

    /// True in debug mode.
    pub fn get_debug(&self) -> bool {
        self.debug.load(Relaxed)
    }

    /// Closes the loop: refuses new callbacks and drops every pending one.
    pub fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.is_running() {
            return Err(PyRuntimeError::new_err("Cannot close a running event loop"));
        }
        if self.closed.swap(true, Relaxed) {
            return Ok(());
        }
        self.queue.close();
        let pending = self.take_pending(py);
        // As asyncio closes its selector: release the epoll set and eventfd.
        self.queue.close_io();
        pending.release(py);
        let keywords = self.loop_keywords.with(py, Option::take);
        drop(keywords);
        crate::handle::release_all_spare_handles(py);
        // A closed loop reads no more: its read buffer and kept `bytes` go
        // now, not when the loop object is freed (a finished task keeps its
        // loop alive).
        self.spare_bytes.release(py);
        Ok(())
    }

    // ANCHOR: loop_keywords
    /// The loop's `{"loop": <the loop>}` (see `loop_keywords`), made at the
    /// first call and kept while the loop is open; a closed loop makes a new
    /// one each time and keeps none, so that closing breaks the cycle for good.
    #[inline]
    fn loop_keywords<'py>(&self, event_loop: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
        let py = event_loop.py();
        let cached = self
            .loop_keywords
            .with(py, |k| k.as_ref().map(|d| d.clone_ref(py)));
        match cached {
            Some(keywords) => Ok(keywords.into_bound(py)),
            None => self.make_loop_keywords(event_loop),
        }
    }

    /// [`loop_keywords`](Self::loop_keywords) when none is kept: makes the
    /// dictionary, and keeps it if the loop is open.
    #[cold]
    #[inline(never)]
    fn make_loop_keywords<'py>(
        &self,
        event_loop: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let py = event_loop.py();
        let keywords = PyDict::new(py);
        keywords.set_item(intern!(py, "loop"), event_loop)?;
        // Checked after making it: making the dictionary can run the
        // collector, and a finalizer may have closed the loop meanwhile.
        if !self.closed.load(Relaxed) {
            let stored = keywords.clone().unbind();
            let replaced = self.loop_keywords.with(py, |k| k.replace(stored));
            drop(replaced);
        }
        Ok(keywords)
    }

    /// `create_future`: `asyncio.Future(loop=event_loop)`, with the loop's
    /// keyword dictionary.
    pub fn create_future<'py>(
        &self,
        event_loop: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = event_loop.py();
        let keywords = self.loop_keywords(event_loop)?;
        exit_park::call_with(future_type(py)?, empty_tuple(py), Some(&keywords))
    }

    /// `create_task(coro)` with no name, no context, no task factory, on an
    /// open loop not in debug mode: `asyncio.Task(coro, loop=event_loop)`, with
    /// the loop's keyword dictionary. `None` when any of that does not hold;
    /// the caller then takes the general path (in Python).
    pub fn create_plain_task<'py>(
        &self,
        event_loop: &Bound<'py, PyAny>,
        coro: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = event_loop.py();
        // Debug mode trims the task's creation traceback, which the general
        // path does.
        if self.closed.load(Relaxed)
            || self.debug.load(Relaxed)
            || self.task_factory.with(py, |f| f.is_some())
        {
            return Ok(None);
        }
        let keywords = self.loop_keywords(event_loop)?;
        let arguments = PyTuple::new(py, [coro])?;
        exit_park::call_with(task_type(py)?, &arguments, Some(&keywords)).map(Some)
    }
    // ANCHOR_END: loop_keywords

    /// Takes every pending callback, timer and transport out of the loop's
    /// state, for the caller to drop after every borrow has ended.
    fn take_pending(&self, py: Python<'_>) -> Pending {
        let mut handles = self.drain_queue(py);
        let mut foreign: Vec<Py<PyAny>> = Vec::new();
        for ready in self.local.with(py, std::mem::take) {
            match ready {
                Ready::Native(handle) => handles.push(handle),
                Ready::Foreign(handle) => foreign.push(handle),
            }
        }
        let timers = self.timers.with(py, |t| t.drain().collect());
        let transports = self.transports.with(py, std::mem::take);
        let waits = self.fd_waits.with(py, FdWaits::drain);
        Pending {
            handles,
            foreign,
            timers,
            transports,
            waits,
        }
    }

    /// `__traverse__` of the loop classes: what the loop holds that the
    /// collector must see to find cycles through it. Timer handles are
    /// reported as the objects they are; plain handles are not tracked by the
    /// collector (see `handle.rs`); one that only the loop holds is the
    /// loop's, so the loop reports what it holds instead. Items still in the
    /// phase's shared queue are not reported (that would need its lock): a
    /// cycle through them is kept alive, never freed early.
    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.local
            .peek_in_traverse(visit, |lane| {
                for ready in lane {
                    match ready {
                        Ready::Native(handle) => visit_pending_handle(visit, handle)?,
                        Ready::Foreign(handle) => visit.call(handle)?,
                    }
                }
                Ok(())
            })
            .unwrap_or(Ok(()))?;
        self.consumer
            .peek_in_traverse(visit, |consumer| {
                let mut result = Ok(());
                if let Some(consumer) = consumer {
                    Q::for_each_taken(consumer, &mut |handle| {
                        if result.is_ok() {
                            result = visit_pending_handle(visit, handle);
                        }
                    });
                }
                result
            })
            .unwrap_or(Ok(()))?;
        self.timers
            .peek_in_traverse(visit, |timers| {
                let mut result = Ok(());
                timers.for_each(|ScheduledTimer(timer)| {
                    if result.is_ok() {
                        result = visit_pending_handle(visit, timer);
                    }
                });
                result
            })
            .unwrap_or(Ok(()))?;
        self.fd_waits
            .peek_in_traverse(visit, |waits| waits.traverse(visit))
            .unwrap_or(Ok(()))?;
        self.transports
            .peek_in_traverse(visit, |transports| {
                transports.values().try_for_each(|t| visit.call(t))
            })
            .unwrap_or(Ok(()))?;
        self.loop_keywords
            .peek_in_traverse(visit, |keywords| visit.call(keywords))
            .unwrap_or(Ok(()))?;
        self.task_factory
            .peek_in_traverse(visit, |factory| visit.call(factory))
            .unwrap_or(Ok(()))
    }

    /// The task factory, if any.
    pub fn task_factory(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.task_factory
            .with(py, |f| f.as_ref().map(|f| f.clone_ref(py)))
    }

    /// Sets (or with `None` removes) the task factory.
    pub fn set_task_factory(&self, py: Python<'_>, factory: Option<Py<PyAny>>) {
        let old = self
            .task_factory
            .with(py, |f| std::mem::replace(f, factory));
        drop(old);
    }

    /// `__clear__` of the loop classes: the loop is part of a cycle that is
    /// garbage. Its finalizer (`__del__`, with a `ResourceWarning`) has closed
    /// it already unless it failed; either way, let go of everything.
    pub fn clear(&self, py: Python<'_>) {
        if self.is_running() {
            return;
        }
        if !self.closed.swap(true, Relaxed) {
            self.queue.close();
            self.queue.close_io();
        }
        self.take_pending(py).release(py);
        let keywords = self.loop_keywords.with(py, Option::take);
        drop(keywords);
        let factory = self.task_factory.with(py, Option::take);
        drop(factory);
    }

    /// The phase queue's counters, as a dict.
    pub fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.queue.stats().snapshot();
        let d = PyDict::new(py);
        d.set_item("phase", Q::PHASE.tag())?;
        d.set_item("pushes", s.pushes)?;
        d.set_item("contended_pushes", s.contended_pushes)?;
        d.set_item("push_wait_ns", s.push_wait_ns)?;
        d.set_item("push_wait_max_ns", s.push_wait_max_ns)?;
        d.set_item("batches", s.batches)?;
        d.set_item("callbacks", s.callbacks)?;
        d.set_item("hold_ns", s.hold_ns)?;
        d.set_item("hold_max_ns", s.hold_max_ns)?;
        d.set_item("hold_p50_ns", s.hold_quantile_ns(0.5))?;
        d.set_item("hold_p99_ns", s.hold_quantile_ns(0.99))?;
        d.set_item("consumer_wait_ns", s.consumer_wait_ns)?;
        d.set_item("idle_waits", s.idle_waits)?;
        Ok(d)
    }

    // ANCHOR: run_forever
    /// The body of `run_forever`, after the Python side has made its checks
    /// and set the running loop: turns until `stop()`.
    pub fn run_forever(&self, event_loop: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = event_loop.py();
        self.check_closed()?;
        if self
            .running_thread
            .compare_exchange(0, thread_token(py), Relaxed, Relaxed)
            .is_err()
        {
            return Err(PyRuntimeError::new_err(
                "This event loop is already running",
            ));
        }
        // The consumer's state stays out of its cell while the loop runs: only
        // this thread uses it, and nothing a callback does can reach it then.
        let Some(consumer) = self.consumer.with(py, Option::take) else {
            self.running_thread.store(0, Relaxed);
            return Err(PyRuntimeError::new_err(
                "This event loop is already running",
            ));
        };
        let mut running = Running {
            core: self,
            py,
            consumer: Some(consumer),
        };
        let registered = exit_park::Registered::enter();
        // A loop started during the interpreter's exit runs as any other until
        // it is idle; one running when the exit began stops at its next turn.
        self.serving_exit.store(exit_park::exiting(), Relaxed);
        let mut turns: u32 = 0;
        let result = loop {
            let consumer = running.consumer.as_mut().expect("put back only on drop");
            if exit_park::exiting_elsewhere() && !self.serving_exit.load(Relaxed) {
                exit_park::leave();
                py.detach(|| self.wait_out_exit(consumer));
                exit_park::note_attached_anyway();
            }
            if let Err(err) = self.run_once(event_loop, consumer) {
                break Err(err);
            }
            turns = turns.wrapping_add(1);
            if turns % TURNS_BETWEEN_INTERPRETER_TURNS == 0 {
                if let Err(err) = interpreter_turn(py) {
                    break Err(err);
                }
            }
            if self.stopping.load(Relaxed) {
                break Ok(());
            }
        };
        drop(registered);
        drop(running);
        // Callbacks other threads sent that the last batches did not reach go
        // onto the lane now, as a call made while the loop is stopped would
        // move them (`schedule`): there the loop's traverse sees them, and a
        // loop dropped without `close()` with one that refers back to it (say
        // `call_soon_threadsafe(loop.stop)`) is collected. Only a push that
        // was waiting for the queue's lock as the loop stopped can land in
        // the queue after this.
        self.move_pending_to_own_lane(py);
        result
    }
    // ANCHOR_END: run_forever

    // ANCHOR: wait_out_exit
    /// During the interpreter's exit (`exit_park.rs`), called detached: waits
    /// until the exiting thread (an atexit handler) sends this loop work, and
    /// parks the thread for good if the interpreter begins to finalize first
    /// (taking the GIL back would then end the thread under the loop's
    /// frames). Work from other threads, a daemon producer's, waits. Once given work,
    /// the loop runs as usual (timers, I/O, its own callbacks), only looking
    /// whether the interpreter finalizes each time it comes back from a wait.
    fn wait_out_exit(&self, consumer: &mut Q::Consumer) {
        loop {
            if exit_park::finalizing() {
                exit_park::park_forever();
            }
            if self.exit_request.load(Relaxed) && self.queue.has_pending(consumer) {
                self.serving_exit.store(true, Relaxed);
                return;
            }
            self.queue.wait(consumer, Some(EXIT_POLL));
        }
    }
    // ANCHOR_END: wait_out_exit

    // ANCHOR: run_once
    /// One turn: wait for work or the next timer, move due timers to the
    /// lane, run the lane's callbacks that were ready at the start of the
    /// turn, then one bounded batch from the phase's queue.
    fn run_once(&self, event_loop: &Bound<'_, PyAny>, consumer: &mut Q::Consumer) -> PyResult<()> {
        let py = event_loop.py();
        // A plain load first: the swap is a locked instruction, and most turns
        // have no cancelled timer to count.
        let cancelled = match self.cancelled_timers.load(Relaxed) {
            0 => 0,
            _ => self.cancelled_timers.swap(0, Relaxed),
        };
        let (next_deadline, discarded) = self.timers.with(py, |timers| {
            if timers.is_empty() {
                return (None, None);
            }
            for _ in 0..cancelled {
                timers.note_cancelled();
            }
            (timers.next_deadline(), timers.take_discarded_if_any())
        });
        drop(discarded);

        let io_left = self.io_left.with(py, |left| !left.is_empty());
        let has_work = self.stopping.load(Relaxed)
            || io_left
            || self.local.with(py, |lane| !lane.is_empty())
            || self.queue.has_pending(consumer);
        let io = self.queue.poller().is_some();
        let watching = io && (self.io_fds.load(Relaxed) > 0 || self.poll_self_pipe.load(Relaxed));
        let mut waited = false;
        if !has_work {
            let timeout = match next_deadline {
                None => MAX_IDLE_WAIT,
                Some(when) => Duration::from_secs_f64(
                    (when - monotonic())
                        .max(0.0)
                        .min(MAX_IDLE_WAIT.as_secs_f64()),
                ),
            };
            if watching && !timeout.is_zero() && self.poll_io_attached(py) {
                // Readiness was there already: no need to let the GIL go.
                waited = true;
            } else if io || !timeout.is_zero() {
                if !timeout.is_zero() {
                    // Idle: what a burst left on the handles' free list goes back.
                    crate::handle::release_spare_handles(py);
                }
                py.detach(|| {
                    exit_park::leave();
                    self.queue.wait(consumer, Some(timeout));
                    self.rejoin_after_detach(consumer);
                });
                waited = true;
                py.check_signals()?;
            }
        } else if watching {
            // Busy, but sockets must not starve: look without blocking.
            self.queue.wait(consumer, Some(Duration::ZERO));
            waited = true;
        }
        if io && (waited || io_left) {
            self.dispatch_io(event_loop, consumer)?;
        }

        if let Some(first) = next_deadline {
            let end = monotonic() + CLOCK_RESOLUTION;
            if first <= end {
                let (due, discarded) = self.timers.with(py, |timers| {
                    let mut due = Vec::new();
                    while let Some(ScheduledTimer(timer)) = timers.pop_due(end) {
                        due.push(timer);
                    }
                    (due, timers.take_discarded_if_any())
                });
                drop(discarded);
                for timer in due {
                    timer.set_unscheduled();
                    self.local
                        .with(py, |lane| lane.push_back(Ready::Native(timer)));
                }
            }
        }

        let debug = self.debug.load(Relaxed);
        let ready = self.local.with(py, |lane| lane.len());
        let mut left = ready;
        'lane: while left > 0 {
            let chunk = left.min(CALLBACKS_BETWEEN_INTERPRETER_TURNS);
            for _ in 0..chunk {
                match self.local.with(py, VecDeque::pop_front) {
                    Some(Ready::Native(handle)) => {
                        self.run_handle(py, &handle, event_loop, debug)?
                    }
                    Some(Ready::Foreign(handle)) => {
                        self.run_foreign(handle.bind(py), event_loop, debug)?
                    }
                    None => break 'lane,
                }
            }
            left -= chunk;
            if left > 0 {
                interpreter_turn(py)?;
            }
        }

        let mut fatal = None;
        let mut kept = 0;
        self.queue.run_batch(consumer, |handle| {
            if fatal.is_some() {
                // A callback of this batch raised KeyboardInterrupt or
                // SystemExit: keep the rest for the next run, in order, ahead
                // of what the batch's callbacks scheduled (asyncio's one ready
                // queue keeps the rest of a turn in front).
                self.local
                    .with(py, |lane| lane.insert(kept, Ready::Native(handle)));
                kept += 1;
            } else if let Err(err) = self.run_handle(py, &handle, event_loop, debug) {
                fatal = Some(err);
            }
        });
        fatal.map_or(Ok(()), Err)
    }

    /// Called detached, just before the GIL is taken again: back in the
    /// exit's count (`exit_park.rs`, which the detached thread left), or, if
    /// the interpreter is exiting meanwhile, waiting the exit out.
    fn rejoin_after_detach(&self, consumer: &mut Q::Consumer) {
        if !exit_park::note_attached() {
            if !self.serving_exit.load(Relaxed) {
                self.wait_out_exit(consumer);
            } else if exit_park::finalizing() {
                exit_park::park_forever();
            }
            exit_park::note_attached_anyway();
        }
    }

    // ANCHOR: poll_io_attached
    /// Looks for I/O readiness without sleeping and without letting go of the
    /// GIL; true if there was some (it waits in `io_events` for
    /// [`dispatch_io`](Self::dispatch_io)). A loop with nothing to run tries
    /// this before the wait that sleeps: when a peer's answer is already
    /// there (both ends of a connection in one loop, or a fast peer), the
    /// turn takes it without handing the GIL over and taking it back, which
    /// costs more than the system call. When it finds nothing, the loop
    /// makes two system calls where one would do, so after a miss the next
    /// seven idle turns do not try. (The phase's wake-up state is not
    /// touched: a push or a wake from another thread is found by the wait
    /// that follows when this finds nothing.)
    fn poll_io_attached(&self, py: Python<'_>) -> bool {
        const SKIP_AFTER_A_MISS: u8 = 7;
        let Some(poller) = self.queue.poller() else {
            return false;
        };
        let skip = self.attached_polls_skipped.with(py, |skipped| {
            let skip = *skipped > 0;
            *skipped = skipped.saturating_sub(1);
            skip
        });
        if skip {
            return false;
        }
        let found = self.io_events.with(py, |events| {
            let _ = poller.wait(events, Some(Duration::ZERO));
            !events.is_empty()
        });
        if !found {
            self.attached_polls_skipped
                .with(py, |skipped| *skipped = SKIP_AFTER_A_MISS);
        }
        found
    }
    // ANCHOR_END: poll_io_attached

    /// Moves every callback waiting in the phase's queue to the end of the
    /// loop's own lane, in order. Only while the loop is not running (its
    /// consumer state is then in its cell).
    fn move_pending_to_own_lane(&self, py: Python<'_>) {
        if !self.has_pending(py) {
            return;
        }
        let moved = self.drain_queue(py);
        self.local.with(py, |lane| {
            lane.extend(moved.into_iter().map(Ready::Native));
        });
    }

    /// Takes every callback out of the phase's queue, in order. Only while
    /// the loop is not running (its consumer state is then in its cell; the
    /// cell is not borrowed while the queue is drained).
    fn drain_queue(&self, py: Python<'_>) -> Vec<HandleRef> {
        let mut handles = Vec::new();
        if let Some(mut consumer) = self.consumer.with(py, Option::take) {
            while self.queue.run_batch(&mut consumer, |h| handles.push(h)) > 0 {}
            self.consumer.with(py, |slot| *slot = Some(consumer));
        }
        handles
    }

    /// True if the phase's queue or the consumer's state holds a callback.
    /// (While the loop waits or runs a batch the consumer's state is taken
    /// out, and only the shared queue is looked at.)
    fn has_pending(&self, py: Python<'_>) -> bool {
        self.consumer.with(py, |c| match c {
            Some(consumer) => self.queue.has_pending(consumer),
            None => false,
        })
    }

    // ANCHOR_END: run_once

    // ANCHOR: dispatch_io
    /// Hands the readiness found by the last wait to the native transports,
    /// and the rest to the Python side, which maps descriptors to asyncio's
    /// reader and writer handles and queues them with `_add_callback`
    /// (asyncio's `_process_events`).
    ///
    /// What one descriptor's readiness runs is, for asyncio, a callback, so
    /// it ends as one does: an exception goes to the loop's exception handler
    /// and the loop goes on with the next descriptor; `KeyboardInterrupt` and
    /// `SystemExit` leave the loop, and the readiness not yet handed out is
    /// kept for the next turn (a one-shot wait is not reported again).
    fn dispatch_io(
        &self,
        event_loop: &Bound<'_, PyAny>,
        consumer: &mut Q::Consumer,
    ) -> PyResult<()> {
        let py = event_loop.py();
        let mut events = self.io_events.with(py, std::mem::take);
        self.io_left.with(py, |left| events.append(left));
        self.queue.take_io_events(consumer, &mut events);
        let mut others: Vec<(i32, u8)> = Vec::new();
        let mut woken: Vec<Waiter> = Vec::new();
        let mut outcome = Ok(());
        // What asyncio would run before a socket method's reader or writer
        // callback may cancel the method's wait: the callbacks queued before
        // this readiness (here), and the readers and writers that go to
        // Python, after every native event, below (`dispatch_event`).
        // Then the method's call is left to its coroutine (`complete_waits`),
        // and its future completed after those readers are queued.
        // (Asked only if a socket method waits: a turn of native transports
        // alone does not pay for it.)
        let waits = self.fd_waits.with(py, |w| w.any());
        let queued = waits
            && (self.local.with(py, |lane| !lane.is_empty()) || self.queue.has_pending(consumer));
        let after = if queued {
            Callbacks::Queued
        } else {
            Callbacks::None
        };
        for (index, &event) in events.iter().enumerate() {
            let Err(err) = self.dispatch_event(event_loop, event, after, &mut others, &mut woken)
            else {
                continue;
            };
            let Err(fatal) = report_unless_fatal(event_loop, event.fd, err) else {
                continue;
            };
            let left = others
                .drain(..)
                .map(|(fd, mask)| pyloop_core::IoEvent {
                    fd,
                    readable: mask & 1 != 0,
                    writable: mask & 2 != 0,
                })
                .chain(events[index + 1..].iter().copied())
                .collect();
            self.io_left.with(py, |slot| *slot = left);
            outcome = Err(fatal);
            break;
        }
        events.clear();
        self.io_events.with(py, |spare| *spare = events);
        let python = match outcome {
            Ok(()) if !others.is_empty() => event_loop
                .call_method1(intern!(py, "_pyloop_io_ready"), (others,))
                .map(drop),
            done => done,
        };
        if !waits || self.left_to_coroutines.with(py, |ready| ready.is_empty()) {
            return python;
        }
        // Completed whatever happened above: their waits are out of the map.
        let ready = self.left_to_coroutines.with(py, std::mem::take);
        python.and(complete_left_to_coroutines(py, ready))
    }
    // ANCHOR_END: dispatch_io

    /// One descriptor's readiness: its native transport's, its socket
    /// methods' waits (every woken wait is completed even if one fails; the
    /// first error is returned), or else queued in `others` for Python.
    fn dispatch_event(
        &self,
        event_loop: &Bound<'_, PyAny>,
        event: pyloop_core::IoEvent,
        after: Callbacks,
        others: &mut Vec<(i32, u8)>,
        woken: &mut Vec<Waiter>,
    ) -> PyResult<()> {
        let py = event_loop.py();
        let transport = self
            .transports
            .with(py, |t| t.get(&event.fd).map(|tr| tr.clone_ref(py)));
        if let Some(transport) = transport {
            return TcpTransportCore::on_ready(
                transport.bind(py),
                event.readable,
                event.writable,
                &self.spare_bytes,
            );
        }
        let waited = self.fd_waits.with(py, |w| {
            w.take_ready(event.fd, event.readable, event.writable, woken)
        });
        let armed = match waited {
            // The event disabled the one-shot registration: arm it again
            // for the waiters of the other direction, if any.
            Some(Interest::Arm { read, write }) => self.rearm_or_fail(py, event.fd, read, write),
            Some(Interest::Idle) => {
                self.forget_io_fd();
                Ok(())
            }
            Some(Interest::Shared(sharing)) => self.shared_event_done(py, event, sharing, others),
            None => {
                others.push((event.fd, mask(event.readable, event.writable)));
                Ok(())
            }
        };
        // A reader or writer asyncio's selector has, of an earlier event or of
        // this one (asyncio runs a descriptor's reader before its writer),
        // goes to Python before the waits would be completed.
        let after = if others.is_empty() {
            after
        } else {
            Callbacks::Queued
        };
        let completed = self.complete_waits(event_loop, event.fd, after, woken.drain(..));
        armed.and(completed)
    }

    /// The rest of [`dispatch_event`](Self::dispatch_event) for a descriptor
    /// asyncio's selector watches too (`sharing`, after the waits the event
    /// woke were taken out): the event's directions the selector watches go
    /// to Python, and the registration stops watching those of the waits
    /// woken. Out of line, as the path of a program that mixes both.
    #[cold]
    #[inline(never)]
    fn shared_event_done(
        &self,
        py: Python<'_>,
        event: pyloop_core::IoEvent,
        sharing: Sharing,
        others: &mut Vec<(i32, u8)>,
    ) -> PyResult<()> {
        let ready = mask(event.readable, event.writable) & sharing.python();
        if ready != 0 {
            others.push((event.fd, ready));
        }
        if !sharing.waiting() {
            self.forget_io_fd();
        }
        let watch = sharing.watch();
        watch.map_or(Ok(()), |events| self.rewatch_or_fail(py, event.fd, events))
    }

    /// Makes the epoll set watch `fd`, a native transport's own descriptor, for
    /// `events` (1 read, 2 write; 0 stops watching it and forgets the transport).
    pub(crate) fn watch_transport(
        &self,
        py: Python<'_>,
        fd: i32,
        transport: &Bound<'_, TcpTransportCore>,
        events: u8,
    ) -> PyResult<()> {
        let poller = self.poller()?;
        let known = self.transports.with(py, |t| match t.get(&fd) {
            None => Ok(false),
            Some(held) if held.as_ptr() == transport.as_ptr() => Ok(true),
            // A transport closes its descriptor only after it stops watching
            // it, so a number in the map belongs to the transport that put it there.
            Some(_) => Err(()),
        });
        let known = known.map_err(|()| {
            PyRuntimeError::new_err(format!("descriptor {fd} is watched for another transport"))
        })?;
        let (read, write) = (events & 1 != 0, events & 2 != 0);
        match (known, events) {
            (false, 0) => {}
            (true, 0) => {
                let _ = poller.deregister(fd);
                let gone = self.transports.with(py, |t| t.remove(&fd));
                drop(gone);
                self.forget_io_fd();
            }
            (true, _) => poller.modify(fd, read, write).map_err(os_error)?,
            (false, _) => {
                self.check_closed()?;
                poller.register(fd, read, write).map_err(os_error)?;
                let held = transport.clone().unbind();
                let old = self.transports.with(py, |t| t.insert(fd, held));
                drop(old);
                self.io_fds.fetch_add(1, Relaxed);
            }
        }
        Ok(())
    }

    /// Runs a handle made by asyncio's code through its own `_run()`, unless
    /// it was cancelled; `_run()` reports exceptions itself.
    fn run_foreign(
        &self,
        handle: &Bound<'_, PyAny>,
        event_loop: &Bound<'_, PyAny>,
        debug: bool,
    ) -> PyResult<()> {
        let py = handle.py();
        if handle.getattr(intern!(py, "_cancelled"))?.is_truthy()? {
            return Ok(());
        }
        let started = debug.then(monotonic);
        exit_park::call_method0(handle, intern!(py, "_run"))?;
        if let Some(started) = started {
            self.warn_if_slow(event_loop, handle, monotonic() - started)?;
        }
        Ok(())
    }

    /// Queues a handle made by asyncio's own code on the loop's lane.
    pub fn add_callback(&self, handle: Bound<'_, PyAny>) {
        let py = handle.py();
        let ready = match HandleRef::from_object(&handle) {
            Some(native) => Ready::Native(native),
            None => Ready::Foreign(handle.unbind()),
        };
        self.local.with(py, |lane| lane.push_back(ready));
    }

    fn poller(&self) -> PyResult<&pyloop_core::Poller> {
        self.queue.poller().ok_or_else(|| {
            pyo3::exceptions::PyNotImplementedError::new_err(format!(
                "phase {} cannot wait for I/O: its idle loop {}; use phase {} (this build's \
                 default phase is {})",
                Q::PHASE.tag(),
                if Q::PHASE.polls_when_idle() {
                    "polls a queue with sleeps"
                } else {
                    "sleeps on a condition variable, which a socket cannot wake"
                },
                pyloop_core::Phase::EpollWake.tag(),
                crate::BUILD_DEFAULT_PHASE.tag(),
            ))
        })
    }

    /// Starts watching `fd` for `events` (1: read, 2: write, as `selectors`)
    /// for asyncio's selector (a reader or writer). A descriptor with pending
    /// waits of the socket methods in the other direction is shared with
    /// them (see `fd_wait.rs`); one in the same direction is refused.
    /// A number that is a native transport's own duplicate is refused, as
    /// asyncio refuses a transport's descriptor: it can only come from a
    /// socket closed meanwhile. So is one of the loop's own epoll set and
    /// eventfd.
    pub fn io_register(&self, py: Python<'_>, fd: i32, events: u8, internal: bool) -> PyResult<()> {
        if self.transport_holds(py, fd) {
            return Err(PyRuntimeError::new_err(format!(
                "File descriptor {fd} is used by a transport of this loop"
            )));
        }
        if self.poller()?.owns(fd) {
            return Err(PyRuntimeError::new_err(format!(
                "File descriptor {fd} is used by the loop itself (its epoll set or eventfd)"
            )));
        }
        let native = self.claim_for_python(py, fd, events)?;
        let watched = events | native;
        // A descriptor with pending waits is in the set, armed one-shot: this
        // makes it level-triggered, for the union.
        self.poller()?
            .register(fd, watched & READ != 0, watched & WRITE != 0)
            .map_err(os_error)?;
        if !internal {
            self.fd_waits
                .with(py, |w| w.set_python(fd, events, watched));
            self.io_fds.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    /// Changes what `fd` is watched for by asyncio's selector, which
    /// registered it (a reader added or removed while the other stays); the
    /// directions of pending waits stay watched, and a wait in a direction
    /// added is refused as [`io_register`](Self::io_register) refuses it.
    /// A number a native transport's duplicate has taken meanwhile is not
    /// the selector's any more: as for any number whose file left the epoll
    /// set, `FileNotFoundError`, and the transport's registration is left
    /// alone.
    pub fn io_modify(&self, py: Python<'_>, fd: i32, events: u8) -> PyResult<()> {
        if self.transport_holds(py, fd) {
            return Err(os_error(io::Error::from_raw_os_error(libc::ENOENT)));
        }
        let shared = self.fd_waits.with(py, |w| w.python(fd)).is_some();
        let native = if shared {
            self.claim_for_python(py, fd, events)?
        } else {
            0
        };
        let watched = events | native;
        self.poller()?
            .modify(fd, watched & READ != 0, watched & WRITE != 0)
            .map_err(os_error)?;
        if shared {
            self.fd_waits
                .with(py, |w| w.set_python(fd, events, watched));
        }
        Ok(())
    }

    /// Stops watching `fd` for asyncio's selector. Pending waits on it keep
    /// it, armed one-shot again for their directions; otherwise it leaves
    /// the epoll set. A descriptor already closed is gone from the epoll set
    /// anyway; that is not an error.
    pub fn io_unregister(&self, py: Python<'_>, fd: i32, internal: bool) -> PyResult<()> {
        let native = self.fd_waits.with(py, |w| w.forget_python(fd));
        if !internal {
            self.forget_io_fd();
        }
        if !self.transport_holds(py, fd) {
            // Readiness kept from a turn a KeyboardInterrupt cut short was the
            // selector's file's: the number may be given to another file before
            // the loop runs again. (A pending wait's one-shot registration is
            // armed again below, and reports its file's readiness afresh.)
            self.io_left
                .with(py, |left| left.retain(|event| event.fd != fd));
        }
        if native != 0 && self.has_live_wait(py, fd) {
            return self.rearm_or_fail(py, fd, native & READ != 0, native & WRITE != 0);
        }
        // The selector's file was closed and the number is a native
        // transport's duplicate now: its registration is not the selector's.
        if self.transport_holds(py, fd) {
            return Ok(());
        }
        match self.poller()?.deregister(fd) {
            Ok(()) => {}
            Err(e)
                if e.raw_os_error() == Some(libc::EBADF)
                    || e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(os_error(e)),
        }
        Ok(())
    }

    // ANCHOR: claim_for_python
    /// Before asyncio's selector watches `fd` for `events`: the directions
    /// of the waits pending on it, which the registration must keep
    /// watching. A pending wait in a direction of `events`, of a socket that
    /// still holds `fd`, is refused: the reader or writer would take its
    /// readiness, and asyncio's would replace it, leaving its call pending
    /// for ever (tests/deviations.py). Waits that all belong to sockets
    /// closed meanwhile (the number was given to a new socket) are failed
    /// first with `EBADF`, as their call would.
    fn claim_for_python(&self, py: Python<'_>, fd: i32, events: u8) -> PyResult<u8> {
        if !self.fd_waits.with(py, |w| w.contains(fd)) {
            return Ok(0);
        }
        let sockets = self.fd_waits.with(py, |w| w.sockets(py, fd));
        let mut live = 0;
        let mut any_live = false;
        for (sock, direction) in &sockets {
            if holds_fd(sock.bind(py), fd) {
                live |= direction;
                any_live = true;
            }
        }
        drop(sockets);
        if !any_live {
            self.fail_waits(py, fd, os_error(io::Error::from_raw_os_error(libc::EBADF)))?;
            return Ok(0);
        }
        let clash = live & events;
        if clash != 0 {
            let (what, calls) = if clash & READ != 0 {
                ("reader", "sock_recv, sock_recv_into or sock_accept")
            } else {
                ("writer", "sock_sendall or sock_connect")
            };
            return Err(PyRuntimeError::new_err(format!(
                "file descriptor {fd} is waited on by a pending {calls} of this loop in the \
                 same direction: a {what} would take its readiness (the other direction \
                 can be shared)"
            )));
        }
        Ok(self.fd_waits.with(py, |w| w.native(fd)))
    }
    // ANCHOR_END: claim_for_python

    /// True if `fd` is a native transport's own duplicate.
    fn transport_holds(&self, py: Python<'_>, fd: i32) -> bool {
        self.transports.with(py, |t| t.contains_key(&fd))
    }

    /// True if a wait pending on `fd` belongs to a socket that still holds it.
    fn has_live_wait(&self, py: Python<'_>, fd: i32) -> bool {
        let sockets = self.fd_waits.with(py, |w| w.sockets(py, fd));
        sockets.iter().any(|(sock, _)| holds_fd(sock.bind(py), fd))
    }

    // ANCHOR: wait_fd
    /// A future for a socket method waiting for `sock`'s descriptor `fd` to be
    /// ready to read (`read`) or write: when it is, the loop does `op` and
    /// completes the future with its result (see `fd_wait.rs`).
    pub(crate) fn wait_fd<'py>(
        &self,
        event_loop: &Bound<'py, PyAny>,
        sock: &Bound<'py, PyAny>,
        fd: i32,
        read: bool,
        op: SockOp,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.check_closed()?;
        self.poller()?;
        let future = self.create_future(event_loop)?;
        let waiter = Waiter {
            future: future.clone().unbind(),
            sock: sock.clone().unbind(),
            op,
        };
        self.add_waiter(event_loop.py(), fd, waiter, read)?;
        Ok(future)
    }
    // ANCHOR_END: wait_fd

    /// Records `waiter` and arms `fd` for it; if the system refuses, the
    /// waiter is taken back out and the error returned.
    fn add_waiter(&self, py: Python<'_>, fd: i32, waiter: Waiter, read: bool) -> PyResult<()> {
        let poller = self.poller()?;
        let future = waiter.future.clone_ref(py);
        let (interest, new) = self.fd_waits.with(py, |w| {
            let new = !w.contains(fd);
            (w.add(fd, waiter, read), new)
        });
        let armed = match interest {
            Interest::Arm { read, write } => poller.arm_once(fd, read, write),
            Interest::Shared(sharing) => match sharing.watch() {
                Some(events) => Self::watch_level(poller, fd, events),
                None => unreachable!("a wait added renews a shared registration"),
            },
            Interest::Idle => unreachable!("a descriptor just given a waiter is armed"),
        };
        if let Err(err) = armed {
            let gone = self.fd_waits.with(py, |w| w.remove(fd, future.bind(py)));
            drop(gone);
            return Err(os_error(err));
        }
        if new {
            self.io_fds.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    // ANCHOR: complete_waits
    /// Does the calls of the waiters `fd`'s readiness woke: completes each
    /// future with its call's result or error, or, if the call would still
    /// block, waits again. A future already done (cancelled) is dropped
    /// without its call, so no data is read for nobody. With callbacks
    /// queued `after` this readiness (asyncio would run them before its
    /// reader callback, and one may cancel the wait), no call is made: the
    /// future says the socket is ready (`SockOp::not_made`) and the coroutine
    /// makes the call when it resumes, if it was not cancelled, so a
    /// cancelled `sock_recv` leaves its bytes in the socket and a cancelled
    /// `sock_sendall` sends no more. Every waiter is handled even if one
    /// fails; the first error is returned.
    fn complete_waits(
        &self,
        event_loop: &Bound<'_, PyAny>,
        fd: i32,
        after: Callbacks,
        woken: impl Iterator<Item = Waiter>,
    ) -> PyResult<()> {
        let py = event_loop.py();
        let mut first_error = None;
        for mut waiter in woken {
            let future = waiter.future.bind(py).clone();
            let outcome = (|| {
                if after == Callbacks::Queued {
                    self.leave_to_coroutine(&future, &waiter.op)?;
                    return Ok(None);
                }
                if future.call_method0(intern!(py, "done"))?.is_truthy()? {
                    return Ok(None);
                }
                let read = !matches!(waiter.op, SockOp::SendRest { .. });
                match waiter.op.attempt(waiter.sock.bind(py)) {
                    Ok(Some(result)) => {
                        future.call_method1(intern!(py, "set_result"), (result,))?;
                    }
                    Ok(None) => return Ok(Some((waiter, read))),
                    Err(err) => {
                        future.call_method1(intern!(py, "set_exception"), (err.value(py),))?;
                    }
                }
                Ok(None)
            })();
            let failed = match outcome {
                Ok(Some((waiter, read))) => self.add_waiter(py, fd, waiter, read).err(),
                Ok(None) => None,
                Err(err) => Some(err),
            };
            if let Some(err) = failed {
                let unsent = fail_future(&future, &err);
                first_error.get_or_insert(unsent.err().unwrap_or(err));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
    // ANCHOR_END: complete_waits

    /// Sets `future` aside to complete with "ready" once the turn's readers
    /// are queued (whether it is done is asked then): its coroutine makes the
    /// call of `op` when it resumes (`complete_waits`).
    #[cold]
    #[inline(never)]
    fn leave_to_coroutine(&self, future: &Bound<'_, PyAny>, op: &SockOp) -> PyResult<()> {
        let py = future.py();
        let ready = op.not_made(py)?;
        let future = future.clone().unbind();
        self.left_to_coroutines
            .with(py, |left| left.push((future, ready)));
        Ok(())
    }

    /// Forgets the wait of `future` on `fd` (its coroutine was cancelled or
    /// failed): the descriptor is armed for the waiters left, or disabled.
    /// `fd` is -1 for a socket closed meanwhile: the wait is looked for on
    /// every descriptor, and the epoll set is left alone (the number may
    /// belong to another socket by now; the closed one left the set itself).
    pub fn forget_wait(&self, py: Python<'_>, fd: i32, future: &Bound<'_, PyAny>) -> PyResult<()> {
        let known = if fd >= 0 {
            Some(fd)
        } else {
            self.fd_waits.with(py, |w| w.fd_of(future))
        };
        let Some(fd) = known else {
            return Ok(());
        };
        let Some((interest, removed)) = self.fd_waits.with(py, |w| w.remove(fd, future)) else {
            return Ok(());
        };
        let still_open = holds_fd(removed.sock.bind(py), fd);
        drop(removed);
        let left = match interest {
            Interest::Idle => false,
            Interest::Shared(sharing) => sharing.waiting(),
            Interest::Arm { .. } => true,
        };
        if !left {
            self.forget_io_fd();
        }
        if !still_open {
            // The closed socket's file left the epoll set with it; whatever
            // is registered under the number now belongs to its new owner.
            // Only a wait of that owner, on a number shared with asyncio's
            // selector, makes it ours to change: then stop watching the
            // direction of the closed socket's wait, or the new owner would
            // be reported ready for it every turn. A native transport's
            // duplicate that took the number is never touched.
            if let Some(events) = shared_watch(interest) {
                if self.has_live_wait(py, fd) && !self.transport_holds(py, fd) {
                    let _ = self
                        .poller()?
                        .modify(fd, events & READ != 0, events & WRITE != 0);
                }
            }
            return Ok(());
        }
        match interest {
            Interest::Arm { read, write } => self.rearm_or_fail(py, fd, read, write),
            Interest::Shared(sharing) => {
                let watch = sharing.watch();
                watch.map_or(Ok(()), |events| self.rewatch_or_fail(py, fd, events))
            }
            Interest::Idle => {
                // Disabled, not removed: the next wait on it re-arms it with
                // one system call. A closed descriptor is gone from the set.
                match self.poller()?.arm_once(fd, false, false) {
                    Err(e) if e.raw_os_error() == Some(libc::EBADF) => Ok(()),
                    other => other.map_err(os_error),
                }
            }
        }
    }

    /// Arms `fd` again for the waiters left; if the system refuses (the
    /// descriptor was closed under them), fails them with the error.
    fn rearm_or_fail(&self, py: Python<'_>, fd: i32, read: bool, write: bool) -> PyResult<()> {
        let Err(err) = self.poller()?.arm_once(fd, read, write) else {
            return Ok(());
        };
        self.fail_waits(py, fd, os_error(err))
    }

    /// Makes the epoll set watch `fd`, which asyncio's selector watches too,
    /// for `events` ([`READ`], [`WRITE`]) after its waits changed; if the
    /// system refuses (the descriptor was closed under them), fails them
    /// with the error.
    fn rewatch_or_fail(&self, py: Python<'_>, fd: i32, events: u8) -> PyResult<()> {
        let Err(err) = Self::watch_level(self.poller()?, fd, events) else {
            return Ok(());
        };
        self.fail_waits(py, fd, os_error(err))
    }

    /// Watches `fd` level-triggered for `events`: changes its registration,
    /// or adds it if the epoll set no longer holds it (a descriptor closed
    /// and its number reused: the set dropped the old file).
    #[cold]
    #[inline(never)]
    fn watch_level(poller: &pyloop_core::Poller, fd: i32, events: u8) -> io::Result<()> {
        let (read, write) = (events & READ != 0, events & WRITE != 0);
        match poller.modify(fd, read, write) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => poller.register(fd, read, write),
            other => other,
        }
    }

    /// Takes every wait on `fd` out and fails its future with `err`.
    fn fail_waits(&self, py: Python<'_>, fd: i32, err: PyErr) -> PyResult<()> {
        let mut failed = Vec::new();
        let had = self
            .fd_waits
            .with(py, |w| w.take_ready(fd, true, true, &mut failed));
        if had.is_some() {
            self.forget_io_fd();
        }
        let mut first_error = None;
        for waiter in failed {
            if let Err(e) = fail_future(waiter.future.bind(py), &err) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// One registered descriptor fewer (never below zero).
    fn forget_io_fd(&self) {
        let _ = self
            .io_fds
            .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
    }

    /// Whether a busy loop also polls its self-pipe (signal handlers exist).
    pub fn set_poll_self_pipe(&self, enabled: bool) {
        self.poll_self_pipe.store(enabled, Relaxed);
    }

    /// True if this phase can wait for I/O.
    pub fn can_do_io(&self) -> bool {
        self.queue.poller().is_some()
    }

    #[inline]
    fn run_handle(
        &self,
        py: Python<'_>,
        handle: &HandleRef,
        event_loop: &Bound<'_, PyAny>,
        debug: bool,
    ) -> PyResult<()> {
        if debug {
            let started = monotonic();
            let result = handle.run(py, event_loop, true);
            // As asyncio: a callback that raised KeyboardInterrupt or
            // SystemExit leaves before its duration is looked at.
            let warned = match result {
                Ok(()) => {
                    self.warn_if_slow(event_loop, handle.as_any().bind(py), monotonic() - started)
                }
                Err(_) => Ok(()),
            };
            handle.release(py);
            result.and(warned)
        } else {
            handle.run(py, event_loop, false)
        }
    }

    /// As asyncio in debug mode: warns if a callback took longer than the
    /// loop's `slow_callback_duration`, naming the task if the callback is a
    /// task's step (asyncio's `base_events._format_handle`).
    fn warn_if_slow(
        &self,
        event_loop: &Bound<'_, PyAny>,
        handle: &Bound<'_, PyAny>,
        took: f64,
    ) -> PyResult<()> {
        let py = handle.py();
        // Not a number: a TypeError, as asyncio's comparison raises.
        let slow: f64 = event_loop
            .getattr(intern!(py, "slow_callback_duration"))?
            .extract()?;
        if took >= slow {
            static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
            static FORMAT_HANDLE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
            // Both may run user code (a `__repr__`, a logging filter): a
            // thread the interpreter ends there parks (`exit_park.rs`).
            let format = FORMAT_HANDLE.import(py, "asyncio.base_events", "_format_handle")?;
            let described = exit_park::call_with(format, &PyTuple::new(py, [handle])?, None)?;
            let warning = LOGGER
                .import(py, "asyncio.log", "logger")?
                .getattr(intern!(py, "warning"))?;
            let arguments =
                ("Executing %s took %.3f seconds", described, took).into_pyobject(py)?;
            exit_park::call_with(&warning, &arguments, None)?;
        }
        Ok(())
    }
}

/// As asyncio's `Handle._run` does with what a callback raised: passes
/// `KeyboardInterrupt` and `SystemExit` back, and hands anything else to the
/// loop's exception handler (here for the readiness of descriptor `fd`).
fn report_unless_fatal(event_loop: &Bound<'_, PyAny>, fd: i32, err: PyErr) -> PyResult<()> {
    if boundary::is_fatal_to_loop(event_loop.py(), &err) {
        return Err(err);
    }
    let message = format!("Exception in callback for the readiness of file descriptor {fd}");
    boundary::report_to_handler(event_loop, &message, &err, |_| Ok(()))
}

/// A loop of a phase that can do I/O (its idle wait is epoll's), as a native
/// transport holds it: the transport reaches the loop's state directly.
pub(crate) enum IoLoop {
    /// Phase 3.2.1.
    EpollWake(Py<EpollWakeLoop>),
    /// Phase 3.3.1.
    LockFree(Py<LockFreeLoop>),
}

impl IoLoop {
    /// The loop `obj` is, if its phase can do I/O.
    pub(crate) fn from_bound(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(l) = obj.cast::<EpollWakeLoop>() {
            return Ok(IoLoop::EpollWake(l.clone().unbind()));
        }
        if let Ok(l) = obj.cast::<LockFreeLoop>() {
            return Ok(IoLoop::LockFree(l.clone().unbind()));
        }
        Err(PyTypeError::new_err(format!(
            "a native transport needs a loop that can do I/O, not {}",
            obj.get_type().name()?
        )))
    }

    /// Another reference to the same loop.
    pub(crate) fn clone_ref(&self, py: Python<'_>) -> Self {
        match self {
            IoLoop::EpollWake(l) => IoLoop::EpollWake(l.clone_ref(py)),
            IoLoop::LockFree(l) => IoLoop::LockFree(l.clone_ref(py)),
        }
    }

    /// The loop as a Python object.
    pub(crate) fn as_any(&self) -> &Py<PyAny> {
        match self {
            IoLoop::EpollWake(l) => l.as_any(),
            IoLoop::LockFree(l) => l.as_any(),
        }
    }

    /// See [`LoopCore::watch_transport`].
    pub(crate) fn watch_transport(
        &self,
        py: Python<'_>,
        fd: i32,
        transport: &Bound<'_, TcpTransportCore>,
        events: u8,
    ) -> PyResult<()> {
        match self {
            IoLoop::EpollWake(l) => l.get().core().watch_transport(py, fd, transport, events),
            IoLoop::LockFree(l) => l.get().core().watch_transport(py, fd, transport, events),
        }
    }

    /// True once the loop is closed.
    pub(crate) fn is_closed(&self) -> bool {
        match self {
            IoLoop::EpollWake(l) => l.get().core().is_closed(),
            IoLoop::LockFree(l) => l.get().core().is_closed(),
        }
    }

    /// True in debug mode.
    pub(crate) fn get_debug(&self) -> bool {
        match self {
            IoLoop::EpollWake(l) => l.get().core().get_debug(),
            IoLoop::LockFree(l) => l.get().core().get_debug(),
        }
    }
}

/// `asyncio.futures.Future`, looked up once.
fn future_type(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static FUTURE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    FUTURE.import(py, "asyncio.futures", "Future")
}

/// `()`, kept: `PyTuple::empty` asks libpython for it on every call, a fifth
/// of what `create_future` itself costs.
fn empty_tuple(py: Python<'_>) -> &Bound<'_, PyTuple> {
    static EMPTY: PyOnceLock<Py<PyTuple>> = PyOnceLock::new();
    EMPTY
        .get_or_init(py, || PyTuple::empty(py).unbind())
        .bind(py)
}

/// `asyncio.tasks.Task`, looked up once.
fn task_type(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static TASK: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    TASK.import(py, "asyncio.tasks", "Task")
}

/// True if `class` is one of the native loop classes, one per phase.
pub(crate) fn is_loop_class(class: &Bound<'_, PyType>) -> bool {
    let py = class.py();
    [
        py.get_type::<BatchLimitLoop>(),
        py.get_type::<AdaptiveSleepLoop>(),
        py.get_type::<CondvarWakeLoop>(),
        py.get_type::<TwoPhaseLoop>(),
        py.get_type::<SwapBufferLoop>(),
        py.get_type::<EpollWakeLoop>(),
        py.get_type::<LockFreeLoop>(),
    ]
    .iter()
    .any(|ours| class.is(ours))
}

/// Stamps one `#[pyclass]` event loop per phase around [`LoopCore`].
macro_rules! event_loop_class {
    ($(#[$doc:meta])* $class:ident, $queue:ident) => {
        $(#[$doc])*
        #[pyclass(frozen, subclass, module = "pyloop._native")]
        pub struct $class {
            core: $crate::event_loop::LoopCore<pyloop_core::phases::$queue<$crate::handle::HandleRef>>,
        }

        impl $class {
            /// The loop's state.
            pub fn core(
                &self,
            ) -> &$crate::event_loop::LoopCore<pyloop_core::phases::$queue<$crate::handle::HandleRef>> {
                &self.core
            }
        }

        impl $crate::entry::LoopClass for $class {
            type Queue = pyloop_core::phases::$queue<$crate::handle::HandleRef>;

            fn loop_core(&self) -> &$crate::event_loop::LoopCore<Self::Queue> {
                &self.core
            }
        }

        #[pymethods]
        impl $class {
            #[new]
            #[pyo3(signature = (*_args, **_kwargs))]
            fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
                Ok($class { core: $crate::event_loop::LoopCore::new().map_err($crate::sock_calls::os_error)? })
            }

            fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
                self.core.traverse(&visit)
            }

            fn __clear__(&self) {
                Python::attach(|py| self.core.clear(py))
            }

            /// The tag of this loop's phase.
            #[classattr]
            fn phase() -> &'static str {
                <pyloop_core::phases::$queue<$crate::handle::HandleRef> as pyloop_core::ReadyQueue<$crate::handle::HandleRef>>::PHASE.tag()
            }

            fn time(&self) -> f64 {
                self.core.time()
            }

            fn stop(&self, py: Python<'_>) {
                self.core.stop(py)
            }

            fn is_running(&self) -> bool {
                self.core.is_running()
            }

            fn is_closed(&self) -> bool {
                self.core.is_closed()
            }

            fn _set_debug_native(&self, enabled: &Bound<'_, PyAny>) -> PyResult<()> {
                self.core.set_debug(enabled.is_truthy()?);
                Ok(())
            }

            /// Wraps a coroutine in an `asyncio.Task` on this loop. The common
            /// case is native; a name, a context, a task factory, debug mode
            /// or a closed loop go to the Python side's `_create_task_general`.
            #[pyo3(signature = (coro, *, name=None, context=None))]
            fn create_task<'py>(
                slf: &Bound<'py, Self>,
                coro: &Bound<'py, PyAny>,
                name: Option<&Bound<'py, PyAny>>,
                context: Option<&Bound<'py, PyAny>>,
            ) -> PyResult<Bound<'py, PyAny>> {
                if name.is_none() && context.is_none() {
                    if let Some(task) = slf.get().core.create_plain_task(slf.as_any(), coro)? {
                        return Ok(task);
                    }
                }
                // A task factory may run for long: a thread the interpreter
                // ends there parks (`exit_park.rs`).
                let general = slf.getattr(pyo3::intern!(slf.py(), "_create_task_general"))?;
                let arguments = (coro, name, context).into_pyobject(slf.py())?;
                crate::exit_park::call_with(&general, &arguments, None)
            }

            /// The task factory `create_task` uses, or `None`.
            #[getter(_task_factory)]
            fn task_factory(&self, py: Python<'_>) -> Option<Py<PyAny>> {
                self.core.task_factory(py)
            }

            /// Sets the task factory (`set_task_factory` checks it first).
            #[setter(_task_factory)]
            fn set_task_factory_slot(&self, py: Python<'_>, factory: Option<Py<PyAny>>) {
                self.core.set_task_factory(py, factory)
            }

            fn _run_forever_native(slf: &Bound<'_, Self>) -> PyResult<()> {
                slf.get().core.run_forever(slf.as_any())
            }

            fn _close_native(&self, py: Python<'_>) -> PyResult<()> {
                self.core.close(py)
            }

            fn _queue_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                self.core.stats(py)
            }

            fn _add_callback(&self, handle: Bound<'_, PyAny>) {
                self.core.add_callback(handle)
            }

            #[pyo3(signature = (fd, events, internal=false))]
            fn _io_register(&self, py: Python<'_>, fd: i32, events: u8, internal: bool) -> PyResult<()> {
                self.core.io_register(py, fd, events, internal)
            }

            /// A future done (with `None`) when `sock`'s descriptor `fd` is
            /// ready to read (1) or write (2): `sock_accept` and
            /// `sock_connect` then make their call (`pyloop._sockets`).
            fn _wait_fd<'py>(slf: &Bound<'py, Self>, sock: &Bound<'py, PyAny>, fd: i32, events: u8) -> PyResult<Bound<'py, PyAny>> {
                if events != 1 && events != 2 {
                    return Err(PyValueError::new_err("events must be 1 (read) or 2 (write)"));
                }
                slf.get().core.wait_fd(slf.as_any(), sock, fd, events == 1, $crate::sock_calls::SockOp::Notify)
            }

            /// A future for `sock.recv(size)`, made by the loop once `fd` is
            /// readable (`sock_recv`, after its first try would block).
            fn _recv_when_ready<'py>(slf: &Bound<'py, Self>, sock: &Bound<'py, PyAny>, fd: i32, size: isize) -> PyResult<Bound<'py, PyAny>> {
                slf.get().core.wait_fd(slf.as_any(), sock, fd, true, $crate::sock_calls::SockOp::Recv { size })
            }

            /// A future for `sock.recv_into(buf)`, made by the loop once `fd`
            /// is readable (`sock_recv_into`).
            fn _recv_into_when_ready<'py>(slf: &Bound<'py, Self>, sock: &Bound<'py, PyAny>, fd: i32, buf: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                let op = $crate::sock_calls::SockOp::RecvInto { buf: buf.clone().unbind() };
                slf.get().core.wait_fd(slf.as_any(), sock, fd, true, op)
            }

            /// A future done once the loop has sent the rest of `data` (a
            /// memoryview) from byte `sent` on `sock` (`sock_sendall`).
            fn _send_rest_when_ready<'py>(slf: &Bound<'py, Self>, sock: &Bound<'py, PyAny>, fd: i32, data: &Bound<'py, PyAny>, sent: usize) -> PyResult<Bound<'py, PyAny>> {
                let op = $crate::sock_calls::SockOp::SendRest { data: data.clone().unbind(), sent };
                slf.get().core.wait_fd(slf.as_any(), sock, fd, false, op)
            }

            /// Forgets the wait of `future` on `fd` (cancelled).
            fn _forget_wait(&self, py: Python<'_>, fd: i32, future: &Bound<'_, PyAny>) -> PyResult<()> {
                self.core.forget_wait(py, fd, future)
            }

            fn _io_poll_self_pipe(&self, enabled: bool) {
                self.core.set_poll_self_pipe(enabled)
            }

            fn _io_modify(&self, py: Python<'_>, fd: i32, events: u8) -> PyResult<()> {
                self.core.io_modify(py, fd, events)
            }

            #[pyo3(signature = (fd, internal=false))]
            fn _io_unregister(&self, py: Python<'_>, fd: i32, internal: bool) -> PyResult<()> {
                self.core.io_unregister(py, fd, internal)
            }

            /// True if this phase can wait for I/O (sockets, pipes, signals).
            #[classattr]
            fn can_do_io() -> bool {
                <pyloop_core::phases::$queue<$crate::handle::HandleRef> as pyloop_core::ReadyQueue<$crate::handle::HandleRef>>::PHASE.waits_in_epoll()
            }
        }
    };
}

event_loop_class!(
    /// The loop of phase 3.1.1 (batch limit).
    BatchLimitLoop,
    BatchLimitQueue
);
event_loop_class!(
    /// The loop of phase 3.1.2 (adaptive sleep).
    AdaptiveSleepLoop,
    AdaptiveSleepQueue
);
event_loop_class!(
    /// The loop of phase 3.1.3 (condvar wake-up).
    CondvarWakeLoop,
    CondvarWakeQueue
);
event_loop_class!(
    /// The loop of phase 3.1.4 (two-phase extraction).
    TwoPhaseLoop,
    TwoPhaseQueue
);
event_loop_class!(
    /// The loop of phase 3.1.5 (swapped buffer).
    SwapBufferLoop,
    SwapBufferQueue
);
event_loop_class!(
    /// The loop of phase 3.2.1 (epoll wake-up), the first that can do I/O.
    EpollWakeLoop,
    EpollWakeQueue
);
event_loop_class!(
    /// The loop of phase 3.3.1 (lock-free push), which can do I/O too.
    LockFreeLoop,
    LockFreeQueue
);
