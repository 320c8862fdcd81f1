//! The state every seed phase shares: one deque behind one lock, taken by
//! producers and by the loop alike, and a condition variable for the phases
//! that sleep on one.

use std::collections::VecDeque;
use std::sync::TryLockError;
use std::time::{Duration, Instant};

use crate::poller::Poller;
use crate::queue::{Closed, TryPushError};
use crate::stats::Stats;
use crate::sync::{AtomicUsize, Condvar, Mutex, MutexGuard, Ordering};

// ANCHOR: pending
/// What the lock protects.
pub(crate) struct Pending<T> {
    /// Callbacks pushed and not yet taken by the consumer, oldest first.
    pub(crate) items: VecDeque<T>,
    /// Set once by `close`; never cleared. Pushes fail after it.
    pub(crate) closed: bool,
    /// Set by a waiting consumer before it sleeps (on the condition variable,
    /// or in epoll for 3.2.1) and cleared by whoever wakes it. A producer that pushes and finds it set must
    /// signal; read and written only under the lock, which is what makes the
    /// check-then-sleep of the consumer and the push-then-check of a producer
    /// impossible to interleave badly (no lost wake-up).
    pub(crate) sleeping: bool,
    /// A `wake` not yet seen by a `wait`.
    pub(crate) woken: bool,
    /// Set once by `close_io`; no eventfd write is promised after it.
    pub(crate) io_closed: bool,
}
// ANCHOR_END: pending

/// An eventfd write promised under the lock by [`LockedDeque::wake_sleeper`],
/// made when this is dropped, which must be after the lock is let go. The
/// write is in `drop` so that no path (an early return, a panic) can leave
/// the promise counted and `close_io` waiting for ever.
pub(crate) struct EventfdWrite<'a> {
    poller: &'a Poller,
    writers: &'a AtomicUsize,
}

impl Drop for EventfdWrite<'_> {
    /// Writes the eventfd, then lets `close_io` close it.
    fn drop(&mut self) {
        self.poller.wake();
        self.writers.fetch_sub(1, Ordering::Release);
    }
}

// ANCHOR: locked_deque
/// One deque, one lock, one condition variable, and the counters.
pub(crate) struct LockedDeque<T> {
    pub(crate) state: Mutex<Pending<T>>,
    pub(crate) ready: Condvar,
    /// `items.len()`, stored after every change under the lock, so that a
    /// polling consumer can look without taking the lock. A hint only.
    pub(crate) queued: AtomicUsize,
    pub(crate) batch_limit: usize,
    pub(crate) stats: Stats,
    /// For phases whose consumer sleeps in epoll rather than on `ready`: the
    /// poller whose eventfd wakes it.
    pub(crate) poller: Option<Poller>,
    /// Threads that promised, under the lock, an eventfd write they make after
    /// letting go of it; `close_io` waits for the count to reach zero.
    eventfd_writers: AtomicUsize,
}
// ANCHOR_END: locked_deque

impl<T> LockedDeque<T> {
    /// An empty deque; a batch limit of 0 (no callback would ever run) is refused.
    pub(crate) fn new(batch_limit: usize) -> std::io::Result<Self> {
        if batch_limit == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the batch limit must be at least 1",
            ));
        }
        Ok(LockedDeque {
            state: Mutex::new(Pending {
                items: VecDeque::new(),
                closed: false,
                sleeping: false,
                woken: false,
                io_closed: false,
            }),
            ready: Condvar::new(),
            queued: AtomicUsize::new(0),
            batch_limit,
            stats: Stats::default(),
            poller: None,
            eventfd_writers: AtomicUsize::new(0),
        })
    }

    /// A deque whose sleeping consumer waits in `poller` instead of on the
    /// condition variable.
    pub(crate) fn with_poller(batch_limit: usize, poller: Poller) -> std::io::Result<Self> {
        Ok(LockedDeque {
            poller: Some(poller),
            ..Self::new(batch_limit)?
        })
    }

    // ANCHOR: wake_sleeper
    /// Takes down the `sleeping` mark, under the lock, and wakes the consumer
    /// that set it. A condition variable is signalled at once. An eventfd is
    /// only promised: the returned [`EventfdWrite`] writes it when dropped,
    /// after the lock is let go, so that the loop it wakes, often run at once on this
    /// thread's core, does not find the lock still held and sleep again.
    #[must_use = "dropping the promise at once writes the eventfd under the lock"]
    fn wake_sleeper(&self, state: &mut Pending<T>) -> Option<EventfdWrite<'_>> {
        if !std::mem::replace(&mut state.sleeping, false) {
            return None;
        }
        match &self.poller {
            None => {
                self.ready.notify_one();
                None
            }
            // Closed: the loop is closing and needs no wake; the number may
            // already be another file's.
            Some(_) if state.io_closed => None,
            Some(poller) => {
                // Counted under the lock, so `close_io`, which sets
                // `io_closed` under it, then sees the count.
                self.eventfd_writers.fetch_add(1, Ordering::Relaxed);
                Some(EventfdWrite {
                    poller,
                    writers: &self.eventfd_writers,
                })
            }
        }
    }

    /// Lets go of the lock, waking the consumer if it was asleep: a
    /// condition variable under the lock, an eventfd after it.
    fn unlock_and_wake(&self, mut state: MutexGuard<'_, Pending<T>>) {
        let eventfd_write = self.wake_sleeper(&mut state);
        drop(state);
        drop(eventfd_write);
    }
    // ANCHOR_END: wake_sleeper

    /// Takes the lock. A panic in a callback run under it poisons the mutex;
    /// the deque itself is never left half-changed, so the poison is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Pending<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True if the queue looked empty at the last change: the consumer skips
    /// taking the lock for a batch then. A push that this misses is not lost:
    /// the next turn sees it, and a consumer about to sleep looks again under
    /// the lock (`has_reason_to_return`).
    pub(crate) fn looks_empty(&self) -> bool {
        self.queued.load(Ordering::Relaxed) == 0
    }

    /// Takes the lock for a batch, returning how long it waited for it.
    pub(crate) fn lock_for_batch(&self) -> (MutexGuard<'_, Pending<T>>, Instant, Duration) {
        let asked = Instant::now();
        let guard = self.lock();
        let got = Instant::now();
        (guard, got, got - asked)
    }

    // ANCHOR: append
    /// Appends `item` unless the queue is closed; `count` records the push in
    /// the counters only if it is accepted.
    fn append(
        &self,
        mut state: MutexGuard<'_, Pending<T>>,
        item: T,
        count: impl FnOnce(&Stats),
    ) -> Result<(), Closed<T>> {
        if state.closed {
            return Err(Closed(item));
        }
        count(&self.stats);
        state.items.push_back(item);
        self.queued.store(state.items.len(), Ordering::Relaxed);
        self.unlock_and_wake(state);
        Ok(())
    }
    // ANCHOR_END: append

    // ANCHOR: push
    pub(crate) fn push(&self, item: T) -> Result<(), Closed<T>> {
        let state = match self.state.try_lock() {
            Ok(state) => state,
            // Poisoned means free but a callback once panicked under it: take
            // it, as `lock` does. (Waiting in `lock` here instead would wait for
            // the guard this very error holds.)
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => {
                let asked = Instant::now();
                let state = self.lock();
                let waited = asked.elapsed();
                return self.append(state, item, |s| s.record_contended_push(waited));
            }
        };
        self.append(state, item, Stats::record_push)
    }
    // ANCHOR_END: push

    pub(crate) fn try_push(&self, item: T) -> Result<(), TryPushError<T>> {
        let state = match self.state.try_lock() {
            Ok(state) => state,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(TryPushError::Contended(item)),
        };
        self.append(state, item, Stats::record_push)
            .map_err(|Closed(item)| TryPushError::Closed(item))
    }

    /// Marks a wake pending under `state`, then lets go of it, waking a
    /// sleeping consumer.
    fn wake_locked(&self, mut state: MutexGuard<'_, Pending<T>>) {
        state.woken = true;
        self.unlock_and_wake(state);
    }

    pub(crate) fn wake(&self) {
        self.wake_locked(self.lock());
    }

    pub(crate) fn try_wake(&self) -> bool {
        match self.state.try_lock() {
            Ok(state) => self.wake_locked(state),
            Err(TryLockError::Poisoned(e)) => self.wake_locked(e.into_inner()),
            Err(TryLockError::WouldBlock) => return false,
        }
        true
    }

    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        self.unlock_and_wake(state);
    }

    // ANCHOR: close_io
    /// Closes the poller's descriptors once no eventfd write promised before
    /// is still to be made: a number closed while a producer was about to
    /// write to it could by then be another file's.
    pub(crate) fn close_io(&self) {
        let Some(poller) = &self.poller else {
            return;
        };
        self.lock().io_closed = true;
        let mut yields = 0u32;
        // In a forked child the count can hold a parent's writer that the
        // child does not have (only the forking thread is copied).
        while self.eventfd_writers.load(Ordering::Acquire) != 0 && !poller.inherited() {
            // The writer needs only a core: give it ours, and past a few
            // turns sleep, in case a yield cannot make room for it (a loop
            // thread of a real-time class, a capped CPU share).
            if yields < 64 {
                yields += 1;
                crate::sync::yield_now();
            } else {
                crate::sync::sleep(std::time::Duration::from_micros(50));
            }
        }
        poller.close();
    }
    // ANCHOR_END: close_io

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    // ANCHOR: has_reason_to_return
    /// True if `wait` should return without sleeping; consumes a pending wake.
    pub(crate) fn has_reason_to_return(state: &mut Pending<T>) -> bool {
        !state.items.is_empty() || state.closed || std::mem::take(&mut state.woken)
    }
    // ANCHOR_END: has_reason_to_return

    // ANCHOR: run_batch_under_lock
    /// Pops and runs up to the batch limit while holding the lock throughout:
    /// the shape of phases 3.1.1–3.1.3.
    pub(crate) fn run_batch_under_lock<F: FnMut(T)>(&self, mut run: F) -> usize {
        if self.looks_empty() {
            return 0;
        }
        let (mut state, got, waited) = self.lock_for_batch();
        let mut ran = 0;
        while ran < self.batch_limit {
            let Some(item) = state.items.pop_front() else {
                break;
            };
            run(item);
            ran += 1;
        }
        self.queued.store(state.items.len(), Ordering::Relaxed);
        let held = got.elapsed();
        drop(state);
        if ran > 0 {
            self.stats.record_batch(ran, held, waited);
        }
        ran
    }
    // ANCHOR_END: run_batch_under_lock
}

/// Implements the [`ReadyQueue`](crate::ReadyQueue) methods that are the same
/// for every phase built on [`LockedDeque`], delegating to the field `$field`.
macro_rules! delegate_to_locked_deque {
    ($field:ident) => {
        fn push(&self, item: T) -> Result<(), $crate::Closed<T>> {
            self.$field.push(item)
        }

        fn try_push(&self, item: T) -> Result<(), $crate::TryPushError<T>> {
            self.$field.try_push(item)
        }

        fn wake(&self) {
            self.$field.wake()
        }

        fn try_wake(&self) -> bool {
            self.$field.try_wake()
        }

        fn close(&self) {
            self.$field.close()
        }

        fn is_closed(&self) -> bool {
            self.$field.is_closed()
        }

        fn stats(&self) -> &$crate::Stats {
            &self.$field.stats
        }
    };
}
pub(crate) use delegate_to_locked_deque;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::poller::finishes_in_a_forked_child;

    /// A fork while another thread is between counting its eventfd write and
    /// making it leaves the child's count raised, with no thread of the child
    /// to lower it: the child's `close_io` must not wait for it.
    #[test]
    fn close_io_in_a_forked_child_does_not_wait_for_the_parents_writer() {
        let deque = LockedDeque::<u32>::with_poller(1, Poller::new().unwrap()).unwrap();
        // The state the fork copies: one writer part of the way through.
        deque.eventfd_writers.fetch_add(1, Ordering::Relaxed);
        let limit = Duration::from_secs(20);
        assert!(finishes_in_a_forked_child(|| deque.close_io(), limit));
        // The parent's writer then finishes, and the parent closes.
        drop(EventfdWrite {
            poller: deque.poller.as_ref().unwrap(),
            writers: &deque.eventfd_writers,
        });
        deque.close_io();
        assert!(!deque.poller.as_ref().unwrap().owns(0));
    }
}
