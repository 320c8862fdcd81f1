//! The producer sweep at the Rust level: every phase of `pyloop-core`, with 1,
//! 2, 4, 8 and 16 producer threads, the same total work each time (strong
//! scaling, the situation Amdahl's law describes).
//!
//! **The workload.** Each producer does `produce_ns` of its own work per item
//! (spinning: the part that *can* run in parallel), then pushes a boxed
//! closure. The one consumer runs the phase's turns; each callback spins
//! `callback_ns` (the loop's work per callback). Throughput is callbacks per
//! second from the barrier that releases the producers to the last callback
//! run.
//!
//! **What is serial.** Every push takes the queue lock; in phases 3.1.1–3.1.3
//! the consumer also holds it while it runs a batch, so a producer that pushes
//! meanwhile waits for the whole batch. The consumer itself is one thread: the
//! callbacks' work is serial whatever the phase. The counters give the share of
//! the run the consumer held the lock (`hold_share`, the summary's "lock hold /
//! total") and the share of the producers' time spent waiting for it
//! (`push_wait_share`).
//!
//! **What the machine adds.** With more runnable threads than cores, threads
//! are time-sliced: producers beyond `cores − 1` add no parallelism, and a
//! thread descheduled while holding the lock makes everyone wait a slice.
//! Neither is in Amdahl's law; the USL's κ is where the second one shows up.
//!
//! No Python here and no GIL: the Python benchmarks measure the same sweep
//! through the event loop, where the GIL serialises the producers.

use std::hint::spin_loop;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use pyloop_core::{with_phase_queue, Phase, ReadyQueue, StatsSnapshot};
use serde_json::{json, Value};

/// What a producer pushes: a boxed closure adding its payload to the consumer's sum.
pub type Item = Box<dyn FnOnce(&mut u64) + Send>;

/// Sizes, work and repetitions of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepConfig {
    /// `"quick"` or `"full"` (recorded in the results).
    pub mode: String,
    /// Producer counts, in the order they are run.
    pub producers: Vec<usize>,
    /// Callbacks per run, split evenly over the producers (a multiple of each count).
    pub total_callbacks: usize,
    /// Producer work before each push, ns (spun).
    pub produce_ns: u64,
    /// Work of each callback on the loop thread, ns (spun).
    pub callback_ns: u64,
    /// Kept repetitions; one more, first, is a discarded warm-up.
    pub reps: usize,
    /// The phases measured.
    pub phases: Vec<Phase>,
    /// A repetition during which other processes used more than this share of
    /// the CPUs (percent) is run again instead of kept, while `budget` lasts;
    /// `None` keeps every repetition.
    pub max_background_pct: Option<f64>,
    /// How long to keep running repetitions in search of quiet ones. When it
    /// runs out, the `reps` least disturbed repetitions are kept, and the
    /// results say so.
    pub budget: Duration,
}

impl SweepConfig {
    /// A few seconds: 3 repetitions of 16,000 callbacks.
    pub fn quick() -> Self {
        SweepConfig {
            mode: "quick".into(),
            producers: vec![1, 2, 4, 8, 16],
            total_callbacks: 16_000,
            produce_ns: 1_000,
            callback_ns: 250,
            reps: 3,
            phases: Phase::ALL.to_vec(),
            max_background_pct: None,
            budget: Duration::ZERO,
        }
    }

    /// The published run: 9 repetitions of 48,000 callbacks (about 40 s on a
    /// quiet machine), keeping only repetitions during which other processes
    /// used at most 35 % of the CPUs, for up to five minutes.
    pub fn full() -> Self {
        SweepConfig {
            mode: "full".into(),
            total_callbacks: 48_000,
            reps: 9,
            max_background_pct: Some(35.0),
            budget: Duration::from_secs(300),
            ..SweepConfig::quick()
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "mode": self.mode,
            "producers": self.producers,
            "total_callbacks": self.total_callbacks,
            "produce_ns": self.produce_ns,
            "callback_ns": self.callback_ns,
            "repetitions": self.reps,
            "warm_up_discarded": true,
            "max_background_pct": self.max_background_pct,
            "budget_s": self.budget.as_secs_f64(),
            "order": "for each repetition, each producer count, every phase in an order rotated by one each time",
            "item": "boxed closure",
            "batch_limit": pyloop_core::BATCH_LIMIT,
        })
    }
}

/// One run of one phase at one producer count.
#[derive(Clone, Debug)]
pub struct Run {
    /// Callbacks per second, first push to last callback run.
    pub callbacks_per_s: f64,
    /// Length of the run.
    pub elapsed: Duration,
    /// The queue's counters at the end.
    pub stats: StatsSnapshot,
}

impl Run {
    /// Share of the run during which the consumer held the queue lock.
    pub fn hold_share(&self) -> f64 {
        self.stats.hold_ns as f64 / self.elapsed.as_nanos() as f64
    }

    /// Share of all producers' time (producers × run) spent waiting for the lock.
    pub fn push_wait_share(&self, producers: usize) -> f64 {
        self.stats.push_wait_ns as f64 / (producers as f64 * self.elapsed.as_nanos() as f64)
    }

    /// Share of pushes that found the lock taken, percent.
    pub fn contended_pct(&self) -> f64 {
        100.0 * self.stats.contended_pushes as f64 / self.stats.pushes.max(1) as f64
    }
}

/// Spins for about `ns` nanoseconds (by the clock, so it means the same everywhere).
#[inline]
pub fn spin_for(ns: u64) {
    if ns == 0 {
        return;
    }
    let until = Duration::from_nanos(ns);
    let start = Instant::now();
    while start.elapsed() < until {
        spin_loop();
    }
}

/// One run of queue type `Q`: `producers` threads share `cfg.total_callbacks`.
pub fn run_once<Q: ReadyQueue<Item>>(producers: usize, cfg: &SweepConfig) -> Run {
    let per_producer = cfg.total_callbacks / producers;
    let total = per_producer * producers;
    let q = Q::new();
    let mut consumer = q.consumer();
    let barrier = Barrier::new(producers + 1);
    let (sum, elapsed) = thread::scope(|s| {
        for p in 0..producers {
            let (q, barrier) = (&q, &barrier);
            let produce_ns = cfg.produce_ns;
            s.spawn(move || {
                let base = (p * per_producer) as u64;
                barrier.wait();
                for i in 0..per_producer as u64 {
                    spin_for(produce_ns);
                    let payload = base + i;
                    let item: Item = Box::new(move |acc: &mut u64| *acc += payload);
                    if q.push(item).is_err() {
                        unreachable!("the sweep never closes its queue");
                    }
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        let mut sum = 0u64;
        let mut ran = 0;
        while ran < total {
            let n = q.run_batch(&mut consumer, |item: Item| {
                item(&mut sum);
                spin_for(cfg.callback_ns);
            });
            if n == 0 {
                q.wait(&mut consumer, Some(Duration::from_millis(10)));
            }
            ran += n;
        }
        (sum, start.elapsed())
    });
    let expected = (total as u64) * (total as u64 - 1) / 2;
    assert_eq!(sum, expected, "every item must run exactly once");
    Run {
        callbacks_per_s: total as f64 / elapsed.as_secs_f64(),
        elapsed,
        stats: q.stats().snapshot(),
    }
}

/// [`run_once`] for a phase chosen at run time.
pub fn run_phase(phase: Phase, producers: usize, cfg: &SweepConfig) -> Run {
    with_phase_queue!(phase, Q => run_once::<Q<Item>>(producers, cfg))
}

/// Median of `values` (mean of the middle two for an even count); NaN if
/// empty. `pyloop-measure`'s, shared with the benchmarks.
pub use pyloop_measure::median;

/// `{"median", "min", "max", "reps"}` of `values`, as the results files write a figure.
pub fn summarize(values: &[f64]) -> Value {
    let (min, max) = pyloop_measure::min_max(values);
    json!({"median": median(values), "min": min, "max": max, "reps": values})
}

/// Runs the sweep and returns the results document (schema
/// `pyloop-model/sweep/1`). `progress` is told about each repetition.
pub fn run_sweep(cfg: &SweepConfig, mut progress: impl FnMut(&str)) -> Value {
    for &n in &cfg.producers {
        assert!(
            n > 0 && cfg.total_callbacks % n == 0,
            "total_callbacks must be a multiple of every producer count"
        );
    }
    let started = Instant::now();
    let whole_run = crate::machine::Background::start();
    let np = cfg.phases.len();
    let quiet = |load: Option<f64>| match (cfg.max_background_pct, load) {
        (Some(max), Some(l)) => l <= max,
        _ => true,
    };
    // Every measured repetition: its background load, and its runs
    // [phase][producer count].
    let mut measured: Vec<(Option<f64>, Vec<Vec<Run>>)> = Vec::new();
    let mut turn = 0;
    let mut rep = 0;
    loop {
        let clean = measured.iter().filter(|(l, _)| quiet(*l)).count();
        let out_of_time = started.elapsed() >= cfg.budget && measured.len() >= cfg.reps;
        if rep > 0 && (clean >= cfg.reps || out_of_time) {
            break;
        }
        let t = Instant::now();
        let load = crate::machine::Background::start();
        let mut this: Vec<Vec<Option<Run>>> = vec![vec![None; cfg.producers.len()]; np];
        for (ci, &n) in cfg.producers.iter().enumerate() {
            for k in 0..np {
                let pi = (k + turn) % np;
                this[pi][ci] = Some(run_phase(cfg.phases[pi], n, cfg));
            }
            turn += 1;
        }
        let load = load.percent();
        let verdict = if rep == 0 {
            " (warm-up, discarded)"
        } else if quiet(load) {
            ""
        } else {
            " (machine busy: run again)"
        };
        if rep > 0 {
            let runs = this
                .into_iter()
                .map(|per| per.into_iter().map(|r| r.expect("every run")).collect())
                .collect();
            measured.push((load, runs));
        }
        let other = load
            .map(|l| format!("; other processes used {l:.0} % of the CPUs"))
            .unwrap_or_default();
        progress(&format!(
            "rep {rep} ({} of {} kept so far){verdict}: {:.2}s{other}",
            measured.iter().filter(|(l, _)| quiet(*l)).count(),
            cfg.reps,
            t.elapsed().as_secs_f64()
        ));
        rep += 1;
    }
    // Keep the first `reps` quiet repetitions; short of them, the `reps`
    // least disturbed ones.
    let all_quiet = measured.iter().filter(|(l, _)| quiet(*l)).count() >= cfg.reps;
    let mut kept: Vec<(Option<f64>, Vec<Vec<Run>>)> = if all_quiet {
        measured
            .iter()
            .filter(|(l, _)| quiet(*l))
            .take(cfg.reps)
            .cloned()
            .collect()
    } else {
        let mut by_load = measured.clone();
        by_load.sort_by(|a, b| a.0.unwrap_or(0.0).total_cmp(&b.0.unwrap_or(0.0)));
        by_load.truncate(cfg.reps);
        by_load
    };
    let background: Vec<Option<f64>> = kept.iter().map(|(l, _)| *l).collect();
    let repetitions_run = measured.len();
    drop(measured);
    // runs[phase][count] = kept runs
    let mut runs: Vec<Vec<Vec<Run>>> = vec![vec![Vec::new(); cfg.producers.len()]; np];
    for (_, rep_runs) in kept.drain(..) {
        for (pi, per) in rep_runs.into_iter().enumerate() {
            for (ci, run) in per.into_iter().enumerate() {
                runs[pi][ci].push(run);
            }
        }
    }
    let phases: Vec<Value> = cfg
        .phases
        .iter()
        .enumerate()
        .map(|(pi, phase)| {
            let points: Vec<Value> = cfg
                .producers
                .iter()
                .enumerate()
                .map(|(ci, &n)| {
                    let rs = &runs[pi][ci];
                    let figure =
                        |f: &dyn Fn(&Run) -> f64| summarize(&rs.iter().map(f).collect::<Vec<_>>());
                    json!({
                        "producers": n,
                        "callbacks_per_s": figure(&|r| r.callbacks_per_s),
                        "hold_share": figure(&|r| r.hold_share()),
                        "push_wait_share": figure(&|r| r.push_wait_share(n)),
                        "contended_pct": figure(&|r| r.contended_pct()),
                        "hold_mean_ns": figure(&|r| r.stats.mean_hold_ns()),
                        "callbacks_per_batch": figure(&|r| r.stats.callbacks_per_batch()),
                    })
                })
                .collect();
            json!({"phase": phase.tag(), "title": phase.title(), "points": points})
        })
        .collect();
    json!({
        "schema": "pyloop-model/sweep/1",
        "what": "callbacks/s of one consumer fed by N producer threads (Rust, no GIL), same total work at every N",
        "machine": crate::machine::record(&cfg.mode),
        "config": cfg.to_json(),
        "elapsed_s": started.elapsed().as_secs_f64(),
        "background_load_pct": {
            "what": "CPU used by other processes during the run, percent of all CPUs",
            "whole_run": whole_run.percent(),
            "per_repetition": background,
            "repetitions_run": repetitions_run,
            "kept": if all_quiet {
                "the first repetitions under the limit"
            } else {
                "the least disturbed repetitions: the budget ran out before enough were under the limit"
            },
            "all_under_limit": all_quiet,
        },
        "figures": {
            "callbacks_per_s": "callbacks over barrier release -> last callback run",
            "hold_share": "consumer's total lock hold / run length (the summary's 'lock hold / total')",
            "push_wait_share": "producers' total wait for the lock / (producers x run length)",
            "contended_pct": "pushes that found the lock taken, percent",
            "hold_mean_ns": "mean lock hold per consumer batch, ns",
            "callbacks_per_batch": "mean callbacks per consumer batch",
        },
        "phases": phases,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phase_runs_every_item_once() {
        let cfg = SweepConfig {
            total_callbacks: 400,
            produce_ns: 0,
            callback_ns: 0,
            ..SweepConfig::quick()
        };
        for phase in Phase::ALL {
            for n in [1, 4] {
                let run = run_phase(phase, n, &cfg);
                assert_eq!(run.stats.callbacks, 400, "{phase} with {n}");
                assert_eq!(run.stats.pushes, 400);
                assert!(run.callbacks_per_s > 0.0);
                assert!((0.0..=1.0).contains(&run.hold_share()));
            }
        }
    }

    #[test]
    fn sweep_document_shape() {
        let cfg = SweepConfig {
            producers: vec![1, 2],
            total_callbacks: 200,
            produce_ns: 0,
            callback_ns: 0,
            reps: 1,
            phases: vec![Phase::TwoPhase],
            ..SweepConfig::quick()
        };
        let doc = run_sweep(&cfg, |_| {});
        assert_eq!(doc["schema"], "pyloop-model/sweep/1");
        let points = doc["phases"][0]["points"].as_array().unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(points[1]["producers"], 2);
        assert_eq!(
            points[0]["callbacks_per_s"]["reps"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_busy_machine_is_said_so() {
        // A limit no repetition can meet and no budget: the least disturbed
        // repetitions are kept, and the document says the limit was not met.
        let cfg = SweepConfig {
            producers: vec![1, 2],
            total_callbacks: 200,
            produce_ns: 0,
            callback_ns: 0,
            reps: 2,
            phases: vec![Phase::SwapBuffer],
            max_background_pct: Some(-1.0),
            budget: Duration::ZERO,
            ..SweepConfig::quick()
        };
        let doc = run_sweep(&cfg, |_| {});
        let load = &doc["background_load_pct"];
        assert_eq!(load["repetitions_run"], 2);
        assert_eq!(load["per_repetition"].as_array().unwrap().len(), 2);
        if load["whole_run"].is_number() {
            // /proc is there: the loads were measured, and none was under -1 %
            assert_eq!(load["all_under_limit"], false);
        }
        let points = doc["phases"][0]["points"].as_array().unwrap();
        assert_eq!(
            points[0]["callbacks_per_s"]["reps"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
}
