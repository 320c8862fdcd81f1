//! Phase 3.1.2 — adaptive sleep.
//!
//! **What changed since 3.1.1.** Only the idle wait. Instead of a fixed 1 ms
//! nap, the loop backs off: it first spins a few times (work that arrives within
//! a microsecond is taken at once), then yields its time slice a few times, then
//! sleeps for a time that doubles from 10 µs up to the 1 ms cap. Any batch that
//! finds work resets the back-off to the start.
//!
//! **Why.** Under bursty load most gaps are short; a fixed 1 ms nap made every
//! gap cost up to 1 ms of latency.
//!
//! **What it costs.** A spinning loop burns a core while it spins, and it still
//! polls: after a long idle spell a push waits up to 1 ms to be seen, exactly as
//! in 3.1.1. The lock is still held while callbacks run.

use std::time::Duration;

use super::p3_1_1_batch_limit::{poll_until, POLL_INTERVAL};
use crate::locked::{delegate_to_locked_deque, LockedDeque};
use crate::sync::{spin_hint, yield_now, Ordering};
use crate::{Phase, ReadyQueue};

/// Phase 3.1.2: as 3.1.1, but the idle poll backs off and resets on work.
pub struct AdaptiveSleepQueue<T> {
    deque: LockedDeque<T>,
}

// ANCHOR: backoff
/// The idle back-off of phase 3.1.2: where it has got to since the last work.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Backoff {
    step: u32,
}

impl Backoff {
    /// Steps that spin (2, 4, … 64 spin hints).
    const SPIN_STEPS: u32 = 6;
    /// Steps after the spins that yield the time slice once.
    const YIELD_STEPS: u32 = 4;
    /// The first sleep, doubled each step up to [`POLL_INTERVAL`].
    const FIRST_SLEEP: Duration = Duration::from_micros(10);

    /// Waits out one step and returns how long the caller should still sleep.
    pub fn step(&mut self) -> Duration {
        let step = self.step;
        self.step = self.step.saturating_add(1);
        if step < Self::SPIN_STEPS {
            for _ in 0..(2u32 << step) {
                spin_hint();
            }
            Duration::ZERO
        } else if step < Self::SPIN_STEPS + Self::YIELD_STEPS {
            yield_now();
            Duration::ZERO
        } else {
            let doublings = (step - Self::SPIN_STEPS - Self::YIELD_STEPS).min(16);
            (Self::FIRST_SLEEP * (1 << doublings)).min(POLL_INTERVAL)
        }
    }

    /// Back to the first step, after work was found.
    pub fn reset(&mut self) {
        self.step = 0;
    }
}
// ANCHOR_END: backoff

// ANCHOR: impl
impl<T: Send + 'static> ReadyQueue<T> for AdaptiveSleepQueue<T> {
    const PHASE: Phase = Phase::AdaptiveSleep;
    type Consumer = Backoff;

    fn try_with_batch_limit(batch_limit: usize) -> std::io::Result<Self> {
        Ok(AdaptiveSleepQueue {
            deque: LockedDeque::new(batch_limit)?,
        })
    }

    fn consumer(&self) -> Backoff {
        Backoff::default()
    }

    fn run_batch<F: FnMut(T)>(&self, backoff: &mut Backoff, run: F) -> usize {
        let ran = self.deque.run_batch_under_lock(run);
        if ran > 0 {
            backoff.reset();
        }
        ran
    }

    fn wait(&self, backoff: &mut Backoff, timeout: Option<Duration>) {
        poll_until(&self.deque, timeout, || backoff.step())
    }

    fn has_pending(&self, _: &Backoff) -> bool {
        self.deque.queued.load(Ordering::Relaxed) > 0
    }

    delegate_to_locked_deque!(deque);
}
// ANCHOR_END: impl
