//! The contenders: every phase of `pyloop-core` and three peers, behind one
//! small interface, [`BenchQueue`], that the scenarios drive.
//!
//! **What every contender does the same.** Producers call
//! [`push`](BenchQueue::push) from any thread. The one consumer calls
//! [`run_turn`](BenchQueue::run_turn) over and over, and when a turn finds
//! nothing it calls [`wait_idle`](BenchQueue::wait_idle), which returns once
//! there is work (no timeout). That is the loop turn of the real event loop
//! with timers and I/O left out.
//!
//! **Where they differ, on purpose, and only there.**
//!
//! | contender | producer side | consumer turn | idle wait |
//! |---|---|---|---|
//! | phases 3.1.1–3.2.1 | the phase's `push` (one `Mutex<VecDeque>` shared with the consumer) | the phase's `run_batch`: at most 128 | the phase's `wait(None)`: 1 ms poll (3.1.1), back-off poll (3.1.2), condvar (3.1.3–3.1.5), epoll (3.2.1) |
//! | phase 3.3.1 | the phase's `push`: a compare-and-swap on the tail of a list of blocks, no lock | the phase's `run_batch`: at most 128, read in order | epoll, as 3.2.1 |
//! | `std-mpsc` | `std::sync::mpsc::Sender::send` (lock-free list) | `try_recv` up to 128: the same bound as the phases, so the same work a turn | blocking `recv` (futex park) |
//! | `crossbeam` | `crossbeam_channel::Sender::send` on an unbounded (lock-free list) channel | `try_recv` up to 128 | blocking `recv` (brief spin, then park) |
//! | `swap-all` | `Mutex<VecDeque>` push, as the phases | rloop's drain: replace the whole deque with a fresh one of capacity 128 under the lock, run *everything* taken, no bound | condvar, as 3.1.3+ (rloop wakes its `mio` poll through a socket instead; a socket write costs a system call on every wake, which would not be the queue's cost) |
//!
//! The channel peers' blocking `recv` takes the item it waited for; the
//! consumer keeps it ([`ChannelConsumer`]) and runs it first in the next turn,
//! so no item is run outside a turn.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::{mpsc, Condvar, Mutex, MutexGuard, TryLockError};
use std::time::Instant;

use pyloop_core::{Phase, ReadyQueue, Stats, StatsSnapshot, BATCH_LIMIT};

/// One thing measured: a phase of the ready queue, or a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Contender {
    /// A phase of `pyloop-core`, driven through its [`ReadyQueue`] implementation.
    Phase(Phase),
    /// `std::sync::mpsc::channel`, unbounded.
    StdMpsc,
    /// `crossbeam_channel::unbounded`.
    Crossbeam,
    /// One `Mutex<VecDeque>` whose whole contents the consumer takes each turn
    /// and runs without a bound (rloop's approach).
    SwapAll,
}

impl Contender {
    /// Every contender: the phases oldest first, then the peers.
    pub fn all() -> Vec<Contender> {
        Phase::ALL
            .into_iter()
            .map(Contender::Phase)
            .chain([Contender::StdMpsc, Contender::Crossbeam, Contender::SwapAll])
            .collect()
    }

    /// The short name used in the results file and on the command line:
    /// the phase tag (`"3.1.4"`) or the peer's name (`"crossbeam"`).
    pub fn id(self) -> &'static str {
        match self {
            Contender::Phase(p) => p.tag(),
            Contender::StdMpsc => "std-mpsc",
            Contender::Crossbeam => "crossbeam",
            Contender::SwapAll => "swap-all",
        }
    }

    /// A human description for tables.
    pub fn label(self) -> String {
        match self {
            Contender::Phase(p) => format!("{} {}", p.tag(), p.title()),
            Contender::StdMpsc => "std::sync::mpsc (unbounded)".to_owned(),
            Contender::Crossbeam => "crossbeam-channel (unbounded)".to_owned(),
            Contender::SwapAll => "Mutex<VecDeque>, whole swap (rloop-style)".to_owned(),
        }
    }

    /// `"phase"` or `"peer"`.
    pub fn kind(self) -> &'static str {
        match self {
            Contender::Phase(_) => "phase",
            _ => "peer",
        }
    }

    /// How this contender's consumer bounds a turn, for the results file.
    pub fn turn(self) -> &'static str {
        match self {
            Contender::Phase(Phase::SwapBuffer) => {
                "swap the whole queue when the own buffer is empty; run at most 128 a turn"
            }
            Contender::Phase(Phase::TwoPhase) => {
                "move at most 128 into a new Vec under the lock; run them unlocked"
            }
            Contender::Phase(Phase::LockFree) => {
                "no lock: read at most 128 slots in order, up to the tail seen when the turn began"
            }
            Contender::Phase(_) => "run at most 128 while holding the lock",
            Contender::StdMpsc | Contender::Crossbeam => "try_recv at most 128, run each",
            Contender::SwapAll => "replace the whole deque under the lock; run everything",
        }
    }
}

impl fmt::Display for Contender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The error of parsing a name that is no contender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownContender(pub String);

impl fmt::Display for UnknownContender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = Contender::all().into_iter().map(Contender::id).collect();
        write!(
            f,
            "unknown contender {:?}: expected one of {}",
            self.0,
            ids.join(", ")
        )
    }
}

impl std::error::Error for UnknownContender {}

impl FromStr for Contender {
    type Err = UnknownContender;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Contender::all()
            .into_iter()
            .find(|c| c.id() == s.trim())
            .ok_or_else(|| UnknownContender(s.to_owned()))
    }
}

// ANCHOR: bench_queue
/// The interface the scenarios drive: a multi-producer, single-consumer queue
/// with a loop-style consumer turn and an idle wait.
pub trait BenchQueue<T: Send + 'static>: Send + Sync + Sized + 'static {
    /// The consumer's private state, moved to the consumer thread.
    type Consumer: Send;

    /// A new, empty queue.
    fn create() -> Self;

    /// The consumer's state. Called once per queue.
    fn consumer(&self) -> Self::Consumer;

    /// Appends `item`; callable from any thread at once.
    fn push(&self, item: T);

    /// One consumer turn: runs the callbacks this contender takes in a turn
    /// (see the module table) by calling `run` on each; returns how many.
    fn run_turn<F: FnMut(T)>(&self, consumer: &mut Self::Consumer, run: F) -> usize;

    /// Returns once there is work, waiting without a timeout if there is none.
    fn wait_idle(&self, consumer: &mut Self::Consumer);

    /// The lock counters of contenders that keep them: every phase, and
    /// `swap-all` (kept by the same rules, see [`SwapAllPeer`]); `None` for the
    /// lock-free channels.
    fn lock_stats(&self) -> Option<StatsSnapshot>;
}
// ANCHOR_END: bench_queue

/// Runs `$body` with `$queue` bound to the [`BenchQueue`] type of the
/// contender `$contender` (a generic alias taking the item type).
///
/// ```
/// use pyloop_benchmarks::{with_contender, BenchQueue, Contender};
/// fn len<Q: BenchQueue<u64>>() -> usize {
///     let q = Q::create();
///     let mut c = q.consumer();
///     q.push(1);
///     q.run_turn(&mut c, |_| {})
/// }
/// for contender in Contender::all() {
///     assert_eq!(with_contender!(contender, Q => len::<Q<u64>>()), 1);
/// }
/// ```
#[macro_export]
macro_rules! with_contender {
    ($contender:expr, $queue:ident => $body:expr) => {
        match $contender {
            $crate::Contender::Phase(phase) => {
                ::pyloop_core::with_phase_queue!(phase, PhaseQueue => {
                    #[allow(dead_code)]
                    type $queue<T> = $crate::Phased<PhaseQueue<T>>;
                    $body
                })
            }
            $crate::Contender::StdMpsc => {
                #[allow(dead_code)]
                type $queue<T> = $crate::MpscPeer<T>;
                $body
            }
            $crate::Contender::Crossbeam => {
                #[allow(dead_code)]
                type $queue<T> = $crate::CrossbeamPeer<T>;
                $body
            }
            $crate::Contender::SwapAll => {
                #[allow(dead_code)]
                type $queue<T> = $crate::SwapAllPeer<T>;
                $body
            }
        }
    };
}

// ---------------------------------------------------------------------------
// The phases.

/// A phase of `pyloop-core` seen through [`BenchQueue`]: each method is the
/// phase's own, with the standard batch limit and no wait timeout.
pub struct Phased<Q>(pub Q);

impl<T: Send + 'static, Q: ReadyQueue<T>> BenchQueue<T> for Phased<Q> {
    type Consumer = Q::Consumer;

    fn create() -> Self {
        Phased(Q::new())
    }

    fn consumer(&self) -> Q::Consumer {
        self.0.consumer()
    }

    #[inline]
    fn push(&self, item: T) {
        self.0
            .push(item)
            .expect("benchmark queues are never closed");
    }

    #[inline]
    fn run_turn<F: FnMut(T)>(&self, consumer: &mut Q::Consumer, run: F) -> usize {
        self.0.run_batch(consumer, run)
    }

    fn wait_idle(&self, consumer: &mut Q::Consumer) {
        self.0.wait(consumer, None)
    }

    fn lock_stats(&self) -> Option<StatsSnapshot> {
        Some(self.0.stats().snapshot())
    }
}

// ---------------------------------------------------------------------------
// The channel peers.

/// The consumer side of a channel peer: the receiver, and the item a blocking
/// `recv` returned while idle, to be run first in the next turn.
pub struct ChannelConsumer<R, T> {
    rx: R,
    stash: Option<T>,
}

/// One channel-peer turn: the stashed item, then `try_recv` until the turn
/// holds [`BATCH_LIMIT`] items or the channel is empty.
#[inline]
fn channel_turn<T>(
    stash: &mut Option<T>,
    mut try_recv: impl FnMut() -> Option<T>,
    mut run: impl FnMut(T),
) -> usize {
    let mut ran = 0;
    if let Some(item) = stash.take() {
        run(item);
        ran += 1;
    }
    while ran < BATCH_LIMIT {
        match try_recv() {
            Some(item) => {
                run(item);
                ran += 1;
            }
            None => break,
        }
    }
    ran
}

/// Peer: `std::sync::mpsc`'s unbounded channel (since Rust 1.67 a port of
/// crossbeam's list flavour). Producers never block on the consumer.
pub struct MpscPeer<T> {
    tx: mpsc::Sender<T>,
    /// The receiver until [`consumer`](BenchQueue::consumer) takes it.
    rx: Mutex<Option<mpsc::Receiver<T>>>,
}

impl<T: Send + 'static> BenchQueue<T> for MpscPeer<T> {
    type Consumer = ChannelConsumer<mpsc::Receiver<T>, T>;

    fn create() -> Self {
        let (tx, rx) = mpsc::channel();
        MpscPeer {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }

    fn consumer(&self) -> Self::Consumer {
        let rx = self.rx.lock().unwrap().take();
        ChannelConsumer {
            rx: rx.expect("one consumer per queue"),
            stash: None,
        }
    }

    #[inline]
    fn push(&self, item: T) {
        // The receiver lives as long as the consumer, which outlives every push.
        self.tx.send(item).expect("the consumer is alive");
    }

    #[inline]
    fn run_turn<F: FnMut(T)>(&self, c: &mut Self::Consumer, run: F) -> usize {
        let rx = &c.rx;
        channel_turn(&mut c.stash, || rx.try_recv().ok(), run)
    }

    fn wait_idle(&self, c: &mut Self::Consumer) {
        if c.stash.is_none() {
            c.stash = c.rx.recv().ok();
        }
    }

    fn lock_stats(&self) -> Option<StatsSnapshot> {
        None
    }
}

/// Peer: `crossbeam_channel::unbounded`, a lock-free linked list of blocks.
pub struct CrossbeamPeer<T> {
    tx: crossbeam_channel::Sender<T>,
    /// The receiver until [`consumer`](BenchQueue::consumer) takes it.
    rx: Mutex<Option<crossbeam_channel::Receiver<T>>>,
}

impl<T: Send + 'static> BenchQueue<T> for CrossbeamPeer<T> {
    type Consumer = ChannelConsumer<crossbeam_channel::Receiver<T>, T>;

    fn create() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        CrossbeamPeer {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }

    fn consumer(&self) -> Self::Consumer {
        let rx = self.rx.lock().unwrap().take();
        ChannelConsumer {
            rx: rx.expect("one consumer per queue"),
            stash: None,
        }
    }

    #[inline]
    fn push(&self, item: T) {
        self.tx.send(item).expect("the consumer is alive");
    }

    #[inline]
    fn run_turn<F: FnMut(T)>(&self, c: &mut Self::Consumer, run: F) -> usize {
        let rx = &c.rx;
        channel_turn(&mut c.stash, || rx.try_recv().ok(), run)
    }

    fn wait_idle(&self, c: &mut Self::Consumer) {
        if c.stash.is_none() {
            c.stash = c.rx.recv().ok();
        }
    }

    fn lock_stats(&self) -> Option<StatsSnapshot> {
        None
    }
}

// ---------------------------------------------------------------------------
// The swap-all peer.

/// What the swap-all peer's lock protects.
struct SwapState<T> {
    items: VecDeque<T>,
    /// Set by the consumer, under the lock, before it sleeps; a producer that
    /// finds it set clears it and signals (the no-lost-wake-up protocol of
    /// phase 3.1.3, so the idle wait costs the same as the phases').
    sleeping: bool,
}

/// Peer: rloop's ready queue. One `Mutex<VecDeque>`; each turn the consumer
/// replaces the whole deque with a fresh one of capacity 128 (allocated under
/// the lock, as rloop's `mem::replace` does) and runs everything it took,
/// without a bound.
///
/// Its counters follow the phases' rules (a push that finds the lock taken is
/// timed; the consumer times its hold per turn), so its lock-hold figures
/// compare with theirs.
pub struct SwapAllPeer<T> {
    state: Mutex<SwapState<T>>,
    ready: Condvar,
    stats: Stats,
}

impl<T> SwapAllPeer<T> {
    fn lock(&self) -> MutexGuard<'_, SwapState<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Send + 'static> BenchQueue<T> for SwapAllPeer<T> {
    /// Nothing: everything taken is run in the same turn.
    type Consumer = ();

    fn create() -> Self {
        SwapAllPeer {
            state: Mutex::new(SwapState {
                items: VecDeque::new(),
                sleeping: false,
            }),
            ready: Condvar::new(),
            stats: Stats::default(),
        }
    }

    fn consumer(&self) {}

    #[inline]
    fn push(&self, item: T) {
        let mut state = match self.state.try_lock() {
            Ok(state) => {
                self.stats.record_push();
                state
            }
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => {
                let asked = Instant::now();
                let state = self.lock();
                self.stats.record_contended_push(asked.elapsed());
                state
            }
        };
        state.items.push_back(item);
        let wake = std::mem::replace(&mut state.sleeping, false);
        drop(state);
        if wake {
            self.ready.notify_one();
        }
    }

    fn run_turn<F: FnMut(T)>(&self, _: &mut (), mut run: F) -> usize {
        let asked = Instant::now();
        let mut state = self.lock();
        let got = Instant::now();
        let taken = std::mem::replace(&mut state.items, VecDeque::with_capacity(BATCH_LIMIT));
        let held = got.elapsed();
        drop(state);
        let ran = taken.len();
        if ran > 0 {
            self.stats.record_batch(ran, held, got - asked);
        }
        for item in taken {
            run(item);
        }
        ran
    }

    fn wait_idle(&self, _: &mut ()) {
        let mut state = self.lock();
        if !state.items.is_empty() {
            return;
        }
        self.stats.record_idle_wait();
        while state.items.is_empty() {
            state.sleeping = true;
            state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.sleeping = false;
    }

    fn lock_stats(&self) -> Option<StatsSnapshot> {
        Some(self.stats.snapshot())
    }
}
