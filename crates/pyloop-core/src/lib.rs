//! The ready queue of PyLoop's event loop, with no Python in it.
//!
//! An event loop has one consumer (the loop thread) and any number of producers
//! (`call_soon_threadsafe` from other threads). Between them sits a *ready queue*:
//! producers push callbacks, the loop takes a bounded batch each turn, and when
//! there is nothing to do the loop waits until a producer wakes it or the next
//! timer is due.
//!
//! The optimisation phases 3.1.1 → 3.1.4 of the original project, and the ones we
//! added past them, are each one implementation of the [`ReadyQueue`] trait, in a
//! file of its own under [`phases`]. Everything else (timers, counters, the loop
//! in the `pyloop` crate) is shared, so the phases differ only where the book says
//! they do. [`Phase`] names them by their tags.

#![warn(missing_docs)]

// The poller (phase 3.2.1's idle wait) is epoll with an eventfd, both Linux-only.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "pyloop-core builds only on Linux: its poller (phase 3.2.1) is epoll with an eventfd"
);

pub mod phase;
pub mod phases;
pub mod poller;
pub mod queue;
pub mod stats;
pub mod sync;
pub mod timers;

mod locked;

pub use phase::{Phase, UnknownPhase};
pub use poller::{IoEvent, Poller};
pub use queue::{Closed, ReadyQueue, TryPushError, BATCH_LIMIT};
pub use stats::{Stats, StatsSnapshot};
pub use timers::{Cancellable, Timers};
