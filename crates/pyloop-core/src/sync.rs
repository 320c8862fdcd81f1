//! The one switch between `std` and `loom`.
//!
//! Every synchronisation primitive that the phases' protocols depend on comes
//! from here, so that `RUSTFLAGS="--cfg loom" cargo test --test loom` model-checks
//! the very code that ships. Counters in [`crate::stats`] are not part of any
//! protocol and use `std` atomics in both builds, to keep loom's state space small.

#[cfg(loom)]
pub use loom::cell::UnsafeCell;
#[cfg(loom)]
pub use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
#[cfg(loom)]
pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(loom)]
pub use loom::thread;

#[cfg(not(loom))]
pub use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub use std::thread;

use std::time::Duration;

// ANCHOR: unsafe_cell
/// `std::cell::UnsafeCell` with loom's API: the contents are reached only
/// through [`with`](Self::with) (to read) and [`with_mut`](Self::with_mut) (to
/// write), so that under `--cfg loom` every access is seen by loom's
/// `UnsafeCell`, which fails a model where a read and a write, or two writes,
/// are not ordered by happens-before. In the normal build the closures compile
/// down to the raw pointer.
#[cfg(not(loom))]
#[derive(Debug, Default)]
pub struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// A cell holding `value`.
    pub const fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a pointer for reading the contents.
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with a pointer for writing the contents.
    #[inline(always)]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
// ANCHOR_END: unsafe_cell

/// Sleeps for `duration`. Under loom, time does not exist: the thread yields so
/// that the model checker runs the others.
pub fn sleep(duration: Duration) {
    #[cfg(loom)]
    {
        let _ = duration;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    std::thread::sleep(duration);
}

/// Gives up the rest of this thread's time slice.
pub fn yield_now() {
    thread::yield_now();
}

/// Tells the processor this is a busy-wait (under loom: yields, since loom must
/// see every spin as a chance to run another thread).
pub fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}
