//! Phase 3.1.4 — two-phase extraction.
//!
//! **What changed since 3.1.3.** The batch is no longer run under the lock. The
//! loop takes the lock, moves up to [`BATCH_LIMIT`](crate::BATCH_LIMIT)
//! callbacks into a freshly allocated `Vec`, lets go, and only then runs them.
//! The idle wait is 3.1.3's.
//!
//! **Why.** While the lock was held for a whole batch, every producer that
//! pushed meanwhile waited for every callback of the batch. Now a producer
//! waits at most for the moving of up to 128 pointers.
//!
//! **What it costs.** One allocation and one extra pass over the batch per
//! turn. The original reported this as a 25 % single-thread slowdown; at this
//! level it is a few nanoseconds a callback (see the book's table).
//!
//! **Why the original could not show the gain.** There, producers never took the
//! lock this phase shortens (they pushed into a channel; only the loop locked
//! the receiver), so shortening it could not change what producers saw. Here
//! producers and loop share the lock, so it does.

use std::time::Duration;

use super::p3_1_3_condvar_wake::wait_on_condvar;
use crate::locked::{delegate_to_locked_deque, LockedDeque};
use crate::sync::Ordering;
use crate::{Phase, ReadyQueue};

/// Phase 3.1.4: take the batch under the lock into a new `Vec`, run it unlocked.
pub struct TwoPhaseQueue<T> {
    deque: LockedDeque<T>,
}

// ANCHOR: impl
impl<T: Send + 'static> ReadyQueue<T> for TwoPhaseQueue<T> {
    const PHASE: Phase = Phase::TwoPhase;
    type Consumer = ();

    fn try_with_batch_limit(batch_limit: usize) -> std::io::Result<Self> {
        Ok(TwoPhaseQueue {
            deque: LockedDeque::new(batch_limit)?,
        })
    }

    fn consumer(&self) {}

    // ANCHOR: run_batch
    fn run_batch<F: FnMut(T)>(&self, _: &mut (), mut run: F) -> usize {
        if self.deque.looks_empty() {
            return 0;
        }
        let mut batch = Vec::with_capacity(self.deque.batch_limit);
        let (mut state, got, waited) = self.deque.lock_for_batch();
        while batch.len() < self.deque.batch_limit {
            match state.items.pop_front() {
                Some(item) => batch.push(item),
                None => break,
            }
        }
        self.deque
            .queued
            .store(state.items.len(), Ordering::Relaxed);
        let held = got.elapsed();
        drop(state);
        let ran = batch.len();
        if ran > 0 {
            self.deque.stats.record_batch(ran, held, waited);
        }
        for item in batch {
            run(item);
        }
        ran
    }
    // ANCHOR_END: run_batch

    fn wait(&self, _: &mut (), timeout: Option<Duration>) {
        wait_on_condvar(&self.deque, timeout)
    }

    fn has_pending(&self, _: &()) -> bool {
        self.deque.queued.load(Ordering::Relaxed) > 0
    }

    delegate_to_locked_deque!(deque);
}
// ANCHOR_END: impl
