//! Phase 3.2.1 — epoll wake-up (ours, past the seed).
//!
//! **What changed since 3.1.5.** Only where the idle loop sleeps. The queue and
//! its batches are 3.1.5's (the whole deque swapped out, bounded batches). But
//! instead of a condition variable, the loop sleeps in `epoll_wait` on a set
//! that holds an eventfd, and a producer that finds the loop asleep writes to
//! the eventfd instead of signalling a condition variable.
//!
//! **Why.** An event loop must also wait for sockets. A thread blocked on a
//! condition variable cannot be woken by a socket becoming readable; a thread
//! blocked in `epoll_wait` can be woken by anything that is a file descriptor,
//! and an eventfd turns "a producer pushed" into one. One wait now covers
//! callbacks from other threads, the next timer (the timeout) and I/O. The
//! [`Poller`] is exposed through [`ReadyQueue::poller`] so that the event loop
//! registers its sockets in the same set, and a busy loop still looks at its
//! sockets each turn (a zero-timeout `epoll_wait`).
//!
//! **No lost wake-up.** The protocol is 3.1.3's, with the eventfd in place of
//! the condition variable: the consumer checks for work and marks itself
//! `sleeping` under the lock, then calls `epoll_wait` after releasing it. A push
//! in between finds the mark and writes the eventfd, and the kernel keeps that
//! write for the next `epoll_wait`, which returns at once. loom checks it with
//! the eventfd modelled as a flag.
//!
//! **What it costs.** A wake is a `write` system call instead of a futex wake,
//! and a wait an `epoll_wait` instead of a futex wait: about the same. A busy
//! loop with sockets pays one non-blocking `epoll_wait` per turn.
//!
//! **Where the wake must not wait.** The loop a producer wakes often runs at
//! once, on the producer's own core. If the producer still holds the lock
//! then, the loop, which needs it to take its mark down or to swap the deque
//! out, sleeps again until the producer lets go: two more context switches
//! per wake-up from another thread. So a loop woken by the eventfd leaves the
//! mark alone (the producer already took it down), and the producer writes
//! the eventfd only after letting go of the lock. It promises the write under
//! the lock, in a count that `close_io` waits to see at zero before it closes
//! the eventfd, so that no write goes to a number that has been closed and
//! perhaps reused ([`LockedDeque`]'s `wake_sleeper` and `close_io`).

use std::collections::VecDeque;
use std::time::Duration;

use super::p3_1_5_swap_buffer::run_swapped_batch;
use crate::locked::{delegate_to_locked_deque, LockedDeque};
use crate::poller::{IoEvent, Poller};
use crate::sync::Ordering;
use crate::{Phase, ReadyQueue};

/// Phase 3.2.1: 3.1.5's swapped queue; the idle loop sleeps in epoll.
pub struct EpollWakeQueue<T> {
    deque: LockedDeque<T>,
}

/// The consumer's state in phase 3.2.1.
#[derive(Debug)]
pub struct EpollConsumer<T> {
    /// Callbacks taken by the last swap and not yet run, oldest first.
    taken: VecDeque<T>,
    /// Readiness found by the last wait, for the loop to take.
    events: Vec<IoEvent>,
}

impl<T> EpollWakeQueue<T> {
    fn poller_of(&self) -> &Poller {
        self.deque
            .poller
            .as_ref()
            .expect("phase 3.2.1 always has a poller")
    }
}

// ANCHOR: impl
impl<T: Send + 'static> ReadyQueue<T> for EpollWakeQueue<T> {
    const PHASE: Phase = Phase::EpollWake;
    type Consumer = EpollConsumer<T>;

    fn try_with_batch_limit(batch_limit: usize) -> std::io::Result<Self> {
        Ok(EpollWakeQueue {
            deque: LockedDeque::with_poller(batch_limit, Poller::new()?)?,
        })
    }

    fn consumer(&self) -> EpollConsumer<T> {
        EpollConsumer {
            taken: VecDeque::new(),
            events: Vec::new(),
        }
    }

    fn run_batch<F: FnMut(T)>(&self, consumer: &mut EpollConsumer<T>, run: F) -> usize {
        run_swapped_batch(&self.deque, &mut consumer.taken, run)
    }

    // ANCHOR: wait
    fn wait(&self, consumer: &mut EpollConsumer<T>, timeout: Option<Duration>) {
        let mut timeout = timeout;
        let busy = !consumer.taken.is_empty() || {
            let mut state = self.deque.lock();
            let busy = LockedDeque::has_reason_to_return(&mut state);
            state.sleeping = !busy;
            busy
        };
        if busy {
            timeout = Some(Duration::ZERO);
        } else {
            self.deque.stats.record_idle_wait();
        }
        // An error here (EBADF of a descriptor closed while registered is
        // reported per event, not here) would be a bug in the poller itself.
        let woken = self
            .poller_of()
            .wait(&mut consumer.events, timeout)
            .unwrap_or(false);
        // Woken by the eventfd, the mark is down (but after a stale write,
        // below): whoever wrote it took the mark down first, under the lock,
        // and another producer may hold the lock now; taking it here would
        // put the loop to sleep again until that producer lets go. (A stale
        // write can leave the mark up while the loop runs; that costs a
        // producer one needless write, never a lost wake-up, which needs the
        // mark down while the loop sleeps.)
        if !busy && !woken {
            self.deque.lock().sleeping = false;
        }
    }
    // ANCHOR_END: wait

    fn has_pending(&self, consumer: &EpollConsumer<T>) -> bool {
        !consumer.taken.is_empty() || self.deque.queued.load(Ordering::Relaxed) > 0
    }

    fn poller(&self) -> Option<&Poller> {
        self.deque.poller.as_ref()
    }

    fn take_io_events(&self, consumer: &mut EpollConsumer<T>, out: &mut Vec<IoEvent>) {
        if out.is_empty() {
            // Trade buffers: the caller's empty one keeps its capacity for the
            // next wait, so steady I/O allocates nothing.
            std::mem::swap(out, &mut consumer.events);
        } else {
            out.append(&mut consumer.events);
        }
    }

    fn close_io(&self) {
        self.deque.close_io()
    }

    fn for_each_taken(consumer: &EpollConsumer<T>, f: &mut dyn FnMut(&T)) {
        consumer.taken.iter().for_each(f);
    }

    delegate_to_locked_deque!(deque);
}
// ANCHOR_END: impl
