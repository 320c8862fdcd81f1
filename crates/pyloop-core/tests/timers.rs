//! The timer heap: order, cancellation, compaction, and a randomized
//! comparison with a plain reference model.

use std::cell::Cell;
use std::rc::Rc;

use pyloop_core::timers::COMPACT_MIN_ENTRIES;
use pyloop_core::{Cancellable, Timers};

/// A timer for the tests: an id to recognise it and a cancel flag shared with
/// the test, as a `TimerHandle` shares its flag with Python.
#[derive(Clone, Debug)]
struct Timer {
    id: usize,
    cancelled: Rc<Cell<bool>>,
}

impl Timer {
    /// A timer not cancelled.
    fn new(id: usize) -> Self {
        Timer {
            id,
            cancelled: Rc::new(Cell::new(false)),
        }
    }

    /// Marks it cancelled. The caller still owes the heap a `note_cancelled`.
    fn cancel(&self) {
        self.cancelled.set(true);
    }
}

impl Cancellable for Timer {
    fn is_cancelled(&self) -> bool {
        self.cancelled.get()
    }
}

/// Schedules one timer per deadline, with ids 0, 1, …; returns the handles
/// (clones sharing the cancel flags) to cancel them by.
fn schedule(timers: &mut Timers<Timer>, deadlines: &[f64]) -> Vec<Timer> {
    deadlines
        .iter()
        .enumerate()
        .map(|(id, &when)| {
            let timer = Timer::new(id);
            timers.push(when, timer.clone());
            timer
        })
        .collect()
}

/// Cancels `timer` and tells the heap, as the loop does.
fn cancel(timers: &mut Timers<Timer>, timer: &Timer) {
    timer.cancel();
    timers.note_cancelled();
}

/// Pops every timer due at `now`, returning their ids in firing order.
fn fire_due(timers: &mut Timers<Timer>, now: f64) -> Vec<usize> {
    std::iter::from_fn(|| timers.pop_due(now))
        .map(|t| t.id)
        .collect()
}

/// Timers fire in deadline order, whatever the order they were scheduled in.
#[test]
fn fire_in_deadline_order() {
    let mut timers = Timers::new();
    schedule(&mut timers, &[5.0, 1.0, 4.0, 2.0, 3.0, 0.5, -1.0]);
    assert_eq!(fire_due(&mut timers, f64::INFINITY), [6, 5, 1, 3, 4, 2, 0]);
    assert!(timers.is_empty());
}

/// Timers with equal deadlines fire in the order they were scheduled, also
/// when other deadlines are interleaved with them.
#[test]
fn equal_deadlines_fire_in_scheduling_order() {
    let mut timers = Timers::new();
    let deadlines: Vec<f64> = (0..40).map(|i| [2.0, 1.0, 2.0, 3.0][i % 4]).collect();
    schedule(&mut timers, &deadlines);
    let fired = fire_due(&mut timers, 10.0);
    let mut expected: Vec<usize> = (0..40).collect();
    expected.sort_by(|&a, &b| deadlines[a].total_cmp(&deadlines[b])); // stable
    assert_eq!(fired, expected);
}

/// `pop_due` returns only timers due at or before `now`, and `next_deadline`
/// says when the next one is.
#[test]
fn pop_due_respects_now() {
    let mut timers = Timers::new();
    schedule(&mut timers, &[1.0, 2.0, 3.0]);
    assert!(timers.pop_due(0.5).is_none());
    assert_eq!(timers.next_deadline(), Some(1.0));
    assert_eq!(
        timers.pop_due(1.0).map(|t| t.id),
        Some(0),
        "due exactly at now"
    );
    assert_eq!(fire_due(&mut timers, 2.5), [1]);
    assert_eq!(timers.next_deadline(), Some(3.0));
    assert_eq!(timers.len(), 1);
    assert_eq!(fire_due(&mut timers, 3.0), [2]);
    assert_eq!(timers.next_deadline(), None);
    assert!(timers.pop_due(f64::INFINITY).is_none());
}

/// A cancelled timer at the head never fires, and `next_deadline` looks past it.
#[test]
fn cancelled_head_never_fires() {
    let mut timers = Timers::new();
    let handles = schedule(&mut timers, &[1.0, 2.0, 3.0]);
    cancel(&mut timers, &handles[0]);
    assert_eq!(timers.next_deadline(), Some(2.0));
    assert_eq!(fire_due(&mut timers, 1.5), Vec::<usize>::new());
    assert_eq!(fire_due(&mut timers, 10.0), [1, 2]);
}

/// A timer cancelled in the middle of the heap never fires; the others keep
/// their order.
#[test]
fn cancelled_middle_never_fires() {
    let mut timers = Timers::new();
    let handles = schedule(&mut timers, &[1.0, 2.0, 2.0, 3.0, 4.0]);
    cancel(&mut timers, &handles[2]);
    cancel(&mut timers, &handles[3]);
    assert_eq!(fire_due(&mut timers, 10.0), [0, 1, 4]);
}

/// Once every timer is cancelled, there is no next deadline, nothing fires,
/// and looking drops the cancelled entries.
#[test]
fn all_cancelled() {
    let mut timers = Timers::new();
    let handles = schedule(&mut timers, &[1.0, 2.0, 3.0]);
    for h in &handles {
        cancel(&mut timers, h);
    }
    assert_eq!(timers.len(), 3, "small heaps are not compacted");
    assert_eq!(timers.next_deadline(), None);
    assert!(timers.is_empty());
    assert!(timers.pop_due(f64::INFINITY).is_none());
}

/// The heap is compacted exactly when cancelled entries become more than half
/// of a heap of at least `COMPACT_MIN_ENTRIES`: `len` shrinks to the live
/// timers, which then fire in order; timers cancelled after the compaction
/// never fire either.
#[test]
fn compaction_when_more_than_half_cancelled() {
    let n = 2 * COMPACT_MIN_ENTRIES;
    let mut timers = Timers::new();
    // Deadlines descending, so that the cancelled ones (even ids) sit all
    // through the heap, not only at its head.
    let deadlines: Vec<f64> = (0..n).map(|i| (n - i) as f64).collect();
    let handles = schedule(&mut timers, &deadlines);
    let mut cancelled = 0;
    for h in handles.iter().filter(|h| h.id % 2 == 0) {
        cancel(&mut timers, h);
        cancelled += 1;
        assert_eq!(timers.len(), n, "half cancelled is not yet more than half");
    }
    assert_eq!(cancelled * 2, n);
    // One more tips it over half.
    cancel(&mut timers, &handles[1]);
    assert_eq!(timers.len(), n / 2 - 1, "compacted to the live timers");
    // Cancel two more after the compaction: the head (due first) and one
    // deep inside.
    cancel(&mut timers, &handles[3]);
    cancel(&mut timers, &handles[n - 1]);
    let fired = fire_due(&mut timers, f64::INFINITY);
    let expected: Vec<usize> = (5..n - 1).rev().filter(|i| i % 2 == 1).collect();
    assert_eq!(fired, expected);
    assert!(timers.is_empty());
}

/// A heap below `COMPACT_MIN_ENTRIES` is never compacted, however much of it is
/// cancelled; an explicit `compact` still removes every cancelled entry.
#[test]
fn small_heap_not_compacted_until_asked() {
    let n = COMPACT_MIN_ENTRIES - 1;
    let mut timers = Timers::new();
    let handles = schedule(&mut timers, &vec![1.0; n]);
    for h in &handles[..n - 1] {
        cancel(&mut timers, h);
    }
    assert_eq!(timers.len(), n);
    timers.compact();
    assert_eq!(timers.len(), 1);
    assert_eq!(fire_due(&mut timers, 1.0), [n - 1]);
}

/// `drain` empties the heap, yields every entry (cancelled ones included),
/// and forgets the cancellations it counted: after it, a fresh heap needs
/// more than half of itself cancelled again before it is compacted.
#[test]
fn drain_empties_and_resets() {
    let mut timers = Timers::new();
    let handles = schedule(&mut timers, &vec![1.0; 100]);
    for h in &handles[..40] {
        cancel(&mut timers, h);
    }
    assert_eq!(timers.len(), 100);
    let mut drained: Vec<usize> = timers.drain().map(|t| t.id).collect();
    drained.sort_unstable();
    assert_eq!(drained, (0..100).collect::<Vec<_>>());
    assert!(timers.is_empty());
    assert_eq!(timers.len(), 0);
    assert_eq!(timers.next_deadline(), None);

    let handles = schedule(&mut timers, &vec![2.0; COMPACT_MIN_ENTRIES]);
    for h in &handles[..COMPACT_MIN_ENTRIES / 2] {
        cancel(&mut timers, h);
    }
    assert_eq!(timers.len(), COMPACT_MIN_ENTRIES, "compacted too early");
    assert_eq!(
        fire_due(&mut timers, 2.0),
        (COMPACT_MIN_ENTRIES / 2..COMPACT_MIN_ENTRIES).collect::<Vec<_>>()
    );
}

/// Infinite deadlines sort last and are due only at an infinite `now`.
#[test]
fn infinite_deadlines() {
    let mut timers = Timers::new();
    schedule(&mut timers, &[f64::INFINITY, 1.0, f64::NEG_INFINITY]);
    assert_eq!(fire_due(&mut timers, 1e300), [2, 1]);
    assert_eq!(timers.next_deadline(), Some(f64::INFINITY));
    assert_eq!(fire_due(&mut timers, f64::INFINITY), [0]);
}

// ---------------------------------------------------------------------------
// Randomized comparison with a reference model

/// A xorshift64* generator: tiny, deterministic per seed, good enough to
/// shuffle operations.
struct XorShift(u64);

impl XorShift {
    /// A generator from a non-zero seed.
    fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }

    /// The next 64 random bits.
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (n > 0); the slight bias does not matter here.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The reference: the timers still waiting to fire (not fired, cancelled or
/// drained), in scheduling order, each with its deadline. A plain list,
/// searched from end to end.
#[derive(Default)]
struct Model {
    live: Vec<(f64, Timer)>,
    /// The id the next scheduled timer gets.
    next_id: usize,
}

impl Model {
    /// Schedules a timer, returning the handle to give the heap.
    fn schedule(&mut self, when: f64) -> Timer {
        let timer = Timer::new(self.next_id);
        self.next_id += 1;
        self.live.push((when, timer.clone()));
        timer
    }

    /// Where in `live` the timer that must fire next at `now` is: the earliest
    /// deadline, then the earliest scheduled (`min_by` keeps the first of equals).
    fn next_due(&self, now: f64) -> Option<usize> {
        self.live
            .iter()
            .enumerate()
            .filter(|(_, (when, _))| *when <= now)
            .min_by(|(_, a), (_, b)| a.0.total_cmp(&b.0))
            .map(|(i, _)| i)
    }

    /// The earliest deadline of a live timer.
    fn next_deadline(&self) -> Option<f64> {
        self.live.iter().map(|t| t.0).min_by(f64::total_cmp)
    }
}

/// Random schedules, cancellations (reported once each, as the loop does),
/// pops as a clock advances (now and then at a time in the past), looks at
/// the next deadline, explicit compactions and rare drains, 64 seeds × 5 000
/// steps, checked step by step against [`Model`]: the same timer fires,
/// cancelled timers never fire, `len` never hides a live timer, right after a
/// cancellation a heap of `COMPACT_MIN_ENTRIES` or more is at most half
/// cancelled, and the run reaches at least one automatic compaction.
#[test]
fn randomized_against_model() {
    let mut compactions = 0;
    for seed in 1..=64u64 {
        let mut rng = XorShift::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut timers = Timers::new();
        let mut model = Model::default();
        // The loop's clock: it only moves forward, by quarter seconds, so that
        // deadlines (a random quarter-second delay after it) often tie.
        let mut clock = 0.0;
        for step in 0..5_000 {
            match rng.below(100) {
                // Schedule.
                0..=39 => {
                    let when = clock + rng.below(64) as f64 / 4.0;
                    timers.push(when, model.schedule(when));
                }
                // Cancel a live timer.
                40..=74 => {
                    if model.live.is_empty() {
                        continue;
                    }
                    let (_, timer) = model.live.remove(rng.below(model.live.len()));
                    let before = timers.len();
                    cancel(&mut timers, &timer);
                    let len = timers.len();
                    if len < before {
                        compactions += 1;
                    }
                    let in_heap_cancelled = len - model.live.len();
                    assert!(
                        len < COMPACT_MIN_ENTRIES || 2 * in_heap_cancelled <= len,
                        "seed {seed}, step {step}: {in_heap_cancelled} of {len} cancelled"
                    );
                }
                // Let time pass, fire what is due. Now and then look at a
                // time in the past: nothing may fire that the model would not.
                75..=86 => {
                    clock += rng.below(4) as f64 / 4.0;
                    let now = if rng.below(8) == 0 {
                        clock - rng.below(16) as f64 / 4.0
                    } else {
                        clock
                    };
                    loop {
                        let expected = model.next_due(now).map(|i| model.live.remove(i).1.id);
                        let got = timers.pop_due(now).map(|t| t.id);
                        assert_eq!(got, expected, "seed {seed}, step {step}: pop_due({now})");
                        if got.is_none() {
                            break;
                        }
                    }
                }
                87..=96 => {
                    assert_eq!(
                        timers.next_deadline(),
                        model.next_deadline(),
                        "seed {seed}, step {step}"
                    );
                }
                97..=98 => timers.compact(),
                _ => {
                    if rng.below(10) == 0 {
                        let mut drained: Vec<usize> = timers.drain().map(|t| t.id).collect();
                        drained.sort_unstable();
                        assert!(
                            model
                                .live
                                .iter()
                                .all(|(_, t)| drained.binary_search(&t.id).is_ok()),
                            "seed {seed}, step {step}: drain lost a live timer"
                        );
                        model.live.clear();
                        assert!(timers.is_empty(), "seed {seed}, step {step}");
                    }
                }
            }
            assert!(
                timers.len() >= model.live.len(),
                "seed {seed}, step {step}: a live timer is missing"
            );
            assert!(
                !timers.is_empty() || model.live.is_empty(),
                "seed {seed}, step {step}: empty with a live timer"
            );
        }
        // In the end everything live fires, in the model's order.
        while let Some(i) = model.next_due(f64::INFINITY) {
            let expected = model.live.remove(i).1.id;
            assert_eq!(
                timers.pop_due(f64::INFINITY).map(|t| t.id),
                Some(expected),
                "seed {seed}"
            );
        }
        assert!(timers.pop_due(f64::INFINITY).is_none(), "seed {seed}");
        assert!(timers.is_empty(), "seed {seed}");
    }
    assert!(compactions > 0, "the model never reached a compaction");
}

/// A timer that counts its drops, to see where the heap lets go of entries.
struct Counted {
    cancelled: Rc<Cell<bool>>,
    drops: Rc<Cell<usize>>,
}

impl Cancellable for Counted {
    fn is_cancelled(&self) -> bool {
        self.cancelled.get()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

/// The heap never drops an entry itself: every cancelled entry it removes (at
/// the head, by automatic or explicit compaction) is handed back by
/// `take_discarded`, so that its owner drops it where that is safe (PyLoop:
/// outside the borrow of its state, since a Python destructor may re-enter).
#[test]
fn removed_entries_are_handed_back_not_dropped() {
    let drops = Rc::new(Cell::new(0));
    let mut timers = Timers::new();
    let mut flags = Vec::new();
    for i in 0..(2 * COMPACT_MIN_ENTRIES) {
        let cancelled = Rc::new(Cell::new(false));
        flags.push(cancelled.clone());
        let item = Counted {
            cancelled,
            drops: drops.clone(),
        };
        timers.push(i as f64, item);
    }
    // Cancel the head (dropped lazily by next_deadline/pop_due), then more
    // than half (an automatic compaction), then one more (explicit compact).
    let mut cancelled = 0;
    for flag in flags.iter().take(COMPACT_MIN_ENTRIES + 2) {
        flag.set(true);
        timers.note_cancelled();
        cancelled += 1;
    }
    assert_eq!(
        timers.next_deadline(),
        Some((COMPACT_MIN_ENTRIES + 2) as f64)
    );
    assert!(timers.pop_due(0.5).is_none());
    flags[2 * COMPACT_MIN_ENTRIES - 1].set(true);
    cancelled += 1;
    timers.compact();
    assert_eq!(drops.get(), 0, "the heap dropped an entry itself");
    let discarded = timers.take_discarded();
    assert_eq!(discarded.len(), cancelled);
    assert!(discarded.iter().all(|t| t.is_cancelled()));
    assert_eq!(timers.len(), 2 * COMPACT_MIN_ENTRIES - cancelled);
    drop(discarded);
    assert_eq!(drops.get(), cancelled);
    assert!(timers.take_discarded().is_empty());
    // for_each sees what is still owned; drain gives it all back.
    let mut seen = 0;
    timers.for_each(|_| seen += 1);
    assert_eq!(seen, timers.len());
    let rest: Vec<Counted> = timers.drain().collect();
    assert_eq!(drops.get(), cancelled);
    drop(rest);
    assert_eq!(drops.get(), 2 * COMPACT_MIN_ENTRIES);
}
