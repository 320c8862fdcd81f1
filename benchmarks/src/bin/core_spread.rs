//! The distribution of single runs, not their medians: registration and
//! contention (and the single-thread cost) on a few contenders, run one at a
//! time, many times, every run recorded.
//!
//! ```text
//! cargo run -p pyloop-benchmarks --release --bin core_spread -- --runs 30 --out target/spread.json
//! ```
//!
//! `core_scenarios` publishes, for each repetition, the median of several
//! runs, and then the median of the repetitions: right for a headline figure,
//! but a contender that is fast in one run and three times slower in the next
//! (a lock convoy) can hide in it. Here each round runs every scenario once on
//! every contender (a fresh queue and fresh threads each time), in an order
//! rotated by one each round, and keeps every figure. The summary gives the
//! minimum, the 10th, 50th and 90th percentiles and the maximum, the figure
//! of each contender divided by crossbeam's *in the same round*, and a
//! histogram on a log scale, where a second mode shows as a second hump.
//! Round 0 is a warm-up and is not kept.
//!
//! A contender may be named twice: the second is labelled `ID#2` and runs
//! as a separate contender. With `crossbeam` twice (the default), the second
//! one's ratio to the first is the *null* distribution: how far apart two
//! runs of the same thing fall on this machine, the yardstick for every other
//! ratio.
//!
//! Options: `--runs N` (rounds kept, default 20); `--only ID,...` (default
//! `3.2.1,3.3.1,crossbeam,crossbeam`; the ratios are to the first
//! `crossbeam`); `--item closure|u64` (default closure, the published item);
//! `--producers N` (default 10); `--quiet-wait SECS` (before each round, wait
//! at most this long for other processes to use under 25 % of the CPUs;
//! default 0); `--out FILE` (every figure, the machine and each round's
//! background load, as JSON; `benchmarks/spread_tables.py` makes the book's
//! table from it).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pyloop_benchmarks::scenarios;
use pyloop_benchmarks::{machine, with_contender, BenchQueue, Callback, Contender, Job};
use pyloop_measure::{wait_for_quiet, Background};
use serde_json::json;

/// What is measured, with the figure kept from each run.
const SCENARIOS: [(&str, &str); 5] = [
    ("registration", "pushes_per_s"),
    ("contention", "callbacks_per_s"),
    ("single", "total_ns"),
    ("single", "push_ns"),
    ("single", "drain_ns"),
];

/// Pushes per producer in registration and in contention (the summary's sizes).
const REGISTRATION_EACH: usize = 1_000;
const CONTENTION_EACH: usize = 5_000;
/// Callbacks in the single-thread scenario.
const SINGLE_N: usize = 50_000;

fn usage() -> ! {
    eprintln!(
        "usage: core_spread [--runs N] [--only ID,...] [--item closure|u64] \
         [--producers N] [--quiet-wait SECS] [--out FILE]"
    );
    std::process::exit(2)
}

/// One round's figures of contender `c`: (scenario, metric) -> value.
fn round<Q: BenchQueue<J>, J: Job>(producers: usize) -> Vec<((&'static str, &'static str), f64)> {
    let mut out = Vec::new();
    let m = scenarios::registration::<Q, J>(producers, REGISTRATION_EACH);
    out.push((SCENARIOS[0], m.get("pushes_per_s").expect("pushes_per_s")));
    let m = scenarios::contention::<Q, J>(producers, CONTENTION_EACH, 0);
    out.push((
        SCENARIOS[1],
        m.get("callbacks_per_s").expect("callbacks_per_s"),
    ));
    let m = scenarios::single::<Q, J>(SINGLE_N, 1);
    for key in SCENARIOS[2..].iter() {
        out.push((*key, m.get(key.1).expect("single figures")));
    }
    out
}

/// The `q`-quantile of sorted `v` by nearest rank.
fn quantile(v: &[f64], q: f64) -> f64 {
    let rank = (q * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

/// A one-line histogram of `v` over 16 log-spaced bins from `lo` to `hi`.
fn histogram(v: &[f64], lo: f64, hi: f64) -> String {
    const BINS: usize = 16;
    let mut counts = [0usize; BINS];
    let span = (hi / lo).ln().max(1e-9);
    for &x in v {
        let i = (((x / lo).ln() / span) * BINS as f64) as usize;
        counts[i.min(BINS - 1)] += 1;
    }
    counts
        .iter()
        .map(|&n| match n {
            0 => '.',
            1..=9 => char::from(b'0' + n as u8),
            _ => '#',
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut runs = 20usize;
    let mut producers = 10usize;
    let mut item = "closure";
    let mut quiet_wait = Duration::ZERO;
    let mut out: Option<String> = None;
    let mut contenders: Vec<Contender> = ["3.2.1", "3.3.1", "crossbeam", "crossbeam"]
        .iter()
        .map(|s| s.parse().expect("known contenders"))
        .collect();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--runs" => runs = value().parse().unwrap_or_else(|_| usage()),
            "--producers" => producers = value().parse().unwrap_or_else(|_| usage()),
            "--item" => {
                item = match value().as_str() {
                    "closure" => "closure",
                    "u64" => "u64",
                    _ => usage(),
                }
            }
            "--quiet-wait" => {
                quiet_wait = Duration::from_secs(value().parse().unwrap_or_else(|_| usage()))
            }
            "--out" => out = Some(value()),
            "--only" => {
                contenders = value()
                    .split(',')
                    .map(|s| s.parse().unwrap_or_else(|e| panic!("{e}")))
                    .collect()
            }
            _ => usage(),
        }
    }

    let started = Instant::now();
    let whole = Background::start();
    // A label per slot of `--only`: the id, with `#2`, `#3` … on repeats.
    let labels: Vec<String> = contenders
        .iter()
        .enumerate()
        .map(
            |(i, c)| match contenders[..i].iter().filter(|&&d| d == *c).count() {
                0 => c.id().to_owned(),
                n => format!("{}#{}", c.id(), n + 1),
            },
        )
        .collect();
    // (scenario, metric, slot) -> one value per kept round.
    let mut values: HashMap<(&str, &str, usize), Vec<f64>> = HashMap::new();
    let mut loads = Vec::new();
    for r in 0..=runs {
        if !quiet_wait.is_zero() {
            wait_for_quiet(25.0, quiet_wait);
        }
        let load = Background::start();
        let n = contenders.len();
        for k in 0..n {
            let slot = (k + r) % n;
            let c = contenders[slot];
            let figures = match item {
                "u64" => with_contender!(c, Q => round::<Q<u64>, u64>(producers)),
                _ => with_contender!(c, Q => round::<Q<Callback>, Callback>(producers)),
            };
            if r > 0 {
                for ((scenario, metric), v) in figures {
                    values.entry((scenario, metric, slot)).or_default().push(v);
                }
            }
        }
        let load = load.percent();
        if r > 0 {
            loads.push(load);
        }
        eprintln!(
            "[{:6.1}s] round {r}{} (others used {:.0} % of the CPUs)",
            started.elapsed().as_secs_f64(),
            if r == 0 { " (warm-up)" } else { "" },
            load.unwrap_or(f64::NAN)
        );
    }

    let base = contenders.iter().position(|&c| c == Contender::Crossbeam);
    let mut summary = Vec::new();
    for (scenario, metric) in SCENARIOS {
        let all: Vec<f64> = (0..contenders.len())
            .flat_map(|slot| values[&(scenario, metric, slot)].iter().copied())
            .collect();
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = all.iter().copied().fold(0.0, f64::max);
        println!(
            "\n{scenario} {metric} ({runs} runs each; histogram: 16 log bins {lo:.4e} .. {hi:.4e})"
        );
        for (slot, label) in labels.iter().enumerate() {
            let v = &values[&(scenario, metric, slot)];
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            let q = |p| quantile(&sorted, p);
            let ratio: Option<Vec<f64>> = base.filter(|&b| b != slot).map(|b| {
                // Higher is better for rates, lower for times: a ratio above 1
                // always means better than crossbeam in the same round.
                v.iter()
                    .zip(&values[&(scenario, metric, b)])
                    .map(|(x, b)| {
                        if metric.ends_with("_ns") {
                            b / x
                        } else {
                            x / b
                        }
                    })
                    .collect()
            });
            let ratio_text = match &ratio {
                Some(r) => {
                    let mut s = r.clone();
                    s.sort_by(f64::total_cmp);
                    let wins = r.iter().filter(|&&x| x >= 1.0).count();
                    format!(
                        " | ×crossbeam min {:.2} med {:.2} max {:.2}, ≥1 in {wins}/{}",
                        s[0],
                        quantile(&s, 0.5),
                        s[s.len() - 1],
                        s.len()
                    )
                }
                None => String::new(),
            };
            println!(
                "  {:<12} min {:>9.3e} p10 {:>9.3e} med {:>9.3e} p90 {:>9.3e} max {:>9.3e}  {}{ratio_text}",
                label,
                q(0.0),
                q(0.1),
                q(0.5),
                q(0.9),
                q(1.0),
                histogram(v, lo, hi),
            );
            summary.push(json!({
                "scenario": scenario, "metric": metric, "contender": label,
                "values": v, "ratio_to_crossbeam_same_round": ratio,
            }));
        }
    }
    let doc = json!({
        "schema": "pyloop-benchmarks/spread/1",
        "command": format!("cargo run -p pyloop-benchmarks --release --bin core_spread -- {}", args.join(" ")),
        "machine": machine::record("spread"),
        "config": {
            "rounds_kept": runs, "warm_up_discarded": true, "item": item,
            "producers": producers, "registration_per_producer": REGISTRATION_EACH,
            "contention_per_producer": CONTENTION_EACH, "single_callbacks": SINGLE_N,
            "order": "contenders rotated by one each round",
        },
        "elapsed_s": started.elapsed().as_secs_f64(),
        "contenders": labels,
        "background_load_pct": {"whole_run": whole.percent(), "per_round": loads},
        "figures": summary,
    });
    if let Some(path) = out {
        if let Some(dir) = std::path::Path::new(&path).parent() {
            std::fs::create_dir_all(dir).expect("create the output directory");
        }
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&doc).expect("JSON") + "\n",
        )
        .expect("write the results");
        eprintln!("wrote {path}");
    }
}
