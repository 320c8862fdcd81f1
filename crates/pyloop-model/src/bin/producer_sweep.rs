//! Runs the Rust-level producer sweep (see `pyloop_model::sweep`) and writes
//! its JSON.
//!
//! ```text
//! cargo run -p pyloop-model --release --bin producer_sweep -- --quick --out target/notebooks/sweep.json
//! cargo run -p pyloop-model --release --bin producer_sweep -- --full --out crates/pyloop-model/results/sweep.json
//! ```
//!
//! Options: `--quick` (3 repetitions of 16,000 callbacks, a few seconds) or
//! `--full` (9 of 48,000, the committed run: a repetition during which other
//! processes used more than 35 % of the CPUs is run again, for up to five
//! minutes, after which the least disturbed are kept and the results say so);
//! `--out FILE` (default: stdout); `--reps N`; `--produce-ns N`,
//! `--callback-ns N` (the work per item).

use std::io::Write;

use pyloop_model::sweep::{run_sweep, SweepConfig};

fn usage() -> ! {
    eprintln!(
        "usage: producer_sweep (--quick | --full) [--out FILE] [--reps N] [--produce-ns N] [--callback-ns N]"
    );
    std::process::exit(2)
}

fn main() {
    let mut cfg: Option<SweepConfig> = None;
    let mut out: Option<String> = None;
    let mut overrides: Vec<(String, u64)> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = || {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| usage())
        };
        match arg.as_str() {
            "--quick" => cfg = Some(SweepConfig::quick()),
            "--full" => cfg = Some(SweepConfig::full()),
            "--out" => out = Some(args.next().unwrap_or_else(|| usage())),
            "--reps" | "--produce-ns" | "--callback-ns" => {
                let n = number();
                overrides.push((arg, n));
            }
            _ => usage(),
        }
    }
    let mut cfg = cfg.unwrap_or_else(|| usage());
    for (k, v) in overrides {
        match k.as_str() {
            "--reps" => cfg.reps = (v as usize).max(1),
            "--produce-ns" => cfg.produce_ns = v,
            _ => cfg.callback_ns = v,
        }
    }
    let doc = run_sweep(&cfg, |line| eprintln!("[producer_sweep] {line}"));
    let text = serde_json::to_string_pretty(&doc).expect("JSON") + "\n";
    match out {
        Some(path) => {
            if let Some(dir) = std::path::Path::new(&path).parent() {
                std::fs::create_dir_all(dir).expect("create the output directory");
            }
            std::fs::write(&path, text).expect("write the results");
            eprintln!("[producer_sweep] wrote {path}");
        }
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .expect("write to stdout"),
    }
}
