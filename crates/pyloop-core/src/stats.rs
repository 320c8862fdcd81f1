//! Counters every phase keeps, cheap enough to leave on.
//!
//! The consumer times how long it holds the queue lock for each batch (two clock
//! reads a batch) and how long it waited to get it. Producers count their pushes
//! and time only the pushes that found the lock taken, so the uncontended push
//! pays one relaxed increment. All counters are relaxed atomics: they are
//! statistics, not synchronisation.
//!
//! A phase whose producers take no lock (3.3.1) counts nothing per push: one
//! shared counter incremented by every producer would be a contended atomic on
//! the very path the phase makes lock-free. Its queue already numbers every
//! accepted push (the tail index), so its counters read the figure from there
//! when a snapshot is taken ([`Stats::with_push_source`]).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Number of power-of-two buckets in the lock-hold histogram (1 ns … 2^39 ns).
pub const HOLD_BUCKETS: usize = 40;

/// Where the counters of a phase that counts no pushes read their number.
struct PushSource(Box<dyn Fn() -> u64 + Send + Sync>);

impl fmt::Debug for PushSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PushSource(..)")
    }
}

/// Live counters of one queue.
#[derive(Debug)]
pub struct Stats {
    pushes: AtomicU64,
    /// If set, `pushes` is unused and snapshots take the figure from here.
    push_source: Option<PushSource>,
    contended_pushes: AtomicU64,
    push_wait_ns: AtomicU64,
    push_wait_max_ns: AtomicU64,
    batches: AtomicU64,
    callbacks: AtomicU64,
    hold_ns: AtomicU64,
    hold_max_ns: AtomicU64,
    consumer_wait_ns: AtomicU64,
    idle_waits: AtomicU64,
    hold_histogram: [AtomicU64; HOLD_BUCKETS],
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            pushes: AtomicU64::new(0),
            push_source: None,
            contended_pushes: AtomicU64::new(0),
            push_wait_ns: AtomicU64::new(0),
            push_wait_max_ns: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            callbacks: AtomicU64::new(0),
            hold_ns: AtomicU64::new(0),
            hold_max_ns: AtomicU64::new(0),
            consumer_wait_ns: AtomicU64::new(0),
            idle_waits: AtomicU64::new(0),
            hold_histogram: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

impl Stats {
    // ANCHOR: push_source
    /// Counters that keep no push count of their own: a snapshot's `pushes`
    /// is whatever `source` returns then (the number of pushes the queue has
    /// accepted so far). [`record_push`](Self::record_push) and
    /// [`record_contended_push`](Self::record_contended_push) must not be called on them.
    pub fn with_push_source(source: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Stats {
            push_source: Some(PushSource(Box::new(source))),
            ..Stats::default()
        }
    }
    // ANCHOR_END: push_source

    // ANCHOR: record
    /// Counts one push that took the lock at once (or needed none).
    #[inline]
    pub fn record_push(&self) {
        self.pushes.fetch_add(1, Relaxed);
    }

    /// Counts one push that found the lock taken and waited `waited` for it.
    pub fn record_contended_push(&self, waited: Duration) {
        let ns = nanos(waited);
        self.pushes.fetch_add(1, Relaxed);
        self.contended_pushes.fetch_add(1, Relaxed);
        self.push_wait_ns.fetch_add(ns, Relaxed);
        self.push_wait_max_ns.fetch_max(ns, Relaxed);
    }

    /// Counts one batch of `callbacks`, during which the consumer held the lock
    /// for `held` after waiting `waited` to get it.
    pub fn record_batch(&self, callbacks: usize, held: Duration, waited: Duration) {
        let ns = nanos(held);
        self.batches.fetch_add(1, Relaxed);
        self.callbacks.fetch_add(callbacks as u64, Relaxed);
        self.hold_ns.fetch_add(ns, Relaxed);
        self.hold_max_ns.fetch_max(ns, Relaxed);
        self.consumer_wait_ns.fetch_add(nanos(waited), Relaxed);
        let bucket = (64 - ns.leading_zeros() as usize).min(HOLD_BUCKETS - 1);
        self.hold_histogram[bucket].fetch_add(1, Relaxed);
    }
    // ANCHOR_END: record

    /// Counts one time the consumer went idle.
    pub fn record_idle_wait(&self) {
        self.idle_waits.fetch_add(1, Relaxed);
    }

    /// A copy of the counters as they are now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            pushes: match &self.push_source {
                Some(source) => (source.0)(),
                None => self.pushes.load(Relaxed),
            },
            contended_pushes: self.contended_pushes.load(Relaxed),
            push_wait_ns: self.push_wait_ns.load(Relaxed),
            push_wait_max_ns: self.push_wait_max_ns.load(Relaxed),
            batches: self.batches.load(Relaxed),
            callbacks: self.callbacks.load(Relaxed),
            hold_ns: self.hold_ns.load(Relaxed),
            hold_max_ns: self.hold_max_ns.load(Relaxed),
            consumer_wait_ns: self.consumer_wait_ns.load(Relaxed),
            idle_waits: self.idle_waits.load(Relaxed),
            hold_histogram: std::array::from_fn(|i| self.hold_histogram[i].load(Relaxed)),
        }
    }
}

/// A plain copy of [`Stats`], with the figures derived from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Items pushed.
    pub pushes: u64,
    /// Pushes that found the lock held by another thread.
    pub contended_pushes: u64,
    /// Total time contended pushes waited for the lock, ns.
    pub push_wait_ns: u64,
    /// Longest wait of one push, ns.
    pub push_wait_max_ns: u64,
    /// Batches the consumer ran that held at least one callback.
    pub batches: u64,
    /// Callbacks the consumer ran.
    pub callbacks: u64,
    /// Total time the consumer held the lock for its batches, ns.
    pub hold_ns: u64,
    /// Longest hold of one batch, ns.
    pub hold_max_ns: u64,
    /// Total time the consumer waited for the lock before its batches, ns.
    pub consumer_wait_ns: u64,
    /// Times the consumer went idle.
    pub idle_waits: u64,
    /// Batches whose hold time fell in `[2^(i-1), 2^i)` ns (bucket 0: 0 ns).
    pub hold_histogram: [u64; HOLD_BUCKETS],
}

impl StatsSnapshot {
    /// Mean callbacks per batch (0 if no batch ran).
    pub fn callbacks_per_batch(&self) -> f64 {
        ratio(self.callbacks, self.batches)
    }

    /// Mean lock hold per batch, ns.
    pub fn mean_hold_ns(&self) -> f64 {
        ratio(self.hold_ns, self.batches)
    }

    /// Mean wait of a contended push, ns.
    pub fn mean_push_wait_ns(&self) -> f64 {
        ratio(self.push_wait_ns, self.contended_pushes)
    }

    /// An upper bound for the `q`-quantile (0..=1) of the hold time per batch,
    /// in ns, read off the histogram (exact to within a factor of two).
    pub fn hold_quantile_ns(&self, q: f64) -> u64 {
        let total: u64 = self.hold_histogram.iter().sum();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, count) in self.hold_histogram.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return if i == 0 { 0 } else { 1u64 << i };
            }
        }
        self.hold_max_ns
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}
