//! The timer heap every phase shares: ordered by deadline, then by the order
//! of scheduling; cancellation marks an entry and the heap drops it lazily.
//!
//! Deadlines are `f64` seconds on the loop's clock (`loop.time()` in Python),
//! checked to be finite by the caller. A cancelled timer stays in the heap until
//! it reaches the top or until cancelled entries outnumber live ones, when the
//! heap is rebuilt without them ([`Timers::note_cancelled`]), so that a program
//! that schedules and cancels many long timeouts does not grow without bound.
//!
//! The heap never drops an item itself. Cancelled entries it removes wait in a
//! side list until the owner takes them with [`Timers::take_discarded`]:
//! dropping an item may run arbitrary code (in PyLoop, a Python destructor,
//! which may call back into the loop that is in the middle of using the heap),
//! so the owner decides when that is safe.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Something in the timer heap that can be cancelled from outside it.
pub trait Cancellable {
    /// True once the timer has been cancelled; it must then never fire.
    fn is_cancelled(&self) -> bool;
}

/// Below this many entries the heap is never compacted: rebuilding a small
/// heap saves nothing.
pub const COMPACT_MIN_ENTRIES: usize = 64;

// ANCHOR: entry
struct Entry<T> {
    when: f64,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .when
            .total_cmp(&self.when)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}
// ANCHOR_END: entry

// ANCHOR: timers
/// Timers ordered by deadline then by scheduling order, with lazy cancellation.
pub struct Timers<T> {
    heap: BinaryHeap<Entry<T>>,
    next_seq: u64,
    /// Entries in `heap` known to be cancelled (an upper bound: the caller
    /// reports each cancellation once, while the entry is still scheduled).
    cancelled: usize,
    /// Cancelled entries removed from `heap`, not yet taken by the owner.
    discarded: Vec<T>,
}
// ANCHOR_END: timers

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            next_seq: 0,
            cancelled: 0,
            discarded: Vec::new(),
        }
    }
}

// ANCHOR: impl
impl<T: Cancellable> Timers<T> {
    /// An empty heap.
    pub fn new() -> Self {
        Self::default()
    }

    /// Schedules `item` for `when`; timers with equal deadlines fire in the
    /// order they were scheduled.
    pub fn push(&mut self, when: f64, item: T) {
        debug_assert!(!when.is_nan(), "a timer deadline must not be NaN");
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { when, seq, item });
    }

    /// Notes that one scheduled entry was cancelled; compacts the heap once
    /// cancelled entries are more than half of it.
    pub fn note_cancelled(&mut self) {
        self.cancelled += 1;
        if self.heap.len() >= COMPACT_MIN_ENTRIES && self.cancelled * 2 > self.heap.len() {
            self.compact();
        }
    }

    /// Removes every cancelled entry now (to [`take_discarded`](Self::take_discarded)).
    pub fn compact(&mut self) {
        let entries = std::mem::take(&mut self.heap).into_vec();
        let mut live = Vec::with_capacity(entries.len());
        for entry in entries {
            if entry.item.is_cancelled() {
                self.discarded.push(entry.item);
            } else {
                live.push(entry);
            }
        }
        self.heap = BinaryHeap::from(live);
        self.cancelled = 0;
    }

    fn drop_cancelled_head(&mut self) {
        while self.heap.peek().is_some_and(|e| e.item.is_cancelled()) {
            if let Some(entry) = self.heap.pop() {
                self.discarded.push(entry.item);
            }
            self.cancelled = self.cancelled.saturating_sub(1);
        }
    }

    /// The cancelled entries removed from the heap since the last call, for
    /// the owner to drop when it is safe to (see the module documentation).
    pub fn take_discarded(&mut self) -> Vec<T> {
        std::mem::take(&mut self.discarded)
    }

    /// [`take_discarded`](Self::take_discarded), or `None` when there is
    /// nothing to take (dropping an empty `None` costs the caller nothing).
    pub fn take_discarded_if_any(&mut self) -> Option<Vec<T>> {
        if self.discarded.is_empty() {
            None
        } else {
            Some(self.take_discarded())
        }
    }

    /// Calls `f` on every entry still in the heap and every discarded one.
    pub fn for_each(&self, mut f: impl FnMut(&T)) {
        self.heap.iter().for_each(|e| f(&e.item));
        self.discarded.iter().for_each(f);
    }

    /// The earliest deadline of a timer not cancelled.
    pub fn next_deadline(&mut self) -> Option<f64> {
        self.drop_cancelled_head();
        self.heap.peek().map(|e| e.when)
    }

    /// Removes and returns the earliest timer not cancelled whose deadline is
    /// at or before `now`.
    pub fn pop_due(&mut self, now: f64) -> Option<T> {
        self.drop_cancelled_head();
        if self.heap.peek()?.when <= now {
            self.heap.pop().map(|e| e.item)
        } else {
            None
        }
    }

    /// Entries in the heap, cancelled ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True if the heap holds no entry at all.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Removes every entry, discarded ones included, in no particular order.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.cancelled = 0;
        self.heap
            .drain()
            .map(|e| e.item)
            .chain(self.discarded.drain(..))
    }
}
// ANCHOR_END: impl
