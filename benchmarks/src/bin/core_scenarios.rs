//! Runs every scenario of the 3.1.4 summary on every contender (each phase of
//! `pyloop-core`, std mpsc, crossbeam-channel, an rloop-style swapped deque),
//! with repetitions, and writes the medians as JSON.
//!
//! ```text
//! cargo run -p pyloop-benchmarks --release --bin core_scenarios -- --quick --out benchmarks/results/quick/core.json
//! cargo run -p pyloop-benchmarks --release --bin core_scenarios -- --full  --out benchmarks/results/core.json
//! ```
//!
//! Options (`--help` lists them): `--quick` (the default: 3 repetitions of 3
//! runs, smaller mixed and wake-up runs) or `--full` (9 repetitions of 7 runs,
//! the summary's sizes); `--out FILE` (default: standard output, so that the
//! committed results are only ever written when named);
//! `--item closure|u64` (default: closure, the published item); `--reps N`;
//! `--only ID,ID,...` (contender ids); `--scenarios KEY,KEY,...`;
//! `--quiet-wait SECS` (before each repetition, wait at most this long for
//! other processes to use under 25 % of the CPUs; full mode: 30, quick: 0);
//! `--budget SECS` (full mode: 540; quick: 0, see below);
//! `--producers N` (every multi-producer scenario with N producer threads
//! instead of the summary's 10 or 5: for experiments, such as as many
//! producers as cores).
//!
//! Each repetition runs every scenario, and within a scenario every contender,
//! in an order rotated by one each repetition, so that no contender always
//! runs first or right after a given other. Repetition 0 is a warm-up and is
//! discarded. Within a repetition a concurrent scenario runs several times on
//! fresh queues and the repetition keeps the median of those runs (single
//! does the same inside [`scenarios::single`]; wake-up takes many samples in
//! one run). Each figure is published as the median over the kept
//! repetitions, with their minimum and maximum and every value.
//!
//! The machines are shared. Every repetition records how much of the CPUs
//! other processes used while it ran. With a budget (full mode), a repetition
//! during which they used more than 35 % is not published and another is run,
//! until the asked number of quiet repetitions is in or the budget is spent;
//! with fewer than 3 quiet ones, all are published and the file says it was
//! loaded. Without a budget (quick mode) every repetition is published. The
//! rule looks only at the machine's load, never at the figures.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use pyloop_benchmarks::scenarios::{self, Metrics};
use pyloop_benchmarks::{machine, with_contender, BenchQueue, Callback, Contender, Job};
use pyloop_measure::{median, min_max, wait_for_quiet, Background};
use serde_json::{json, Map, Value};

/// The scenarios, in the order they run and are published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Scenario {
    Single,
    Registration,
    Contention,
    Latency,
    Mixed,
    Wakeup,
    LockHold,
}

const SCENARIOS: [Scenario; 7] = [
    Scenario::Single,
    Scenario::Registration,
    Scenario::Contention,
    Scenario::Latency,
    Scenario::Mixed,
    Scenario::Wakeup,
    Scenario::LockHold,
];

/// One published figure: key, unit, which way is better, what it is.
type MetricDef = (&'static str, &'static str, &'static str, &'static str);

const LOCK_METRICS: [MetricDef; 14] = [
    (
        "batches",
        "count",
        "none",
        "consumer turns that ran at least one callback",
    ),
    (
        "callbacks_per_batch",
        "count",
        "none",
        "mean callbacks per such turn",
    ),
    (
        "lock_takes",
        "count",
        "none",
        "turns that took the lock (3.1.5 serves most turns from its own buffer)",
    ),
    (
        "hold_mean_ns",
        "ns",
        "lower",
        "mean time the consumer held the lock per take",
    ),
    (
        "hold_mean_per_batch_ns",
        "ns",
        "lower",
        "the counters' own mean hold per batch (3.1.5: turns without the lock count as 0)",
    ),
    (
        "hold_p50_ns",
        "ns",
        "lower",
        "median hold per take (power-of-two upper bound from the histogram)",
    ),
    (
        "hold_p99_ns",
        "ns",
        "lower",
        "p99 hold per take (power-of-two upper bound)",
    ),
    ("hold_max_ns", "ns", "lower", "longest hold"),
    (
        "contended_pushes",
        "count",
        "lower",
        "pushes that found the lock taken",
    ),
    (
        "contended_pct",
        "%",
        "lower",
        "share of pushes that found the lock taken",
    ),
    (
        "push_wait_mean_ns",
        "ns",
        "lower",
        "mean wait of a contended push",
    ),
    (
        "push_wait_max_ns",
        "ns",
        "lower",
        "longest wait of one push",
    ),
    (
        "idle_waits",
        "count",
        "none",
        "times the consumer went idle",
    ),
    (
        "pushes_per_s",
        "1/s",
        "higher",
        "pushes over first push start -> last push end",
    ),
];

impl Scenario {
    fn key(self) -> &'static str {
        match self {
            Scenario::Single => "single",
            Scenario::Registration => "registration",
            Scenario::Contention => "contention",
            Scenario::Latency => "latency",
            Scenario::Mixed => "mixed",
            Scenario::Wakeup => "wakeup",
            Scenario::LockHold => "lock_hold",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Scenario::Single => "Single thread: push then run",
            Scenario::Registration => "Concurrent registration",
            Scenario::Contention => "High contention",
            Scenario::Latency => "Registration latency distribution",
            Scenario::Mixed => "Mixed writers and reader",
            Scenario::Wakeup => "Wake-up of an idle consumer",
            Scenario::LockHold => "Lock hold with working callbacks",
        }
    }

    fn metrics(self) -> Vec<MetricDef> {
        let mut v: Vec<MetricDef> = match self {
            Scenario::Single => vec![
                (
                    "total_ns",
                    "ns",
                    "lower",
                    "per callback: push all, then run all",
                ),
                ("push_ns", "ns", "lower", "per callback: the pushes alone"),
                (
                    "drain_ns",
                    "ns",
                    "lower",
                    "per callback: running them alone",
                ),
            ],
            Scenario::Registration => vec![
                (
                    "pushes_per_s",
                    "1/s",
                    "higher",
                    "pushes over first push start -> last push end",
                ),
                ("push_mean_ns", "ns", "lower", "mean time of one push"),
                (
                    "push_max_ns",
                    "ns",
                    "lower",
                    "longest push (includes being descheduled)",
                ),
            ],
            Scenario::Contention | Scenario::LockHold => vec![
                (
                    "callbacks_per_s",
                    "1/s",
                    "higher",
                    "callbacks over first push start -> last callback run",
                ),
                (
                    "total_ms",
                    "ms",
                    "lower",
                    "first push start -> last callback run",
                ),
            ],
            Scenario::Latency => vec![
                ("mean_ns", "ns", "lower", "mean time of one push"),
                ("p50_ns", "ns", "lower", "median push"),
                ("p95_ns", "ns", "lower", "95th percentile push"),
                ("p99_ns", "ns", "lower", "99th percentile push"),
                ("max_ns", "ns", "lower", "longest push"),
            ],
            Scenario::Mixed => vec![
                (
                    "ops_per_s",
                    "1/s",
                    "higher",
                    "(pushes + runs) over first push start -> last run",
                ),
                (
                    "callbacks_per_s",
                    "1/s",
                    "higher",
                    "callbacks over first push start -> last run",
                ),
                ("total_ms", "ms", "lower", "first push start -> last run"),
            ],
            Scenario::Wakeup => vec![
                ("p50_ns", "ns", "lower", "median push -> callback run"),
                (
                    "p99_ns",
                    "ns",
                    "lower",
                    "99th percentile push -> callback run",
                ),
                ("mean_ns", "ns", "lower", "mean push -> callback run"),
                ("max_ns", "ns", "lower", "longest push -> callback run"),
            ],
        };
        if matches!(self, Scenario::Contention | Scenario::LockHold) {
            v.extend(LOCK_METRICS);
        }
        v
    }
}

/// Sizes and repetitions.
#[derive(Clone, Debug)]
struct Config {
    mode: &'static str,
    reps: usize,
    item: &'static str,
    single_n: usize,
    single_inner: usize,
    /// Runs per repetition of each concurrent scenario; the repetition's
    /// figure is their median.
    inner: usize,
    registration: (usize, usize),
    contention: (usize, usize),
    latency: (usize, usize),
    mixed: (usize, usize),
    wakeup_samples: usize,
    wakeup_gap: Duration,
    work_ns: u64,
    /// Before each repetition, wait at most this long for other processes to
    /// use less than [`QUIET_THRESHOLD_PCT`] of the CPUs.
    quiet_wait: Duration,
    /// Zero: run `reps` repetitions and publish them all. Otherwise: run until
    /// `reps` quiet repetitions are in, or this much time has passed.
    budget: Duration,
}

/// What counts as a quiet machine before a repetition, percent of all cores
/// used by other processes.
const QUIET_THRESHOLD_PCT: f64 = 25.0;

/// A repetition during which other processes used more than this share of the
/// CPUs (percent) is not published when a budget is set; it is run again.
const ACCEPT_LOAD_PCT: f64 = 35.0;

/// The fewest quiet repetitions published; with fewer, all are published and
/// the file is marked as loaded.
const MIN_KEPT: usize = 3;

/// One repetition after the warm-up.
struct Repetition {
    /// Other processes' CPU use while it ran, percent of all cores.
    load: Option<f64>,
    /// Seconds waited for a quiet machine before it.
    waited: f64,
    /// Its figures, per scenario and contender.
    figures: HashMap<(Scenario, Contender), Metrics>,
}

impl Repetition {
    /// True if the machine was quiet enough (or the load is unknown).
    fn quiet(&self) -> bool {
        self.load.is_none_or(|l| l <= ACCEPT_LOAD_PCT)
    }
}

impl Config {
    fn quick() -> Self {
        Config {
            mode: "quick",
            reps: 3,
            item: "closure",
            single_n: 50_000,
            single_inner: 3,
            inner: 3,
            registration: (10, 1_000),
            contention: (10, 5_000),
            latency: (5, 1_000),
            mixed: (10, 5_000),
            wakeup_samples: 40,
            wakeup_gap: Duration::from_millis(2),
            work_ns: 200,
            quiet_wait: Duration::ZERO,
            budget: Duration::ZERO,
        }
    }

    fn full() -> Self {
        Config {
            mode: "full",
            reps: 9,
            single_inner: 5,
            inner: 7,
            mixed: (10, 20_000),
            wakeup_samples: 200,
            quiet_wait: Duration::from_secs(30),
            budget: Duration::from_secs(540),
            ..Config::quick()
        }
    }

    fn params(&self, s: Scenario) -> Value {
        match s {
            Scenario::Single => {
                json!({"callbacks": self.single_n, "inner_runs": self.single_inner})
            }
            Scenario::Registration => json!({"producers": self.registration.0,
                "per_producer": self.registration.1, "inner_runs": self.inner}),
            Scenario::Contention => json!({"producers": self.contention.0,
                "per_producer": self.contention.1, "work_ns": 0, "inner_runs": self.inner}),
            Scenario::LockHold => json!({"producers": self.contention.0,
                "per_producer": self.contention.1, "work_ns": self.work_ns, "inner_runs": self.inner}),
            Scenario::Latency => json!({"producers": self.latency.0,
                "per_producer": self.latency.1, "inner_runs": self.inner}),
            Scenario::Mixed => json!({"writers": self.mixed.0,
                "per_writer": self.mixed.1, "inner_runs": self.inner}),
            Scenario::Wakeup => json!({"samples": self.wakeup_samples,
                "gap_us": self.wakeup_gap.as_micros() as u64, "gap_spread_us": 1000}),
        }
    }

    /// The warm-up repetition runs everything, wake-up with fewer samples.
    fn warm_up(&self) -> Config {
        Config {
            wakeup_samples: (self.wakeup_samples / 4).max(5),
            ..self.clone()
        }
    }
}

fn run_on<Q: BenchQueue<J>, J: Job>(s: Scenario, cfg: &Config) -> Metrics {
    match s {
        Scenario::Single => scenarios::single::<Q, J>(cfg.single_n, cfg.single_inner),
        Scenario::Registration => {
            scenarios::registration::<Q, J>(cfg.registration.0, cfg.registration.1)
        }
        Scenario::Contention => {
            scenarios::contention::<Q, J>(cfg.contention.0, cfg.contention.1, 0)
        }
        Scenario::LockHold => {
            scenarios::contention::<Q, J>(cfg.contention.0, cfg.contention.1, cfg.work_ns)
        }
        Scenario::Latency => scenarios::latency::<Q, J>(cfg.latency.0, cfg.latency.1),
        Scenario::Mixed => scenarios::mixed::<Q, J>(cfg.mixed.0, cfg.mixed.1),
        Scenario::Wakeup => scenarios::wakeup::<Q, J>(cfg.wakeup_samples, cfg.wakeup_gap),
    }
}

/// One repetition's figures of scenario `s` on contender `c`: for the
/// concurrent scenarios, the median of `cfg.inner` runs, each on a fresh queue.
fn run_one(s: Scenario, c: Contender, cfg: &Config) -> Metrics {
    let runs = match s {
        Scenario::Single | Scenario::Wakeup => 1,
        _ => cfg.inner.max(1),
    };
    let all: Vec<Metrics> = (0..runs)
        .map(|_| match cfg.item {
            "u64" => with_contender!(c, Q => run_on::<Q<u64>, u64>(s, cfg)),
            _ => with_contender!(c, Q => run_on::<Q<Callback>, Callback>(s, cfg)),
        })
        .collect();
    let mut m = Metrics::default();
    for (key, _) in &all[0].0 {
        let values: Vec<f64> = all.iter().filter_map(|r| r.get(key)).collect();
        m.set(key, median(&values));
    }
    m
}

const USAGE: &str = "\
usage: core_scenarios [--quick | --full] [--out FILE] [--item closure|u64] [--reps N]
                      [--quiet-wait SECS] [--budget SECS] [--producers N]
                      [--only ID,...] [--scenarios KEY,...]

Runs the Rust-level scenarios on every contender and writes their medians as JSON.

  --quick             3 repetitions, smaller mixed and wake-up runs (the default)
  --full              9 repetitions, the summary's sizes: the published run
  --out FILE          write the JSON here (default: standard output); the committed
                      results are benchmarks/results/core.json, written only when named
  --item closure|u64  the item each queue carries (default: closure, as published)
  --reps N            repetitions after the warm-up
  --quiet-wait SECS   before each repetition, wait at most this long for a quiet machine
  --budget SECS       rerun repetitions spoilt by other processes' load within this time
  --producers N       every multi-producer scenario with N producers (experiments)
  --only ID,...       contenders (default: all): ";

/// What the command line asked for, checked.
struct Args {
    cfg: Config,
    out: Option<String>,
    item: &'static str,
    contenders: Vec<Contender>,
    chosen: Vec<Scenario>,
}

/// The value of option `name`, a whole number.
fn number<T: std::str::FromStr>(
    parser: &mut lexopt::Parser,
    name: &str,
) -> Result<T, lexopt::Error> {
    use lexopt::ValueExt;
    let value = parser.value()?.string()?;
    value
        .parse()
        .map_err(|_| format!("{name}: {value:?} is not a whole number").into())
}

/// Parses the command line; `Ok(None)` for `--help` (already printed).
fn parse_args() -> Result<Option<Args>, lexopt::Error> {
    use lexopt::prelude::*;

    let mut parser = lexopt::Parser::from_env();
    let mut cfg = Config::quick();
    let mut out = None;
    let mut item = "closure";
    let mut reps: Option<usize> = None;
    let mut producers: Option<usize> = None;
    let mut quiet_wait: Option<u64> = None;
    let mut budget: Option<u64> = None;
    let mut contenders = Contender::all();
    let mut chosen: Vec<Scenario> = SCENARIOS.to_vec();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("quick") => cfg = Config::quick(),
            Long("full") => cfg = Config::full(),
            Long("out") => out = Some(parser.value()?.string()?),
            Long("item") => {
                item = match parser.value()?.string()?.as_str() {
                    "closure" => "closure",
                    "u64" => "u64",
                    other => {
                        return Err(format!("--item: {other:?} is not one of closure, u64").into())
                    }
                }
            }
            Long("reps") => reps = Some(number(&mut parser, "--reps")?),
            Long("producers") => producers = Some(number(&mut parser, "--producers")?),
            Long("budget") => budget = Some(number(&mut parser, "--budget")?),
            Long("quiet-wait") => quiet_wait = Some(number(&mut parser, "--quiet-wait")?),
            Long("only") => {
                contenders = parser
                    .value()?
                    .string()?
                    .split(',')
                    .map(|id| id.parse::<Contender>().map_err(|e| e.to_string()))
                    .collect::<Result<_, _>>()?
            }
            Long("scenarios") => {
                chosen = parser
                    .value()?
                    .string()?
                    .split(',')
                    .map(|key| {
                        SCENARIOS
                            .iter()
                            .copied()
                            .find(|s| s.key() == key.trim())
                            .ok_or_else(|| {
                                let keys: Vec<&str> = SCENARIOS.iter().map(|s| s.key()).collect();
                                format!(
                                    "unknown scenario {key:?}: expected one of {}",
                                    keys.join(", ")
                                )
                            })
                    })
                    .collect::<Result<_, _>>()?
            }
            Short('h') | Long("help") => {
                let ids: Vec<&str> = Contender::all().into_iter().map(Contender::id).collect();
                let keys: Vec<&str> = SCENARIOS.iter().map(|s| s.key()).collect();
                println!("{USAGE}{}", ids.join(","));
                println!(
                    "  --scenarios KEY,... scenarios (default: all): {}",
                    keys.join(",")
                );
                return Ok(None);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    cfg.item = item;
    if let Some(reps) = reps {
        cfg.reps = reps.max(1);
    }
    if let Some(secs) = quiet_wait {
        cfg.quiet_wait = Duration::from_secs(secs);
    }
    if let Some(secs) = budget {
        cfg.budget = Duration::from_secs(secs);
    }
    if let Some(n) = producers {
        // For experiments (e.g. as many producers as cores); never published.
        let n = n.max(1);
        cfg.registration.0 = n;
        cfg.contention.0 = n;
        cfg.latency.0 = n;
        cfg.mixed.0 = n;
    }
    Ok(Some(Args {
        cfg,
        out,
        item,
        contenders,
        chosen,
    }))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Args {
        cfg,
        out,
        item,
        contenders,
        chosen,
    } = match parse_args() {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return,
        Err(e) => {
            eprintln!("core_scenarios: {e}\n(try --help)");
            std::process::exit(2)
        }
    };
    let item_name = if item == "u64" {
        <u64 as Job>::NAME
    } else {
        <Callback as Job>::NAME
    };

    let started = Instant::now();
    let whole_run = Background::start();
    let warm = cfg.warm_up();
    // Every repetition run after the warm-up: its figures and the load others
    // put on the machine meanwhile.
    let mut done: Vec<Repetition> = Vec::new();
    let mut rep = 0;
    loop {
        let kept = done.iter().filter(|r| r.quiet()).count();
        if rep > 0 && (kept >= cfg.reps || (cfg.budget.is_zero() && done.len() >= cfg.reps)) {
            break;
        }
        if rep > 0 && !cfg.budget.is_zero() && started.elapsed() >= cfg.budget {
            eprintln!(
                "          time budget spent with {kept} quiet repetitions of {}",
                cfg.reps
            );
            break;
        }
        let this = if rep == 0 { &warm } else { &cfg };
        let mut waited = 0.0;
        if !cfg.quiet_wait.is_zero() {
            let (w, load) = wait_for_quiet(QUIET_THRESHOLD_PCT, cfg.quiet_wait);
            waited = w.as_secs_f64();
            if waited >= 0.5 {
                eprintln!(
                    "          waited {waited:.1}s for a quieter machine (others at {:.0} %)",
                    load.unwrap_or(f64::NAN)
                );
            }
        }
        let rep_load = Background::start();
        let mut figures = HashMap::new();
        for &s in &chosen {
            let t = Instant::now();
            let n = contenders.len();
            for k in 0..n {
                let c = contenders[(k + rep) % n];
                figures.insert((s, c), run_one(s, c, this));
            }
            eprintln!(
                "[{:6.1}s] rep {rep}{} {:<12} {:.2}s",
                started.elapsed().as_secs_f64(),
                if rep == 0 { " (warm-up)" } else { "" },
                s.key(),
                t.elapsed().as_secs_f64()
            );
        }
        let load = rep_load.percent();
        if let Some(load) = load {
            eprintln!("          other processes used {load:.0} % of the CPUs");
        }
        if rep > 0 {
            done.push(Repetition {
                load,
                waited,
                figures,
            });
        }
        rep += 1;
    }
    // The published repetitions: the quiet ones if there are at least
    // MIN_KEPT of them, otherwise all (and the file says so).
    let quiet: Vec<&Repetition> = done.iter().filter(|r| r.quiet()).collect();
    let all_loaded = cfg.budget.is_zero() || quiet.len() < MIN_KEPT;
    let published: Vec<&Repetition> = if all_loaded {
        done.iter().collect()
    } else {
        quiet
    };
    let mut runs: HashMap<(Scenario, Contender), Vec<Metrics>> = HashMap::new();
    for r in &published {
        for (key, m) in &r.figures {
            runs.entry(*key).or_default().push(m.clone());
        }
    }

    let mut scenarios_json = Vec::new();
    for &s in &chosen {
        let mut results = Map::new();
        for &c in &contenders {
            let Some(ms) = runs.get(&(s, c)) else {
                continue;
            };
            let mut per_metric = Map::new();
            for (key, _, _, _) in s.metrics() {
                let values: Vec<f64> = ms.iter().filter_map(|m| m.get(key)).collect();
                if values.is_empty() {
                    continue;
                }
                let (lo, hi) = min_max(&values);
                per_metric.insert(
                    key.to_owned(),
                    json!({"median": median(&values), "min": lo, "max": hi, "reps": values}),
                );
            }
            results.insert(c.id().to_owned(), Value::Object(per_metric));
        }
        let metrics: Vec<Value> = s
            .metrics()
            .into_iter()
            .map(|(key, unit, better, what)| {
                json!({"key": key, "unit": unit, "better": better, "what": what})
            })
            .collect();
        scenarios_json.push(json!({
            "key": s.key(),
            "title": s.title(),
            "params": cfg.params(s),
            "metrics": metrics,
            "results": results,
        }));
    }
    let contenders_json: Vec<Value> = contenders
        .iter()
        .map(|c| json!({"id": c.id(), "label": c.label(), "kind": c.kind(), "turn": c.turn()}))
        .collect();
    let doc = json!({
        "schema": "pyloop-benchmarks/core/1",
        "command": format!("cargo run -p pyloop-benchmarks --release --bin core_scenarios -- {}",
            args.join(" ")),
        "machine": machine::record(cfg.mode),
        "config": {
            "mode": cfg.mode,
            "repetitions": published.len(),
            "repetitions_asked": cfg.reps,
            "warm_up_discarded": true,
            "order": "contenders rotated by one each repetition",
            "item": item_name,
            "batch_limit": pyloop_core::BATCH_LIMIT,
            "callback_work_ns_in_lock_hold": cfg.work_ns,
        },
        "elapsed_s": started.elapsed().as_secs_f64(),
        "background_load_pct": {
            "what": "CPU used by other processes, percent of all cores",
            "whole_run": whole_run.percent(),
            "per_repetition": done.iter().map(|r| r.load).collect::<Vec<_>>(),
            "published_per_repetition": published.iter().map(|r| r.load).collect::<Vec<_>>(),
            "quiet_wait_s_per_repetition": done.iter().map(|r| r.waited).collect::<Vec<_>>(),
            "quiet_threshold_pct": QUIET_THRESHOLD_PCT,
            "max_quiet_wait_s": cfg.quiet_wait.as_secs_f64(),
            "accept_pct": if cfg.budget.is_zero() { None } else { Some(ACCEPT_LOAD_PCT) },
            "repetitions_run": done.len(),
            "repetitions_published": published.len(),
            "policy": if cfg.budget.is_zero() {
                "every repetition published, whatever the load".to_owned()
            } else {
                format!(
                    "repetitions during which others used over {ACCEPT_LOAD_PCT} % of the CPUs \
                     are run again, up to a {} s budget; if fewer than {MIN_KEPT} quiet ones \
                     remain, all are published",
                    cfg.budget.as_secs()
                )
            },
            "loaded": all_loaded && !cfg.budget.is_zero(),
        },
        "contenders": contenders_json,
        "scenarios": scenarios_json,
    });
    let text = serde_json::to_string_pretty(&doc).expect("JSON") + "\n";
    match out {
        Some(path) => {
            if let Some(dir) = std::path::Path::new(&path).parent() {
                std::fs::create_dir_all(dir).expect("create the output directory");
            }
            std::fs::write(&path, text).expect("write the results");
            eprintln!("wrote {path} in {:.1}s", started.elapsed().as_secs_f64());
        }
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .expect("write to stdout"),
    }
}
