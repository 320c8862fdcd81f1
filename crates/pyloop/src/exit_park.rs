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
//! running attached in another thread. Each loop looks at the mark at the
//! start of every turn, and as it comes back from a wait before it takes the
//! GIL again; one that finds it lets go of the GIL and parks its thread for
//! good, with nothing unwound. The process then exits as it would with
//! asyncio. A loop whose callback is still running when the wait ends (a
//! callback that sleeps for seconds, say) is not parked, and its thread can
//! still meet `pthread_exit` in that callback.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// How long the exit waits for loops in other threads to park.
pub(crate) const EXIT_WAIT: Duration = Duration::from_secs(1);

/// Set once the exit has begun; never cleared.
static EXITING: AtomicBool = AtomicBool::new(false);

/// The threads running a loop while attached to the interpreter (one entry
/// per running loop), and the thread that runs the exit, once it does.
struct Running {
    attached: Vec<ThreadId>,
    exiting_thread: Option<ThreadId>,
}

static RUNNING: Mutex<Running> = Mutex::new(Running {
    attached: Vec::new(),
    exiting_thread: None,
});

/// Signalled whenever a thread leaves `attached`.
static LEFT: Condvar = Condvar::new();

/// The registry, also after a panic while it was held (it holds plain data,
/// and every change to it is a single push or removal).
fn running() -> MutexGuard<'static, Running> {
    RUNNING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Parks the calling thread for good. Called detached, never attached: the
/// thread's frames stay as they are, nothing is unwound or dropped.
fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// True once the exit has begun (a plain load, for the start of every turn).
#[inline]
pub(crate) fn exiting() -> bool {
    EXITING.load(Relaxed)
}

/// Notes that a loop runs attached on this thread (as `run_forever` begins,
/// or as the loop comes back from a wait, still detached); false, with
/// nothing noted, if the exit has begun and this is not the exiting thread:
/// the caller must then park. Decided under the registry's lock, so the exit
/// either finds this thread in the registry (and waits for it to park at its
/// next turn) or this thread finds the exit.
#[must_use]
pub(crate) fn note_attached() -> bool {
    let me = std::thread::current().id();
    let mut running = running();
    if EXITING.load(Relaxed) && running.exiting_thread != Some(me) {
        return false;
    }
    running.attached.push(me);
    true
}

/// Notes that a loop on this thread no longer runs attached (it waits,
/// detached, or `run_forever` ends). Wakes the exit, if it is waiting.
pub(crate) fn leave() {
    let me = std::thread::current().id();
    let mut running = running();
    if let Some(at) = running.attached.iter().position(|t| *t == me) {
        running.attached.swap_remove(at);
    }
    // Read under the lock: the exit sets it under the lock before it waits.
    let exit_waits = EXITING.load(Relaxed);
    drop(running);
    if exit_waits {
        LEFT.notify_all();
    }
}

/// Parks this thread for good, detached: for a loop that has found the exit.
pub(crate) fn park(py: Python<'_>) -> ! {
    py.detach(|| park_forever())
}

/// Parks this thread for good; for a loop already detached.
pub(crate) fn park_detached() -> ! {
    park_forever()
}

/// At the start of a turn, once the exit has begun: a loop on another thread
/// than the exiting one leaves the registry, lets go of the GIL and parks.
#[cold]
pub(crate) fn park_unless_exiting_thread(py: Python<'_>) {
    let me = std::thread::current().id();
    if running().exiting_thread == Some(me) {
        return;
    }
    leave();
    park(py);
}

/// Keeps this thread in the registry while `run_forever` runs: leaves it
/// when dropped, also on an early return.
pub(crate) struct Registered(());

impl Registered {
    /// Notes the running loop, or parks the thread if the exit has begun.
    pub(crate) fn enter(py: Python<'_>) -> Registered {
        if !note_attached() {
            park(py);
        }
        Registered(())
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        leave();
    }
}

// ANCHOR: park_loop_threads_at_exit
/// Registered with `atexit` by `pyloop`: marks the exit and waits, without
/// the GIL, for up to a second until no loop runs attached in another thread
/// (each parks its thread at its next turn; see the module documentation).
/// Returns how many were still running when it stopped waiting.
#[pyfunction]
pub(crate) fn park_loop_threads_at_exit(py: Python<'_>) -> usize {
    let me = std::thread::current().id();
    {
        let mut running = running();
        running.exiting_thread = Some(me);
        EXITING.store(true, Relaxed);
    }
    py.detach(|| {
        let deadline = Instant::now() + EXIT_WAIT;
        let mut running = running();
        loop {
            let others = running.attached.iter().filter(|t| **t != me).count();
            let left = deadline.saturating_duration_since(Instant::now());
            if others == 0 || left.is_zero() {
                return others;
            }
            running = LEFT
                .wait_timeout(running, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    })
}
// ANCHOR_END: park_loop_threads_at_exit
