//! The one trait every phase implements.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::{IoEvent, Phase, Poller, Stats};

// ANCHOR: batch_limit
/// The most callbacks the loop takes from the queue in one turn (phase 3.1.1's
/// limit, kept by every later phase): after a batch the loop goes back to its
/// timers, its own callbacks and I/O, so a flood from other threads cannot starve them.
pub const BATCH_LIMIT: usize = 128;
// ANCHOR_END: batch_limit

/// A push refused because the queue was closed; the item comes back.
#[derive(PartialEq, Eq)]
pub struct Closed<T>(pub T);

impl<T> fmt::Debug for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Closed(..)")
    }
}

impl<T> fmt::Display for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the ready queue is closed")
    }
}

impl<T> std::error::Error for Closed<T> {}

/// Why [`ReadyQueue::try_push`] gave the item back.
#[derive(PartialEq, Eq)]
pub enum TryPushError<T> {
    /// Another thread holds the queue's lock; [`ReadyQueue::push`] would have waited.
    Contended(T),
    /// The queue is closed.
    Closed(T),
}

impl<T> fmt::Debug for TryPushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPushError::Contended(_) => f.write_str("Contended(..)"),
            TryPushError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

// ANCHOR: trait
/// A multi-producer, single-consumer queue of ready callbacks, with the loop's
/// idle wait and wake-up. One implementation per [`Phase`].
///
/// Producers call [`push`](Self::push) from any thread. The one consumer, the
/// loop thread, owns a [`Consumer`](Self::Consumer) (the phase's private state:
/// a batch buffer, a back-off, a swapped-out queue) and each turn calls
/// [`run_batch`](Self::run_batch), then, if it has nothing else to do,
/// [`wait`](Self::wait) until work arrives, it is [`wake`](Self::wake)d, or the
/// next timer is due.
pub trait ReadyQueue<T: Send>: Send + Sync + Sized + 'static {
    /// Which phase this is.
    const PHASE: Phase;

    /// The consumer's private state, kept by the loop thread between turns.
    type Consumer: Send;

    /// An empty queue that runs at most `batch_limit` callbacks a turn, or the
    /// error that stopped the operating system from giving it what it needs
    /// (phase 3.2.1's epoll set and eventfd: `EMFILE` when out of descriptors).
    fn try_with_batch_limit(batch_limit: usize) -> io::Result<Self>;

    /// As [`try_with_batch_limit`](Self::try_with_batch_limit), for tests and
    /// benchmarks: panics if the queue cannot be made.
    fn with_batch_limit(batch_limit: usize) -> Self {
        Self::try_with_batch_limit(batch_limit)
            .unwrap_or_else(|e| panic!("cannot make a {} queue: {e}", Self::PHASE.tag()))
    }

    /// An empty queue with the standard [`BATCH_LIMIT`], or the error that
    /// stopped it (see [`try_with_batch_limit`](Self::try_with_batch_limit)).
    fn try_new() -> io::Result<Self> {
        Self::try_with_batch_limit(BATCH_LIMIT)
    }

    /// An empty queue with the standard [`BATCH_LIMIT`]; panics if it cannot
    /// be made (see [`try_new`](Self::try_new)).
    fn new() -> Self {
        Self::with_batch_limit(BATCH_LIMIT)
    }

    /// The consumer's state. Call once: the queue has one consumer.
    fn consumer(&self) -> Self::Consumer;

    /// Appends `item`, waiting for the lock if the phase has one, and wakes an
    /// idle consumer. Fails only when the queue is closed.
    fn push(&self, item: T) -> Result<(), Closed<T>>;

    /// Appends `item` unless that would mean waiting for another thread.
    /// A caller that must not block while holding something the lock holder
    /// may need (the GIL) tries this first and waits for `push` only after
    /// letting go.
    fn try_push(&self, item: T) -> Result<(), TryPushError<T>>;

    /// Runs at most the batch limit of queued callbacks, oldest first, by
    /// calling `run` on each; returns how many ran. Never blocks for work.
    fn run_batch<F: FnMut(T)>(&self, consumer: &mut Self::Consumer, run: F) -> usize;

    /// Returns at once if there is work, the queue is closed, or a
    /// [`wake`](Self::wake) is pending (which it consumes); otherwise waits
    /// until one of these happens or `timeout` (`None`: no limit) has passed.
    fn wait(&self, consumer: &mut Self::Consumer, timeout: Option<Duration>);

    /// Makes the consumer's current or next [`wait`](Self::wait) return.
    fn wake(&self);

    /// As [`wake`](Self::wake) unless that would mean waiting for another
    /// thread (the lock is held); false then, and nothing was done. As with
    /// [`try_push`](Self::try_push), a caller holding something the lock holder
    /// may need (the GIL) tries this first and calls `wake` only after letting go.
    fn try_wake(&self) -> bool;

    /// Refuses every later push and wakes the consumer. Items already queued
    /// stay, for the consumer to run or drop.
    fn close(&self);

    /// True once [`close`](Self::close) has been called.
    fn is_closed(&self) -> bool;

    /// True if a callback is queued, here or in the consumer's state.
    fn has_pending(&self, consumer: &Self::Consumer) -> bool;

    /// This queue's counters.
    fn stats(&self) -> &Stats;

    /// The poller the consumer sleeps in, for a phase that can wait for I/O
    /// readiness as well as for callbacks (3.2.1); `None` for phases that sleep
    /// on a condition variable or poll, which cannot also wait on a socket.
    /// For such a phase, [`wait`](Self::wait) always looks for I/O, without
    /// blocking when there is work.
    fn poller(&self) -> Option<&Poller> {
        None
    }

    /// Moves the I/O readiness found by the last [`wait`](Self::wait) to `out`
    /// (an empty `out` may be traded for the consumer's buffer: a caller that
    /// clears it and passes it again makes the two buffers alternate).
    fn take_io_events(&self, _consumer: &mut Self::Consumer, _out: &mut Vec<IoEvent>) {}

    /// Releases what the phase holds from the operating system (the epoll
    /// set and eventfd of 3.2.1 and 3.3.1) once no producer is part of the
    /// way through a wake-up: a descriptor number closed here may belong to
    /// another file a moment later. The
    /// consumer must not be waiting (the loop is closed only when it is not
    /// running). Later waits and wakes do nothing.
    fn close_io(&self) {}

    /// Calls `f` on every item the consumer's state holds (taken from the
    /// queue, not yet run). Items still in the shared queue are not visited:
    /// that would need the lock.
    fn for_each_taken(_consumer: &Self::Consumer, _f: &mut dyn FnMut(&T)) {}
}
// ANCHOR_END: trait
