//! The scenarios of the 3.1.4 summary, each a function generic over the
//! contender ([`BenchQueue`]) and the item ([`Job`]).
//!
//! Every scenario builds a fresh queue, starts real OS threads (no GIL at this
//! level: producers do push in parallel, up to the number of cores), runs, and
//! checks that the consumer ran every item exactly once (the checksum of the
//! payloads). Each returns [`Metrics`]: named figures, with the unit in the
//! name's suffix (`_ns`, `_ms`, `_per_s`, `_pct`) or none for counts.
//!
//! Producers are released together by a barrier, after they have been spawned,
//! so thread start-up is never timed. The consumer is the calling thread; it
//! passes the same barrier, so it is already turning when the first push lands.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use pyloop_core::StatsSnapshot;

use crate::contender::BenchQueue;
use crate::job::{checksum, spin_for, Job};

/// Named figures of one run of one scenario, in the order they were added.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics(pub Vec<(&'static str, f64)>);

impl Metrics {
    /// Adds (or replaces) the figure `key`.
    pub fn set(&mut self, key: &'static str, value: f64) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// The figure `key`, if present.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

fn ns(d: Duration) -> f64 {
    d.as_nanos() as f64
}

fn per_s(count: usize, d: Duration) -> f64 {
    count as f64 / d.as_secs_f64()
}

/// The `q`-quantile (0..=1) of sorted `values` by nearest rank; 0 if empty.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ANCHOR: consume
/// The consumer's loop, as the event loop turns with nothing else to do: run a
/// turn; if it found nothing, wait idle (no timeout); until `total` callbacks
/// have run. Each callback runs its item, then spins `work_ns`.
/// Returns the sum of the payloads run.
pub fn consume<Q, J>(q: &Q, consumer: &mut Q::Consumer, total: usize, work_ns: u64) -> u64
where
    Q: BenchQueue<J>,
    J: Job,
{
    let mut acc = 0u64;
    let mut ran = 0;
    while ran < total {
        let n = q.run_turn(consumer, |job: J| {
            job.run(&mut acc);
            spin_for(work_ns);
        });
        if n == 0 {
            q.wait_idle(consumer);
        }
        ran += n;
    }
    acc
}
// ANCHOR_END: consume

fn check(acc: u64, total: usize, scenario: &str) {
    assert_eq!(
        acc,
        checksum(total as u64),
        "{scenario}: the consumer did not run every item exactly once"
    );
}

// ---------------------------------------------------------------------------
// single

/// **single**: `n` callbacks pushed by one thread, then run by a consumer turning
/// on that same thread. Figures per callback: `push_ns`, `drain_ns` (running
/// them all, turn after turn), `total_ns` (both).
///
/// The queue first goes through two untimed rounds of `n`, so that it has the
/// capacity a long-lived loop's queue has (3.1.5 needs two: its buffers trade
/// places). Repeated `inner` times on that queue; each figure is the median.
pub fn single<Q: BenchQueue<J>, J: Job>(n: usize, inner: usize) -> Metrics {
    let q = Q::create();
    let mut c = q.consumer();
    for _ in 0..2 {
        for i in 0..n {
            q.push(J::make(i as u64));
        }
        check(consume::<Q, J>(&q, &mut c, n, 0), n, "single warm-up");
    }
    let (mut push, mut drain, mut total) = (vec![], vec![], vec![]);
    for _ in 0..inner.max(1) {
        let t0 = Instant::now();
        for i in 0..n {
            q.push(J::make(i as u64));
        }
        let t1 = Instant::now();
        let acc = consume::<Q, J>(&q, &mut c, n, 0);
        let t2 = Instant::now();
        check(acc, n, "single");
        push.push(ns(t1 - t0) / n as f64);
        drain.push(ns(t2 - t1) / n as f64);
        total.push(ns(t2 - t0) / n as f64);
    }
    let mut m = Metrics::default();
    m.set("total_ns", pyloop_measure::median(&total));
    m.set("push_ns", pyloop_measure::median(&push));
    m.set("drain_ns", pyloop_measure::median(&drain));
    m
}

// ---------------------------------------------------------------------------
// producers and one consumer

/// What one producer thread saw.
struct Produced {
    start: Instant,
    end: Instant,
    /// Time of each push, ns, if asked for.
    push_ns: Vec<u64>,
}

/// The raw outcome of [`produce_and_consume`].
pub struct Concurrent {
    /// The first producer's first push started (just after the barrier).
    pub first_push: Instant,
    /// The last producer's last push returned.
    pub last_push: Instant,
    /// The consumer ran the last callback.
    pub all_run: Instant,
    /// Every push's time, ns, sorted (empty unless asked for).
    pub push_ns: Vec<u64>,
    /// Items pushed in all.
    pub total: usize,
    /// The queue's lock counters, if it keeps them.
    pub stats: Option<StatsSnapshot>,
}

// ANCHOR: produce_and_consume
/// `producers` threads push `per_producer` items each while the calling thread
/// consumes them all (callbacks spinning `work_ns` each). With `time_pushes`,
/// every push is timed on its own (the item is made before the clock starts).
pub fn produce_and_consume<Q: BenchQueue<J>, J: Job>(
    producers: usize,
    per_producer: usize,
    work_ns: u64,
    time_pushes: bool,
) -> Concurrent {
    let q = Q::create();
    let mut consumer = q.consumer();
    let total = producers * per_producer;
    let barrier = Barrier::new(producers + 1);
    let (acc, all_run, produced) = thread::scope(|s| {
        let (q, barrier) = (&q, &barrier);
        let handles: Vec<_> = (0..producers)
            .map(|p| {
                s.spawn(move || {
                    let mut push_ns =
                        Vec::with_capacity(if time_pushes { per_producer } else { 0 });
                    let base = (p * per_producer) as u64;
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..per_producer as u64 {
                        let job = J::make(base + i);
                        if time_pushes {
                            let t = Instant::now();
                            q.push(job);
                            push_ns.push(t.elapsed().as_nanos() as u64);
                        } else {
                            q.push(job);
                        }
                    }
                    Produced {
                        start,
                        end: Instant::now(),
                        push_ns,
                    }
                })
            })
            .collect();
        barrier.wait();
        let acc = consume::<Q, J>(q, &mut consumer, total, work_ns);
        let all_run = Instant::now();
        let produced: Vec<Produced> = handles
            .into_iter()
            .map(|h| h.join().expect("producer panicked"))
            .collect();
        (acc, all_run, produced)
    });
    check(acc, total, "produce_and_consume");
    let first_push = produced.iter().map(|p| p.start).min().expect("producers");
    let last_push = produced.iter().map(|p| p.end).max().expect("producers");
    let mut push_ns: Vec<u64> = produced.into_iter().flat_map(|p| p.push_ns).collect();
    push_ns.sort_unstable();
    Concurrent {
        first_push,
        last_push,
        all_run,
        push_ns,
        total,
        stats: q.lock_stats(),
    }
}
// ANCHOR_END: produce_and_consume

/// **registration**: `producers` × `per_producer` pushes, each timed, consumer
/// running. `pushes_per_s` over first push start → last push end;
/// `push_mean_ns`, `push_max_ns` per push.
pub fn registration<Q: BenchQueue<J>, J: Job>(producers: usize, per_producer: usize) -> Metrics {
    let r = produce_and_consume::<Q, J>(producers, per_producer, 0, true);
    let mut m = Metrics::default();
    m.set("pushes_per_s", per_s(r.total, r.last_push - r.first_push));
    let sum: u64 = r.push_ns.iter().sum();
    m.set("push_mean_ns", sum as f64 / r.push_ns.len() as f64);
    m.set("push_max_ns", *r.push_ns.last().unwrap_or(&0) as f64);
    m
}

/// **contention**: `producers` × `per_producer` pushes (untimed), consumer
/// running callbacks that spin `work_ns`. `callbacks_per_s` and `total_ms`
/// over first push start → last callback run, plus the lock counters
/// ([`lock_metrics`]) if the contender keeps them.
pub fn contention<Q: BenchQueue<J>, J: Job>(
    producers: usize,
    per_producer: usize,
    work_ns: u64,
) -> Metrics {
    let r = produce_and_consume::<Q, J>(producers, per_producer, work_ns, false);
    let elapsed = r.all_run - r.first_push;
    let mut m = Metrics::default();
    m.set("callbacks_per_s", per_s(r.total, elapsed));
    m.set("total_ms", elapsed.as_secs_f64() * 1e3);
    m.set("pushes_per_s", per_s(r.total, r.last_push - r.first_push));
    if let Some(stats) = &r.stats {
        lock_metrics(stats, &mut m);
    }
    m
}

/// **latency**: `producers` × `per_producer` pushes, each timed, consumer
/// running: the distribution of one push's time, `mean_ns`, `p50_ns`,
/// `p95_ns`, `p99_ns`, `max_ns`, over all pushes of all producers.
pub fn latency<Q: BenchQueue<J>, J: Job>(producers: usize, per_producer: usize) -> Metrics {
    let r = produce_and_consume::<Q, J>(producers, per_producer, 0, true);
    let mut m = Metrics::default();
    let sum: u64 = r.push_ns.iter().sum();
    m.set("mean_ns", sum as f64 / r.push_ns.len() as f64);
    for (key, q) in [
        ("p50_ns", 0.50),
        ("p95_ns", 0.95),
        ("p99_ns", 0.99),
        ("max_ns", 1.0),
    ] {
        m.set(key, percentile(&r.push_ns, q) as f64);
    }
    m
}

/// **mixed**: `writers` × `per_writer` pushes while the reader (consumer)
/// runs them, until the reader has run everything. `ops_per_s` counts a push
/// and a run as one operation each (the summary's "ops", 2 per callback);
/// `callbacks_per_s` counts callbacks; `total_ms`.
pub fn mixed<Q: BenchQueue<J>, J: Job>(writers: usize, per_writer: usize) -> Metrics {
    let r = produce_and_consume::<Q, J>(writers, per_writer, 0, false);
    let elapsed = r.all_run - r.first_push;
    let mut m = Metrics::default();
    m.set("ops_per_s", per_s(2 * r.total, elapsed));
    m.set("callbacks_per_s", per_s(r.total, elapsed));
    m.set("total_ms", elapsed.as_secs_f64() * 1e3);
    m
}

// ---------------------------------------------------------------------------
// wake-up

// ANCHOR: wakeup
/// **wake-up**: a consumer thread idle in [`BenchQueue::wait_idle`] (no
/// timeout); the calling thread sleeps `gap` (plus a spread of 0–1 ms, so that
/// pushes land at every point of a 1 ms poll), pushes one item and notes the
/// time; the consumer notes when it ran it. `samples` times. Figures:
/// `p50_ns`, `p99_ns`, `mean_ns`, `max_ns` of push → run.
///
/// The gap must exceed 1.3 ms for 3.1.2's back-off to reach its 1 ms cap
/// (10 + 20 + … + 640 µs), which is what a loop idle for a while looks like.
pub fn wakeup<Q: BenchQueue<J>, J: Job>(samples: usize, gap: Duration) -> Metrics {
    let q = Q::create();
    let mut consumer = q.consumer();
    let epoch = Instant::now();
    let ran_at = AtomicU64::new(0);
    let done = AtomicUsize::new(0);
    let mut latencies = Vec::with_capacity(samples);
    let acc = thread::scope(|s| {
        let (q, ran_at, done) = (&q, &ran_at, &done);
        let consumer_thread = s.spawn(move || {
            let mut acc = 0u64;
            let mut ran = 0;
            while ran < samples {
                let n = q.run_turn(&mut consumer, |job: J| {
                    job.run(&mut acc);
                    ran_at.store(epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    done.fetch_add(1, Ordering::Release);
                });
                if n == 0 {
                    q.wait_idle(&mut consumer);
                }
                ran += n;
            }
            acc
        });
        for i in 0..samples {
            thread::sleep(gap + Duration::from_micros((i as u64 * 617) % 1000));
            let pushed_at = epoch.elapsed().as_nanos() as u64;
            q.push(J::make(i as u64));
            // Not timed: wait for the consumer before the next sample.
            while done.load(Ordering::Acquire) <= i {
                thread::sleep(Duration::from_micros(20));
            }
            latencies.push(ran_at.load(Ordering::Relaxed).saturating_sub(pushed_at));
        }
        consumer_thread.join().expect("consumer panicked")
    });
    check(acc, samples, "wakeup");
    latencies.sort_unstable();
    let mut m = Metrics::default();
    m.set("p50_ns", percentile(&latencies, 0.5) as f64);
    m.set("p99_ns", percentile(&latencies, 0.99) as f64);
    let sum: u64 = latencies.iter().sum();
    m.set("mean_ns", sum as f64 / latencies.len().max(1) as f64);
    m.set("max_ns", percentile(&latencies, 1.0) as f64);
    m
}
// ANCHOR_END: wakeup

// ---------------------------------------------------------------------------
// lock counters

/// The `q`-quantile of the hold times of the batches that took the lock, read
/// off the histogram (an upper bound, exact to a factor of two, and never above
/// the longest hold). Bucket 0
/// (0 ns) is left out: 3.1.5 records its turns served from its own buffer,
/// without the lock, as batches held 0 ns.
fn locked_hold_quantile(stats: &StatsSnapshot, q: f64) -> u64 {
    let locked: u64 = stats.hold_histogram[1..].iter().sum();
    if locked == 0 {
        return 0;
    }
    let rank = ((q * locked as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (i, count) in stats.hold_histogram.iter().enumerate().skip(1) {
        seen += count;
        if seen >= rank {
            return (1u64 << i).min(stats.hold_max_ns);
        }
    }
    stats.hold_max_ns
}

/// Adds the lock counters of `stats` to `m`:
///
/// - `batches`, `callbacks_per_batch`: consumer turns that ran something;
/// - `lock_takes`: those that took the lock (all of them but 3.1.5's turns
///   served from its buffer);
/// - `hold_mean_ns`, `hold_p50_ns`, `hold_p99_ns`, `hold_max_ns`: how long the
///   consumer held the lock per take (p50/p99 are the histogram's power-of-two
///   upper bounds, capped at the maximum); `hold_mean_per_batch_ns` is the counters' own per-batch mean;
/// - `contended_pushes`, `contended_pct`: pushes that found the lock taken;
/// - `push_wait_mean_ns`, `push_wait_max_ns`: how long those waited;
/// - `idle_waits`: times the consumer went idle.
pub fn lock_metrics(stats: &StatsSnapshot, m: &mut Metrics) {
    let takes: u64 = stats.hold_histogram[1..].iter().sum();
    m.set("batches", stats.batches as f64);
    m.set("callbacks_per_batch", stats.callbacks_per_batch());
    m.set("lock_takes", takes as f64);
    m.set(
        "hold_mean_ns",
        if takes == 0 {
            0.0
        } else {
            stats.hold_ns as f64 / takes as f64
        },
    );
    m.set("hold_mean_per_batch_ns", stats.mean_hold_ns());
    m.set("hold_p50_ns", locked_hold_quantile(stats, 0.5) as f64);
    m.set("hold_p99_ns", locked_hold_quantile(stats, 0.99) as f64);
    m.set("hold_max_ns", stats.hold_max_ns as f64);
    m.set("contended_pushes", stats.contended_pushes as f64);
    m.set(
        "contended_pct",
        if stats.pushes == 0 {
            0.0
        } else {
            100.0 * stats.contended_pushes as f64 / stats.pushes as f64
        },
    );
    m.set("push_wait_mean_ns", stats.mean_push_wait_ns());
    m.set("push_wait_max_ns", stats.push_wait_max_ns as f64);
    m.set("idle_waits", stats.idle_waits as f64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{with_contender, Callback, Contender};

    #[test]
    fn percentile_by_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    /// Every scenario, tiny, on every contender: runs to the end and checks
    /// its checksum (a correctness test of the drivers, not a timing).
    #[test]
    fn every_scenario_runs_on_every_contender() {
        for c in Contender::all() {
            with_contender!(c, Q => {
                let m = single::<Q<Callback>, Callback>(300, 2);
                assert!(m.get("total_ns").unwrap() > 0.0);
                let m = registration::<Q<Callback>, Callback>(3, 200);
                assert!(m.get("pushes_per_s").unwrap() > 0.0);
                let m = contention::<Q<u64>, u64>(3, 300, 50);
                assert_eq!(m.get("batches").is_some(), c != Contender::StdMpsc && c != Contender::Crossbeam);
                latency::<Q<u64>, u64>(2, 100);
                mixed::<Q<u64>, u64>(3, 100);
                let m = wakeup::<Q<u64>, u64>(3, Duration::from_micros(100));
                assert!(m.get("p50_ns").unwrap() > 0.0);
            });
        }
    }
}
