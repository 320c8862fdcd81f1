//! Phase 3.1.3 — condition-variable wake-up.
//!
//! **What changed since 3.1.2.** The idle loop no longer polls. It sleeps on a
//! condition variable until a producer signals it, [`wake`](crate::ReadyQueue::wake)
//! is called, or the next timer is due. Producers signal only when the loop is
//! actually asleep, so a busy loop costs them no system call.
//!
//! **No lost wake-up, and why.** The original kept a "has work" flag outside the
//! lock and reset it without looking at the queue: a push landing between the
//! loop's last look and the reset was never signalled, and the loop slept through
//! it until its poll timeout. Here the loop decides to sleep and marks itself
//! `sleeping` *under the queue lock*, and the condition variable releases that
//! lock atomically as the loop goes to sleep. A producer pushes and reads
//! `sleeping` under the same lock. So either the push happened before the
//! loop's look (the loop sees the item and does not sleep) or after the loop
//! was marked asleep (the producer sees the mark and signals). The loom model
//! `loom_wake_up` checks every interleaving of this.
//!
//! **What it costs.** Nothing while busy; one futex wake when a push finds the
//! loop asleep. The lock is still held while callbacks run.

use std::time::{Duration, Instant};

use crate::locked::{delegate_to_locked_deque, LockedDeque};
use crate::sync::Ordering;
use crate::{Phase, ReadyQueue};

/// Phase 3.1.3: batches still run under the lock; the idle loop sleeps on a condvar.
pub struct CondvarWakeQueue<T> {
    deque: LockedDeque<T>,
}

// ANCHOR: wait_on_condvar
/// Sleeps on the deque's condition variable until there is a reason to return
/// or the timeout passes. Shared by every phase from 3.1.3 on.
pub(crate) fn wait_on_condvar<T>(deque: &LockedDeque<T>, timeout: Option<Duration>) {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut state = deque.lock();
    if LockedDeque::has_reason_to_return(&mut state) {
        return;
    }
    deque.stats.record_idle_wait();
    loop {
        state.sleeping = true;
        state = match deadline {
            None => deque.ready.wait(state).unwrap_or_else(|e| e.into_inner()),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    state.sleeping = false;
                    return;
                }
                let (state, _) = deque
                    .ready
                    .wait_timeout(state, left)
                    .unwrap_or_else(|e| e.into_inner());
                state
            }
        };
        state.sleeping = false;
        if LockedDeque::has_reason_to_return(&mut state) {
            return;
        }
    }
}
// ANCHOR_END: wait_on_condvar

// ANCHOR: impl
impl<T: Send + 'static> ReadyQueue<T> for CondvarWakeQueue<T> {
    const PHASE: Phase = Phase::CondvarWake;
    type Consumer = ();

    fn try_with_batch_limit(batch_limit: usize) -> std::io::Result<Self> {
        Ok(CondvarWakeQueue {
            deque: LockedDeque::new(batch_limit)?,
        })
    }

    fn consumer(&self) {}

    fn run_batch<F: FnMut(T)>(&self, _: &mut (), run: F) -> usize {
        self.deque.run_batch_under_lock(run)
    }

    fn wait(&self, _: &mut (), timeout: Option<Duration>) {
        wait_on_condvar(&self.deque, timeout)
    }

    fn has_pending(&self, _: &()) -> bool {
        self.deque.queued.load(Ordering::Relaxed) > 0
    }

    delegate_to_locked_deque!(deque);
}
// ANCHOR_END: impl
