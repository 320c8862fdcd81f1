//! The one switch between `std` and `loom`.
//!
//! Every synchronisation primitive that the phases' protocols depend on comes
//! from here, so that `RUSTFLAGS="--cfg loom" cargo test --test loom` model-checks
//! the very code that ships. Counters in [`crate::stats`] are not part of any
//! protocol and use `std` atomics in both builds, to keep loom's state space small.

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(loom)]
pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(loom)]
pub use loom::thread;

#[cfg(not(loom))]
pub use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub use std::thread;

use std::time::Duration;

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
