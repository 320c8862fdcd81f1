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
//!
//! The registry is two atomics and a count per thread, not a lock: a process
//! forked while another thread held a lock would find it held for ever, and
//! the child starts with only the forking thread, so `after_fork_in_child`
//! (registered with `os.register_at_fork`) counts that thread's loops alone.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// How long the exit waits for loops in other threads to park.
pub(crate) const EXIT_WAIT: Duration = Duration::from_secs(1);

/// Set once the exit has begun (cleared only in a forked child).
static EXITING: AtomicBool = AtomicBool::new(false);

/// Loops running attached to the interpreter, on every thread.
static ATTACHED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Loops running attached on this thread: this thread's part of `ATTACHED`.
    static ATTACHED_HERE: Cell<usize> = const { Cell::new(0) };
    /// True on the thread that runs the exit: its own loops never park.
    static EXITING_HERE: Cell<bool> = const { Cell::new(false) };
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
    EXITING.load(SeqCst)
}

/// Notes that a loop runs attached on this thread (as `run_forever` begins,
/// or as the loop comes back from a wait, still detached); false, with
/// nothing noted, if the exit has begun on another thread: the caller must
/// then park. The count goes up before the exit's mark is read, and the exit
/// sets its mark before it reads the count (both sequentially consistent), so
/// either the exit counts this loop and waits for it to park at its next
/// turn, or this loop sees the exit.
#[must_use]
pub(crate) fn note_attached() -> bool {
    ATTACHED.fetch_add(1, SeqCst);
    ATTACHED_HERE.with(|here| here.set(here.get() + 1));
    if EXITING.load(SeqCst) && !EXITING_HERE.with(Cell::get) {
        leave();
        return false;
    }
    true
}

/// Notes that a loop on this thread no longer runs attached (it waits,
/// detached, or `run_forever` ends). Only what this thread noted is taken
/// back, so an extra call (after a panic skipped a `note_attached`) is
/// harmless.
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

/// Parks this thread for good, detached: for a loop that has found the exit.
pub(crate) fn park(py: Python<'_>) -> ! {
    py.detach(|| park_forever())
}

/// Parks this thread for good; for a loop already detached.
pub(crate) fn park_detached() -> ! {
    park_forever()
}

/// At the start of a turn, once the exit has begun: a loop on another thread
/// than the exiting one leaves the count, lets go of the GIL and parks.
#[cold]
pub(crate) fn park_unless_exiting_thread(py: Python<'_>) {
    if EXITING_HERE.with(Cell::get) {
        return;
    }
    leave();
    park(py);
}

/// Keeps this thread's loop counted while `run_forever` runs: leaves the
/// count when dropped, also on an early return.
pub(crate) struct Registered(());

impl Registered {
    /// Counts the running loop, or parks the thread if the exit has begun.
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
    EXITING_HERE.with(|here| here.set(true));
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
    EXITING_HERE.with(|here| here.set(false));
}
