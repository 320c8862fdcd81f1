//! Phase 3.1.1 — batch limit.
//!
//! **What it is.** The starting point: one `VecDeque` behind one `Mutex`, taken
//! by every producer to push and by the loop to run. Each turn the loop takes
//! the lock and runs at most [`BATCH_LIMIT`](crate::BATCH_LIMIT) callbacks
//! *while holding it*, then lets go and returns to its timers. When there is
//! nothing to do it sleeps a fixed [`POLL_INTERVAL`] and looks again.
//!
//! **Why.** Without a limit, a loop that drains everything it finds can be kept
//! in the queue forever by a fast producer, and its timers and its own callbacks
//! starve. 128 bounds the time between two looks at the timers.
//!
//! **What it costs.** A producer that pushes while a batch runs waits for the
//! whole batch (up to 128 callbacks' worth). An idle loop wakes a thousand times
//! a second to find nothing, and a push to an idle loop is seen up to 1 ms late.

use std::time::{Duration, Instant};

use crate::locked::{delegate_to_locked_deque, LockedDeque};
use crate::sync::{sleep, Ordering};
use crate::{Phase, ReadyQueue};

/// How long the idle loop of phase 3.1.1 sleeps between two looks at the queue;
/// also the cap of phase 3.1.2's back-off.
pub const POLL_INTERVAL: Duration = Duration::from_millis(1);

/// Phase 3.1.1: one locked deque, batches run under the lock, fixed 1 ms idle poll.
pub struct BatchLimitQueue<T> {
    deque: LockedDeque<T>,
}

// ANCHOR: poll_until
/// Looks at the queue, and while there is no reason to return, naps for what
/// `nap` says (never past the deadline) and looks again. Shared by the two
/// polling phases; they differ only in `nap`.
pub(crate) fn poll_until<T>(
    deque: &LockedDeque<T>,
    timeout: Option<Duration>,
    mut nap: impl FnMut() -> Duration,
) {
    let deadline = timeout.map(|t| Instant::now() + t);
    deque.stats.record_idle_wait();
    loop {
        if deque.queued.load(Ordering::Relaxed) > 0
            || LockedDeque::has_reason_to_return(&mut deque.lock())
        {
            return;
        }
        let mut pause = nap();
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            pause = pause.min(left);
        }
        if !pause.is_zero() {
            sleep(pause);
        }
    }
}
// ANCHOR_END: poll_until

// ANCHOR: impl
impl<T: Send + 'static> ReadyQueue<T> for BatchLimitQueue<T> {
    const PHASE: Phase = Phase::BatchLimit;
    type Consumer = ();

    fn try_with_batch_limit(batch_limit: usize) -> std::io::Result<Self> {
        Ok(BatchLimitQueue {
            deque: LockedDeque::new(batch_limit)?,
        })
    }

    fn consumer(&self) {}

    fn run_batch<F: FnMut(T)>(&self, _: &mut (), run: F) -> usize {
        self.deque.run_batch_under_lock(run)
    }

    fn wait(&self, _: &mut (), timeout: Option<Duration>) {
        poll_until(&self.deque, timeout, || POLL_INTERVAL)
    }

    fn has_pending(&self, _: &()) -> bool {
        self.deque.queued.load(Ordering::Relaxed) > 0
    }

    delegate_to_locked_deque!(deque);
}
// ANCHOR_END: impl
