//! Phase 3.1.5 — swapped buffer (ours, past the seed).
//!
//! **What changed since 3.1.4.** When its own buffer is empty, the loop takes
//! the lock and swaps the producers' whole deque for its own empty one: one
//! `mem::swap` of two `VecDeque` headers (four words each), whatever the
//! queue's length. It then runs at most
//! [`BATCH_LIMIT`](crate::BATCH_LIMIT) callbacks a turn from its buffer, and
//! takes the lock again only once the buffer is used up. The idle wait is
//! 3.1.3's.
//!
//! **Why.** 3.1.4 still moved callbacks one by one under the lock and allocated
//! a `Vec` each turn. The swap makes the loop's time under the lock constant and
//! tiny, takes the lock once per *queue-full* instead of once per batch, and
//! allocates nothing in a steady state: the two deques trade places and keep
//! their capacity. The summary proposed a stack array ("3.1.4.1"); the swap
//! goes further, and is what rloop does, but unlike rloop we keep the bounded
//! batch, so callbacks the loop schedules for itself still run every turn under
//! a flood from other threads.
//!
//! **What it costs.** Callbacks taken by a swap wait in the loop's buffer; the
//! loop runs them before it looks at the queue again, so order is kept. The
//! buffer keeps the capacity of the largest burst seen.

use std::collections::VecDeque;
use std::time::Duration;

use super::p3_1_3_condvar_wake::wait_on_condvar;
use crate::locked::{delegate_to_locked_deque, LockedDeque};
use crate::sync::Ordering;
use crate::{Phase, ReadyQueue};

/// Phase 3.1.5: swap the whole queue out in O(1), run bounded batches from it.
pub struct SwapBufferQueue<T> {
    deque: LockedDeque<T>,
}

// ANCHOR: run_batch
/// Runs at most the batch limit from `taken`, first swapping the producers'
/// whole deque into it if it is empty. Shared by every phase from 3.1.5 on.
pub(crate) fn run_swapped_batch<T, F: FnMut(T)>(
    deque: &LockedDeque<T>,
    taken: &mut VecDeque<T>,
    mut run: F,
) -> usize {
    let (mut held, mut waited) = (Duration::ZERO, Duration::ZERO);
    if taken.is_empty() {
        if deque.looks_empty() {
            return 0;
        }
        let (mut state, got, wait) = deque.lock_for_batch();
        std::mem::swap(&mut state.items, taken);
        deque.queued.store(0, Ordering::Relaxed);
        held = got.elapsed();
        waited = wait;
    }
    let ran = taken.len().min(deque.batch_limit);
    if ran > 0 {
        deque.stats.record_batch(ran, held, waited);
    }
    for item in taken.drain(..ran) {
        run(item);
    }
    ran
}
// ANCHOR_END: run_batch

// ANCHOR: impl
impl<T: Send + 'static> ReadyQueue<T> for SwapBufferQueue<T> {
    const PHASE: Phase = Phase::SwapBuffer;
    /// The callbacks taken by the last swap and not yet run, oldest first.
    type Consumer = VecDeque<T>;

    fn try_with_batch_limit(batch_limit: usize) -> std::io::Result<Self> {
        Ok(SwapBufferQueue {
            deque: LockedDeque::new(batch_limit)?,
        })
    }

    fn consumer(&self) -> VecDeque<T> {
        VecDeque::new()
    }

    fn run_batch<F: FnMut(T)>(&self, taken: &mut VecDeque<T>, run: F) -> usize {
        run_swapped_batch(&self.deque, taken, run)
    }

    fn wait(&self, taken: &mut VecDeque<T>, timeout: Option<Duration>) {
        if taken.is_empty() {
            wait_on_condvar(&self.deque, timeout)
        }
    }

    fn has_pending(&self, taken: &VecDeque<T>) -> bool {
        !taken.is_empty() || self.deque.queued.load(Ordering::Relaxed) > 0
    }

    fn for_each_taken(taken: &VecDeque<T>, f: &mut dyn FnMut(&T)) {
        taken.iter().for_each(f);
    }

    delegate_to_locked_deque!(deque);
}
// ANCHOR_END: impl
