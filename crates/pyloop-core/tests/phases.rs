//! The ready queue's contract, written once and run on every phase.
//!
//! Each check below is a generic function over `Q: ReadyQueue<u64>`. The macro
//! [`phase_tests!`] stamps one module per phase (`p3_1_1`, `p3_1_2`, …) with a
//! `#[test]` per check, so a failure is reported as, say,
//! `p3_1_3::close_refuses_later_pushes`, and every assertion message also
//! carries the phase tag. `every_phase_is_stamped` fails if a phase is added to
//! [`Phase::ALL`] without a module here.
//!
//! Items are `u64`s: `producer << 32 | sequence number`, so that one value says
//! who pushed it and in which order.
//!
//! Timing: nothing here measures speed. The only clocks are liveness bounds
//! (an idle consumer must see a push within [`LIVENESS`], a polling one within
//! [`POLL_BOUND`]) that are generous enough for a loaded 2-core machine, and
//! lower bounds on timed waits (a wait with a timeout on an empty queue lasts
//! at least that timeout).
//!
//! Not built under `--cfg loom`: there the queues' locks are loom's, usable
//! only inside a loom model (`tests/loom.rs`).

#![cfg(not(loom))]

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use pyloop_core::phases::POLL_INTERVAL;
use pyloop_core::{
    with_phase_queue, Closed, Phase, ReadyQueue, StatsSnapshot, TryPushError, BATCH_LIMIT,
};

/// How long anything that must happen may take before the test calls it lost
/// (a lost wake-up, a deadlock). Far above any real delay, even on a loaded machine.
const LIVENESS: Duration = Duration::from_secs(10);

/// How long one whole check may run before [`watchdog`] calls it deadlocked.
const WATCHDOG: Duration = Duration::from_secs(60);

/// How late a polling phase (3.1.1, 3.1.2) may see a push to its idle loop. It
/// looks every [`POLL_INTERVAL`] (1 ms); 200 polls leave room for a descheduled
/// thread on a busy 2-core CI machine.
const POLL_BOUND: Duration = Duration::from_millis(200);

/// Runs one check on a thread of its own, named after the test, and fails if
/// it has not finished within [`WATCHDOG`]: a deadlock then fails its test
/// instead of hanging the whole suite. A panic in the check is passed on.
fn watchdog(check: fn()) {
    let name = thread::current().name().unwrap_or("check").to_owned();
    let (done, finished) = mpsc::channel();
    let runner = thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            check();
            let _ = done.send(());
        })
        .expect("spawn the check");
    match finished.recv_timeout(WATCHDOG) {
        Ok(()) | Err(RecvTimeoutError::Disconnected) => {
            if let Err(panic) = runner.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(RecvTimeoutError::Timeout) => panic!("{name}: still running after {WATCHDOG:?}"),
    }
}

/// The item a producer pushes: its index in the high half, its sequence number
/// in the low half.
fn tagged(producer: u64, seq: u64) -> u64 {
    (producer << 32) | seq
}

/// The inverse of [`tagged`]: (producer, sequence number).
fn untag(item: u64) -> (u64, u64) {
    (item >> 32, item & 0xffff_ffff)
}

/// The tag of `Q`'s phase, for assertion messages.
fn tag<Q: ReadyQueue<u64>>() -> &'static str {
    Q::PHASE.tag()
}

/// Starts `producers` threads; producer `p` pushes `tagged(p, 0..per_producer)`
/// in that order with the blocking [`ReadyQueue::push`].
fn spawn_producers<Q: ReadyQueue<u64>>(
    queue: &Arc<Q>,
    producers: u64,
    per_producer: u64,
) -> Vec<JoinHandle<()>> {
    (0..producers)
        .map(|p| {
            let queue = Arc::clone(queue);
            thread::spawn(move || {
                for seq in 0..per_producer {
                    queue.push(tagged(p, seq)).expect("the queue is open");
                }
            })
        })
        .collect()
}

/// Plays the loop thread: runs batches until `want` items have run, napping in
/// [`ReadyQueue::wait`] (with a short timeout, so that this helper never hangs;
/// wake-ups have tests of their own) whenever a batch finds nothing. Checks on
/// every batch that it ran no more than `limit` callbacks and that it returned
/// how many it ran. Returns the items in the order they ran.
fn consume<Q: ReadyQueue<u64>>(
    queue: &Q,
    consumer: &mut Q::Consumer,
    want: usize,
    limit: usize,
) -> Vec<u64> {
    let give_up = Instant::now() + LIVENESS;
    let mut out = Vec::with_capacity(want);
    while out.len() < want {
        assert!(
            Instant::now() < give_up,
            "{}: only {} of {want} items ran within {LIVENESS:?}",
            tag::<Q>(),
            out.len(),
        );
        let before = out.len();
        let ran = queue.run_batch(consumer, |item| out.push(item));
        assert_eq!(
            ran,
            out.len() - before,
            "{}: run_batch must return how many callbacks it ran",
            tag::<Q>()
        );
        assert!(
            ran <= limit,
            "{}: a batch ran {ran} callbacks, over the limit {limit}",
            tag::<Q>()
        );
        if ran == 0 {
            queue.wait(consumer, Some(Duration::from_millis(20)));
        }
    }
    out
}

/// Runs every batch there is, until one finds nothing; returns the items in
/// the order they ran.
fn drain_now<Q: ReadyQueue<u64>>(queue: &Q, consumer: &mut Q::Consumer) -> Vec<u64> {
    let mut out = Vec::new();
    while queue.run_batch(consumer, |item| out.push(item)) > 0 {}
    out
}

/// Waits, polling the counters, until the consumer has entered an idle wait
/// `count` times in all. In the phases that sleep rather than poll (3.1.3 on),
/// a consumer that has counted its idle wait has marked itself `sleeping`
/// under the queue lock, or holds that lock until it has, so a push made
/// after this returns must wake it: finding the item by a look is not enough.
fn until_idle<Q: ReadyQueue<u64>>(queue: &Q, count: u64) {
    let give_up = Instant::now() + LIVENESS;
    while queue.stats().snapshot().idle_waits < count {
        assert!(
            Instant::now() < give_up,
            "{}: the consumer never went idle",
            tag::<Q>()
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// Starts a consumer thread that waits once with `timeout` on an empty queue
/// and then reports the instant its wait returned. Joining the thread gives
/// back its consumer state, so that the test can go on being the consumer.
fn spawn_waiter<Q: ReadyQueue<u64>>(
    queue: &Arc<Q>,
    timeout: Option<Duration>,
) -> (mpsc::Receiver<Instant>, JoinHandle<Q::Consumer>) {
    let (tx, rx) = mpsc::channel();
    let queue = Arc::clone(queue);
    let handle = thread::spawn(move || {
        let mut consumer = queue.consumer();
        queue.wait(&mut consumer, timeout);
        let _ = tx.send(Instant::now());
        consumer
    });
    (rx, handle)
}

/// Receives the waiter's report, or, if none comes within [`LIVENESS`], closes
/// the queue (to free the stuck waiter) and fails with `what`.
fn waiter_returned<Q: ReadyQueue<u64>>(
    queue: &Q,
    rx: &mpsc::Receiver<Instant>,
    what: &str,
) -> Instant {
    match rx.recv_timeout(LIVENESS) {
        Ok(at) => at,
        Err(_) => {
            queue.close();
            panic!("{}: {what} within {LIVENESS:?}", tag::<Q>());
        }
    }
}

/// Asserts the relations every snapshot must satisfy, whatever happened.
fn assert_stats_consistent<Q: ReadyQueue<u64>>(s: &StatsSnapshot, limit: usize) {
    let t = tag::<Q>();
    assert!(s.contended_pushes <= s.pushes, "{t}: {s:?}");
    assert!(s.push_wait_max_ns <= s.push_wait_ns, "{t}: {s:?}");
    assert!(s.hold_max_ns <= s.hold_ns, "{t}: {s:?}");
    assert!(s.batches <= s.callbacks, "{t}: an empty batch was counted");
    assert!(s.callbacks <= s.batches * limit as u64, "{t}: {s:?}");
    assert!(s.callbacks_per_batch() <= limit as f64, "{t}: {s:?}");
    assert_eq!(
        s.hold_histogram.iter().sum::<u64>(),
        s.batches,
        "{t}: every batch lands in one histogram bucket"
    );
    let quantiles: Vec<u64> = (0..=20)
        .map(|i| s.hold_quantile_ns(f64::from(i) / 20.0))
        .collect();
    assert!(
        quantiles.windows(2).all(|w| w[0] <= w[1]),
        "{t}: hold_quantile_ns must not decrease with q: {quantiles:?}"
    );
    let top = s.hold_quantile_ns(1.0);
    assert!(
        top >= s.hold_max_ns && top <= 2 * s.hold_max_ns,
        "{t}: the 1.0-quantile {top} must bound the longest hold {} within a factor of two",
        s.hold_max_ns
    );
}

// ---------------------------------------------------------------------------
// Order and delivery

/// Several producers push at once; the consumer sees each producer's items in
/// the order that producer pushed them, and no batch exceeds the limit (3, so
/// that there are many batches and the swap phase's buffer often holds more).
fn fifo_per_producer<Q: ReadyQueue<u64>>() {
    const PRODUCERS: u64 = 4;
    const EACH: u64 = 5_000;
    const LIMIT: usize = 3;
    let queue = Arc::new(Q::with_batch_limit(LIMIT));
    let mut consumer = queue.consumer();
    let producers = spawn_producers(&queue, PRODUCERS, EACH);
    let order = consume(&*queue, &mut consumer, (PRODUCERS * EACH) as usize, LIMIT);
    for p in producers {
        p.join().unwrap();
    }
    let mut next = [0u64; PRODUCERS as usize];
    for item in order {
        let (p, seq) = untag(item);
        assert_eq!(
            seq,
            next[p as usize],
            "{}: producer {p}'s items ran out of order",
            tag::<Q>()
        );
        next[p as usize] += 1;
    }
    assert_eq!(next, [EACH; PRODUCERS as usize], "{}", tag::<Q>());
}

/// 8 producers × 10 000 items: every item runs exactly once, and afterwards
/// nothing is left.
fn exactly_once<Q: ReadyQueue<u64>>() {
    const PRODUCERS: u64 = 8;
    const EACH: u64 = 10_000;
    let queue = Arc::new(Q::new());
    let mut consumer = queue.consumer();
    let producers = spawn_producers(&queue, PRODUCERS, EACH);
    let ran = consume(
        &*queue,
        &mut consumer,
        (PRODUCERS * EACH) as usize,
        BATCH_LIMIT,
    );
    for p in producers {
        p.join().unwrap();
    }
    let mut seen = vec![0u8; (PRODUCERS * EACH) as usize];
    for item in ran {
        let (p, seq) = untag(item);
        seen[(p * EACH + seq) as usize] += 1;
    }
    if let Some(i) = seen.iter().position(|&n| n != 1) {
        panic!(
            "{}: item {:?} ran {} times",
            tag::<Q>(),
            untag(tagged(i as u64 / EACH, i as u64 % EACH)),
            seen[i]
        );
    }
    assert!(!queue.has_pending(&consumer), "{}", tag::<Q>());
    assert_eq!(queue.run_batch(&mut consumer, |_| {}), 0, "{}", tag::<Q>());
}

// ---------------------------------------------------------------------------
// The batch limit

/// With everything queued up front, each batch runs exactly
/// `min(limit, still queued)` callbacks, oldest first, for limits 1, 3 and
/// 128: never more, and no fewer than the phase could.
fn batch_limit_is_honoured<Q: ReadyQueue<u64>>() {
    for limit in [1, 3, 128] {
        let queue = Q::with_batch_limit(limit);
        let mut consumer = queue.consumer();
        let total = 3 * limit as u64 + 2;
        for i in 0..total {
            queue.push(i).unwrap();
        }
        let mut next = 0;
        while next < total {
            let left = total - next;
            let ran = queue.run_batch(&mut consumer, |item| {
                assert_eq!(item, next, "{}: out of order", tag::<Q>());
                next += 1;
            });
            assert_eq!(
                ran as u64,
                left.min(limit as u64),
                "{}: limit {limit}, {left} queued",
                tag::<Q>()
            );
            assert_eq!(queue.has_pending(&consumer), next < total, "{}", tag::<Q>());
        }
        assert_eq!(queue.run_batch(&mut consumer, |_| {}), 0, "{}", tag::<Q>());
    }
}

/// `new()` uses the standard [`BATCH_LIMIT`].
fn default_limit_is_batch_limit<Q: ReadyQueue<u64>>() {
    let queue = Q::new();
    let mut consumer = queue.consumer();
    for i in 0..(BATCH_LIMIT as u64 + 5) {
        queue.push(i).unwrap();
    }
    assert_eq!(
        queue.run_batch(&mut consumer, |_| {}),
        BATCH_LIMIT,
        "{}",
        tag::<Q>()
    );
    assert_eq!(queue.run_batch(&mut consumer, |_| {}), 5, "{}", tag::<Q>());
}

/// Pushes between batches while the consumer still has items in hand (the
/// swap phase's buffer): the limit still holds, items taken earlier run before
/// items pushed later, and `has_pending` counts what the consumer holds.
fn limit_and_order_across_refills<Q: ReadyQueue<u64>>() {
    const LIMIT: usize = 3;
    let queue = Q::with_batch_limit(LIMIT);
    let mut consumer = queue.consumer();
    for i in 0..10 {
        queue.push(i).unwrap();
    }
    let mut ran = Vec::new();
    assert_eq!(
        queue.run_batch(&mut consumer, |item| ran.push(item)),
        LIMIT,
        "{}",
        tag::<Q>()
    );
    assert!(queue.has_pending(&consumer), "{}", tag::<Q>());
    for i in 10..20 {
        queue.push(i).unwrap();
    }
    ran.extend(consume(&queue, &mut consumer, 17, LIMIT));
    assert_eq!(ran, (0..20).collect::<Vec<_>>(), "{}", tag::<Q>());
    assert!(!queue.has_pending(&consumer), "{}", tag::<Q>());
}

/// `has_pending` is false on a new queue, true once something is pushed, and
/// false again once everything ran.
fn has_pending_tracks_the_queue<Q: ReadyQueue<u64>>() {
    let queue = Q::with_batch_limit(2);
    let mut consumer = queue.consumer();
    assert!(!queue.has_pending(&consumer), "{}", tag::<Q>());
    for i in 0..3 {
        queue.push(i).unwrap();
    }
    assert!(queue.has_pending(&consumer), "{}", tag::<Q>());
    assert_eq!(
        drain_now(&queue, &mut consumer),
        [0, 1, 2],
        "{}",
        tag::<Q>()
    );
    assert!(!queue.has_pending(&consumer), "{}", tag::<Q>());
}

// ---------------------------------------------------------------------------
// Waiting and waking

/// A push from another thread ends a consumer's `wait(None)`. The consumer is
/// known to be idle before the push (see [`until_idle`]). Condvar phases must
/// be woken (there is no timeout to fall back on: returning at all proves it);
/// polling phases must see the push within [`POLL_BOUND`].
fn push_wakes_idle_consumer<Q: ReadyQueue<u64>>() {
    let queue = Arc::new(Q::new());
    let (rx, waiter) = spawn_waiter(&queue, None);
    until_idle(&*queue, 1);
    thread::sleep(Duration::from_millis(5));
    let pushed = Instant::now();
    queue.push(7).unwrap();
    let returned = waiter_returned(&*queue, &rx, "wait(None) did not return after a push");
    let mut consumer = waiter.join().unwrap();
    if Q::PHASE.polls_when_idle() {
        let late = returned.saturating_duration_since(pushed);
        assert!(
            late <= POLL_BOUND,
            "{}: a polling loop saw a push {late:?} late (poll interval {POLL_INTERVAL:?})",
            tag::<Q>()
        );
    }
    assert_eq!(drain_now(&*queue, &mut consumer), [7], "{}", tag::<Q>());
}

/// The same with a long timeout (60 s): the wait returns long before it, so it
/// was the push, not the timeout, that ended it.
fn push_ends_a_long_timed_wait<Q: ReadyQueue<u64>>() {
    let queue = Arc::new(Q::new());
    let started = Instant::now();
    let (rx, waiter) = spawn_waiter(&queue, Some(Duration::from_secs(60)));
    until_idle(&*queue, 1);
    let pushed = Instant::now();
    queue.push(7).unwrap();
    let returned = waiter_returned(&*queue, &rx, "a 60 s wait did not end at a push");
    waiter.join().unwrap();
    assert!(returned - started < LIVENESS, "{}", tag::<Q>());
    if Q::PHASE.polls_when_idle() {
        assert!(
            returned.saturating_duration_since(pushed) <= POLL_BOUND,
            "{}",
            tag::<Q>()
        );
    }
}

/// A wait with a timeout on an empty queue returns, and not before its
/// timeout; a zero timeout returns at once.
fn timed_wait_on_empty_queue_returns<Q: ReadyQueue<u64>>() {
    let queue = Q::new();
    let mut consumer = queue.consumer();
    for timeout in [Duration::ZERO, Duration::from_millis(30)] {
        let started = Instant::now();
        queue.wait(&mut consumer, Some(timeout));
        let took = started.elapsed();
        assert!(
            took >= timeout,
            "{}: a {timeout:?} wait returned after {took:?}",
            tag::<Q>()
        );
        assert!(took < LIVENESS, "{}", tag::<Q>());
    }
}

/// `wake()` from another thread ends a `wait(None)`.
fn wake_ends_a_wait<Q: ReadyQueue<u64>>() {
    let queue = Arc::new(Q::new());
    let (rx, waiter) = spawn_waiter(&queue, None);
    until_idle(&*queue, 1);
    thread::sleep(Duration::from_millis(5));
    let woke = Instant::now();
    queue.wake();
    let returned = waiter_returned(&*queue, &rx, "wait(None) did not return after wake()");
    waiter.join().unwrap();
    if Q::PHASE.polls_when_idle() {
        assert!(
            returned.saturating_duration_since(woke) <= POLL_BOUND,
            "{}",
            tag::<Q>()
        );
    }
}

/// A `wake()` made before the wait is kept for it, ends exactly one wait, and
/// is then used up: the next timed wait on the empty queue runs its course.
fn wake_is_consumed_once<Q: ReadyQueue<u64>>() {
    let queue = Q::new();
    let mut consumer = queue.consumer();
    queue.wake();
    let started = Instant::now();
    queue.wait(&mut consumer, Some(LIVENESS));
    assert!(
        started.elapsed() < LIVENESS / 2,
        "{}: a pending wake() did not end the next wait",
        tag::<Q>()
    );
    let timeout = Duration::from_millis(30);
    let started = Instant::now();
    queue.wait(&mut consumer, Some(timeout));
    assert!(
        started.elapsed() >= timeout,
        "{}: one wake() ended two waits",
        tag::<Q>()
    );
}

// ---------------------------------------------------------------------------
// Closing

/// After `close`, `push` gives the item back in `Closed`, `try_push` in
/// `TryPushError::Closed`, without a panic; items queued before the close still
/// run, in order; a wait returns at once; closing twice is harmless; refused
/// pushes are not counted as pushes.
fn close_refuses_later_pushes<Q: ReadyQueue<u64>>() {
    let queue = Q::with_batch_limit(2);
    let mut consumer = queue.consumer();
    for i in 0..5 {
        queue.push(i).unwrap();
    }
    assert!(!queue.is_closed(), "{}", tag::<Q>());
    queue.close();
    assert!(queue.is_closed(), "{}", tag::<Q>());
    assert_eq!(queue.push(99), Err(Closed(99)), "{}", tag::<Q>());
    assert_eq!(
        queue.try_push(98),
        Err(TryPushError::Closed(98)),
        "{}",
        tag::<Q>()
    );
    queue.close();
    assert!(queue.is_closed(), "{}", tag::<Q>());
    assert_eq!(queue.push(97), Err(Closed(97)), "{}", tag::<Q>());

    assert_eq!(
        drain_now(&queue, &mut consumer),
        [0, 1, 2, 3, 4],
        "{}",
        tag::<Q>()
    );
    let started = Instant::now();
    queue.wait(&mut consumer, Some(LIVENESS));
    assert!(
        started.elapsed() < LIVENESS / 2,
        "{}: a wait on a closed queue must return at once",
        tag::<Q>()
    );
    assert_eq!(
        queue.stats().snapshot().pushes,
        5,
        "{}: refused pushes counted",
        tag::<Q>()
    );
}

/// `close()` from another thread ends a `wait(None)`.
fn close_ends_a_wait<Q: ReadyQueue<u64>>() {
    let queue = Arc::new(Q::new());
    let (rx, waiter) = spawn_waiter(&queue, None);
    until_idle(&*queue, 1);
    queue.close();
    waiter_returned(&*queue, &rx, "wait(None) did not return after close()");
    waiter.join().unwrap();
}

/// Producers push (up to 50 000 items each) until the queue closes under
/// them: every push either succeeded, and its item runs exactly once, in its
/// producer's order, or was refused, and its own item came back. Nothing is
/// lost in the race with `close`.
fn close_during_pushes_loses_nothing<Q: ReadyQueue<u64>>() {
    const PRODUCERS: u64 = 3;
    const CAP: u64 = 50_000;
    let queue = Arc::new(Q::new());
    let mut consumer = queue.consumer();
    let producers: Vec<JoinHandle<u64>> = (0..PRODUCERS)
        .map(|p| {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                for seq in 0..CAP {
                    if let Err(Closed(back)) = queue.push(tagged(p, seq)) {
                        assert_eq!(back, tagged(p, seq), "the refused item must come back");
                        return seq;
                    }
                }
                CAP
            })
        })
        .collect();
    // Let some pushes through, running some of them, then close.
    let mut ran = consume(&*queue, &mut consumer, 500, BATCH_LIMIT);
    queue.close();
    let accepted: Vec<u64> = producers.into_iter().map(|p| p.join().unwrap()).collect();
    ran.extend(drain_now(&*queue, &mut consumer));
    let mut next = vec![0u64; PRODUCERS as usize];
    for item in ran {
        let (p, seq) = untag(item);
        assert_eq!(
            seq,
            next[p as usize],
            "{}: producer {p}'s items lost, repeated or reordered",
            tag::<Q>()
        );
        next[p as usize] += 1;
    }
    assert_eq!(
        next,
        accepted,
        "{}: accepted items that never ran",
        tag::<Q>()
    );
}

// ---------------------------------------------------------------------------
// try_push and the lock

/// `try_push` on a queue nobody else is using succeeds.
fn try_push_uncontended_succeeds<Q: ReadyQueue<u64>>() {
    let queue = Q::new();
    let mut consumer = queue.consumer();
    assert_eq!(queue.try_push(1), Ok(()), "{}", tag::<Q>());
    assert_eq!(drain_now(&queue, &mut consumer), [1], "{}", tag::<Q>());
}

/// Inside a callback, another thread (spawned and joined there) tries to push.
/// Where the loop holds the lock while running callbacks, that is
/// deterministically `Contended`, giving the item back and counting no push;
/// where it does not (3.1.4 on), it deterministically succeeds, since nobody
/// else holds the lock, and the item runs in a later batch.
fn try_push_inside_a_batch<Q: ReadyQueue<u64>>() {
    let queue = Q::new();
    let mut consumer = queue.consumer();
    queue.push(1).unwrap();
    let mut outcome = None;
    let ran = queue.run_batch(&mut consumer, |_| {
        outcome = Some(thread::scope(|s| {
            s.spawn(|| queue.try_push(2))
                .join()
                .expect("try_push panicked")
        }));
    });
    assert_eq!(ran, 1, "{}", tag::<Q>());
    if Q::PHASE.holds_lock_while_running() {
        assert_eq!(
            outcome,
            Some(Err(TryPushError::Contended(2))),
            "{}",
            tag::<Q>()
        );
        assert!(!queue.has_pending(&consumer), "{}", tag::<Q>());
        assert_eq!(queue.stats().snapshot().pushes, 1, "{}", tag::<Q>());
    } else {
        assert_eq!(outcome, Some(Ok(())), "{}", tag::<Q>());
        assert_eq!(drain_now(&queue, &mut consumer), [2], "{}", tag::<Q>());
        assert_eq!(queue.stats().snapshot().pushes, 2, "{}", tag::<Q>());
    }
}

/// A callback that panics (caught by the caller) leaves the queue usable: the
/// lock's poison is ignored, so pushes (blocking or not) still succeed and are
/// not miscounted as contended, waits still return, and later items run once,
/// in order. Which of the panicking batch's other items survive differs by
/// phase (those already moved out of the queue are dropped with the batch);
/// none of them runs twice.
fn panic_in_callback_leaves_queue_usable<Q: ReadyQueue<u64>>() {
    let queue = Q::new();
    let mut consumer = queue.consumer();
    for i in 0..5 {
        queue.push(i).unwrap();
    }
    let mut ran = Vec::new();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        queue.run_batch(&mut consumer, |item| {
            ran.push(item);
            if item == 2 {
                panic!("a callback failed");
            }
        })
    }));
    assert!(caught.is_err(), "{}", tag::<Q>());
    assert_eq!(ran, [0, 1, 2], "{}", tag::<Q>());

    assert_eq!(queue.try_push(10), Ok(()), "{}", tag::<Q>());
    queue.push(11).unwrap();
    let after = drain_now(&queue, &mut consumer);
    let (survivors, later): (Vec<u64>, Vec<u64>) = after.iter().partition(|&&i| i < 10);
    assert_eq!(later, [10, 11], "{}: {after:?}", tag::<Q>());
    assert!(
        survivors.iter().all(|&i| i > 2) && survivors.windows(2).all(|w| w[0] < w[1]),
        "{}: after the panic ran {after:?}",
        tag::<Q>()
    );
    assert_eq!(
        queue.stats().snapshot().contended_pushes,
        0,
        "{}: a poisoned lock is not contention",
        tag::<Q>()
    );
    queue.wait(&mut consumer, Some(Duration::from_millis(5)));
    queue.close();
    assert_eq!(queue.push(12), Err(Closed(12)), "{}", tag::<Q>());
}

// ---------------------------------------------------------------------------
// Counters

/// Single-threaded, so every counter is known: 10 items at limit 3 make 4
/// batches (3, 3, 3, 1), no contention, and the derived figures agree.
fn stats_count_exactly<Q: ReadyQueue<u64>>() {
    let queue = Q::with_batch_limit(3);
    let mut consumer = queue.consumer();
    assert_eq!(queue.stats().snapshot().hold_quantile_ns(0.5), 0);
    for i in 0..10 {
        queue.push(i).unwrap();
    }
    assert_eq!(drain_now(&queue, &mut consumer).len(), 10);
    queue.wait(&mut consumer, Some(Duration::ZERO));
    let s = queue.stats().snapshot();
    assert_eq!(
        (s.pushes, s.contended_pushes, s.callbacks, s.batches),
        (10, 0, 10, 4),
        "{}: {s:?}",
        tag::<Q>()
    );
    assert_eq!(s.callbacks_per_batch(), 2.5, "{}", tag::<Q>());
    assert_eq!(s.mean_push_wait_ns(), 0.0, "{}", tag::<Q>());
    assert_stats_consistent::<Q>(&s, 3);
}

/// Under contention (4 producers, limit 16) the counters still add up: pushes
/// and callbacks equal the items, batches stay within the limit.
fn stats_consistent_under_contention<Q: ReadyQueue<u64>>() {
    const PRODUCERS: u64 = 4;
    const EACH: u64 = 5_000;
    const LIMIT: usize = 16;
    let total = PRODUCERS * EACH;
    let queue = Arc::new(Q::with_batch_limit(LIMIT));
    let mut consumer = queue.consumer();
    let producers = spawn_producers(&queue, PRODUCERS, EACH);
    consume(&*queue, &mut consumer, total as usize, LIMIT);
    for p in producers {
        p.join().unwrap();
    }
    let s = queue.stats().snapshot();
    assert_eq!(s.pushes, total, "{}: {s:?}", tag::<Q>());
    assert_eq!(s.callbacks, total, "{}: {s:?}", tag::<Q>());
    assert!(s.batches > 0, "{}: {s:?}", tag::<Q>());
    assert_stats_consistent::<Q>(&s, LIMIT);
}

// ---------------------------------------------------------------------------
// One module per phase

/// Stamps, for each `module => QueueType`, a module of `#[test]`s that run
/// every check above on `QueueType<u64>` (under [`watchdog`]), and lists the stamped phases in
/// `STAMPED` for `every_phase_is_stamped`.
macro_rules! phase_tests {
    ($($module:ident => $queue:ident),+ $(,)?) => {
        /// The phases that have a module of tests, in the order stamped.
        const STAMPED: &[Phase] = &[
            $(<pyloop_core::phases::$queue<u64> as ReadyQueue<u64>>::PHASE),+
        ];
        $(
            mod $module {
                phase_tests!(@tests $queue:
                    fifo_per_producer,
                    exactly_once,
                    batch_limit_is_honoured,
                    default_limit_is_batch_limit,
                    limit_and_order_across_refills,
                    has_pending_tracks_the_queue,
                    push_wakes_idle_consumer,
                    push_ends_a_long_timed_wait,
                    timed_wait_on_empty_queue_returns,
                    wake_ends_a_wait,
                    wake_is_consumed_once,
                    close_refuses_later_pushes,
                    close_ends_a_wait,
                    close_during_pushes_loses_nothing,
                    try_push_uncontended_succeeds,
                    try_push_inside_a_batch,
                    panic_in_callback_leaves_queue_usable,
                    stats_count_exactly,
                    stats_consistent_under_contention,
                );
            }
        )+
    };
    (@tests $queue:ident: $($check:ident),+ $(,)?) => {
        $(
            #[test]
            fn $check() {
                super::watchdog(super::$check::<pyloop_core::phases::$queue<u64>>);
            }
        )+
    };
}

phase_tests! {
    p3_1_1 => BatchLimitQueue,
    p3_1_2 => AdaptiveSleepQueue,
    p3_1_3 => CondvarWakeQueue,
    p3_1_4 => TwoPhaseQueue,
    p3_1_5 => SwapBufferQueue,
    p3_2_1 => EpollWakeQueue,
    p3_3_1 => LockFreeQueue,
}

/// Every phase in `Phase::ALL` has a module above, and `with_phase_queue!`
/// maps each phase to the queue type that says it is that phase.
#[test]
fn every_phase_is_stamped() {
    assert_eq!(STAMPED, Phase::ALL.as_slice(), "stamp a module per phase");
    for phase in Phase::ALL {
        let named = with_phase_queue!(phase, Q => <Q<u64> as ReadyQueue<u64>>::PHASE);
        assert_eq!(
            named, phase,
            "with_phase_queue!({phase}) picked another phase"
        );
    }
}

// ---------------------------------------------------------------------------
// Phase tags

/// A tag's numbers, so that tags compare as versions ("3.1.10" after "3.1.9").
fn tag_numbers(tag: &str) -> Vec<u32> {
    tag.split('.')
        .map(|n| n.parse().expect("a tag is dot-separated numbers"))
        .collect()
}

/// Every phase prints as its tag and parses back from it (surrounding
/// whitespace allowed).
#[test]
fn phase_tag_round_trip() {
    for phase in Phase::ALL {
        assert_eq!(phase.to_string(), phase.tag());
        assert_eq!(phase.tag().parse::<Phase>(), Ok(phase));
        assert_eq!(format!(" {phase}\n").parse::<Phase>(), Ok(phase));
        assert!(!phase.title().is_empty(), "{phase} has no title");
    }
}

/// An unknown tag is an error that repeats it and lists every valid tag.
#[test]
fn unknown_phase_lists_all_tags() {
    for bad in ["3.1.9", "", "3.1", "phase 3.1.1", "3.1.1.1"] {
        let err = bad.parse::<Phase>().unwrap_err();
        assert_eq!(err.0, bad);
        let message = err.to_string();
        assert!(message.contains(&format!("{bad:?}")), "{message}");
        for phase in Phase::ALL {
            assert!(
                message.contains(phase.tag()),
                "{message} does not list {phase}"
            );
        }
    }
}

/// `ALL` is oldest first (by enum order and by tag), has no duplicates, holds
/// the four seed tags 3.1.1–3.1.4 with the properties the book gives them, at
/// least one phase past them, and the default.
#[test]
fn phase_all_is_ordered_and_complete() {
    assert!(Phase::ALL.windows(2).all(|w| w[0] < w[1]));
    assert!(Phase::ALL
        .windows(2)
        .all(|w| tag_numbers(w[0].tag()) < tag_numbers(w[1].tag())));
    let tags: Vec<&str> = Phase::ALL.iter().map(|p| p.tag()).collect();
    assert_eq!(tags[..4], ["3.1.1", "3.1.2", "3.1.3", "3.1.4"]);
    assert!(Phase::ALL.len() >= 5, "no phase past the seed");
    let titles: HashSet<&str> = Phase::ALL.iter().map(|p| p.title()).collect();
    assert_eq!(titles.len(), Phase::ALL.len(), "titles must differ");
    assert!(Phase::ALL.contains(&Phase::DEFAULT));

    let seed = |t: &str| t.parse::<Phase>().unwrap();
    assert!(seed("3.1.1").polls_when_idle() && seed("3.1.2").polls_when_idle());
    assert!(!seed("3.1.3").polls_when_idle() && !seed("3.1.4").polls_when_idle());
    assert!(seed("3.1.3").holds_lock_while_running());
    assert!(!seed("3.1.4").holds_lock_while_running());
}
