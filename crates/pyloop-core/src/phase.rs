//! The tags of the optimisation phases: parse, print, list.

use std::fmt;
use std::str::FromStr;

/// One optimisation phase of the ready queue, named by what it changed.
///
/// The tags `"3.1.1"` … `"3.1.4"` are the original project's; later tags are ours.
/// [`Phase::ALL`] lists them oldest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// 3.1.1: at most 128 callbacks a turn, run under the lock; idle loop polls every 1 ms.
    BatchLimit,
    /// 3.1.2: the idle poll backs off (spin, yield, growing sleeps) and resets on work.
    AdaptiveSleep,
    /// 3.1.3: the idle loop sleeps on a condition variable; producers signal it.
    CondvarWake,
    /// 3.1.4: take the batch under the lock into a fresh buffer, run it after unlocking.
    TwoPhase,
    /// 3.1.5 (ours): swap the whole queue for an empty one in O(1), no allocation per batch.
    SwapBuffer,
    /// 3.2.1 (ours): 3.1.5's queue, but the idle loop sleeps in epoll, woken by an
    /// eventfd, so that one wait covers callbacks, timers and sockets.
    EpollWake,
    /// 3.3.1 (ours): producers push without a lock, into a linked list of
    /// blocks; 3.2.1's epoll wait and eventfd wake-up are kept.
    LockFree,
}

impl Phase {
    /// Every phase, oldest first.
    pub const ALL: [Phase; 7] = [
        Phase::BatchLimit,
        Phase::AdaptiveSleep,
        Phase::CondvarWake,
        Phase::TwoPhase,
        Phase::SwapBuffer,
        Phase::EpollWake,
        Phase::LockFree,
    ];

    /// The phase the event loop uses unless told otherwise: 3.2.1, until the
    /// newer 3.3.1 is shown to be faster from Python too.
    pub const DEFAULT: Phase = Phase::EpollWake;

    /// The tag, as `"3.1.4"`.
    pub const fn tag(self) -> &'static str {
        match self {
            Phase::BatchLimit => "3.1.1",
            Phase::AdaptiveSleep => "3.1.2",
            Phase::CondvarWake => "3.1.3",
            Phase::TwoPhase => "3.1.4",
            Phase::SwapBuffer => "3.1.5",
            Phase::EpollWake => "3.2.1",
            Phase::LockFree => "3.3.1",
        }
    }

    /// A short human name, as used in the book's tables.
    pub const fn title(self) -> &'static str {
        match self {
            Phase::BatchLimit => "batch limit",
            Phase::AdaptiveSleep => "adaptive sleep",
            Phase::CondvarWake => "condvar wake-up",
            Phase::TwoPhase => "two-phase extraction",
            Phase::SwapBuffer => "swapped buffer",
            Phase::EpollWake => "epoll wake-up",
            Phase::LockFree => "lock-free push",
        }
    }

    /// True if an idle loop finds new work by polling, so that a push is seen
    /// only at the next poll (at most [`POLL_INTERVAL`](crate::phases::POLL_INTERVAL) later),
    /// rather than by being woken.
    pub const fn polls_when_idle(self) -> bool {
        matches!(self, Phase::BatchLimit | Phase::AdaptiveSleep)
    }

    /// True if the idle loop sleeps in `epoll_wait`, so that the same wait covers
    /// sockets: the phases an event loop can do I/O on.
    pub const fn waits_in_epoll(self) -> bool {
        matches!(self, Phase::EpollWake | Phase::LockFree)
    }

    /// True if the loop holds the queue lock while it runs callbacks, so that a
    /// producer pushing meanwhile waits for the whole batch.
    pub const fn holds_lock_while_running(self) -> bool {
        matches!(
            self,
            Phase::BatchLimit | Phase::AdaptiveSleep | Phase::CondvarWake
        )
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// The error of parsing a tag that names no phase; its message lists the valid tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownPhase(pub String);

impl fmt::Display for UnknownPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tags: Vec<&str> = Phase::ALL.iter().map(|p| p.tag()).collect();
        write!(
            f,
            "unknown phase {:?}: expected one of {}",
            self.0,
            tags.join(", ")
        )
    }
}

impl std::error::Error for UnknownPhase {}

impl FromStr for Phase {
    type Err = UnknownPhase;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Phase::ALL
            .into_iter()
            .find(|p| p.tag() == s.trim())
            .ok_or_else(|| UnknownPhase(s.to_owned()))
    }
}

/// Runs `$body` with `$queue` bound to the queue type of `$phase` (a generic
/// type alias taking the item type), so that code generic over [`ReadyQueue`]
/// can be dispatched from a run-time [`Phase`].
///
/// ```
/// use pyloop_core::{with_phase_queue, Phase, ReadyQueue};
/// fn name<Q: ReadyQueue<u32>>() -> &'static str { Q::PHASE.tag() }
/// let tag = with_phase_queue!(Phase::TwoPhase, Q => name::<Q<u32>>());
/// assert_eq!(tag, "3.1.4");
/// ```
///
/// [`ReadyQueue`]: crate::ReadyQueue
#[macro_export]
macro_rules! with_phase_queue {
    ($phase:expr, $queue:ident => $body:expr) => {
        match $phase {
            $crate::Phase::BatchLimit => {
                type $queue<T> = $crate::phases::BatchLimitQueue<T>;
                $body
            }
            $crate::Phase::AdaptiveSleep => {
                type $queue<T> = $crate::phases::AdaptiveSleepQueue<T>;
                $body
            }
            $crate::Phase::CondvarWake => {
                type $queue<T> = $crate::phases::CondvarWakeQueue<T>;
                $body
            }
            $crate::Phase::TwoPhase => {
                type $queue<T> = $crate::phases::TwoPhaseQueue<T>;
                $body
            }
            $crate::Phase::SwapBuffer => {
                type $queue<T> = $crate::phases::SwapBufferQueue<T>;
                $body
            }
            $crate::Phase::EpollWake => {
                type $queue<T> = $crate::phases::EpollWakeQueue<T>;
                $body
            }
            $crate::Phase::LockFree => {
                type $queue<T> = $crate::phases::LockFreeQueue<T>;
                $body
            }
        }
    };
}
