//! Runs the Rust-level producer sweep (see `pyloop_model::sweep`) and writes
//! its JSON.
//!
//! ```text
//! cargo run -p pyloop-model --release --bin producer_sweep -- --quick --out target/notebooks/sweep.json
//! cargo run -p pyloop-model --release --bin producer_sweep -- --full --out crates/pyloop-model/results/sweep.json
//! ```
//!
//! Options (`--help` lists them): `--quick` (the default: 3 repetitions of
//! 16,000 callbacks, a few seconds) or `--full` (9 of 48,000, the committed
//! run: a repetition during which other processes used more than 35 % of the
//! CPUs is run again, for up to five minutes, after which the least disturbed
//! are kept and the results say so); `--out FILE` (default: standard output,
//! so that the committed sweep is only written when named); `--reps N`;
//! `--produce-ns N`, `--callback-ns N` (the work per item).

use std::io::Write;

use pyloop_model::sweep::{run_sweep, SweepConfig};

const USAGE: &str = "\
usage: producer_sweep [--quick | --full] [--out FILE] [--reps N] [--produce-ns N] [--callback-ns N]

Runs the Rust-level producer sweep (1-16 producers on every phase) and writes its JSON.

  --quick            3 repetitions of 16,000 callbacks (the default)
  --full             9 repetitions of 48,000: the committed run
  --out FILE         write the JSON here (default: standard output); the committed sweep
                     is crates/pyloop-model/results/sweep.json, written only when named
  --reps N           repetitions
  --produce-ns N     each producer's own work per item, ns
  --callback-ns N    each callback's work, ns";

/// The value of option `name`, a whole number.
fn number(parser: &mut lexopt::Parser, name: &str) -> Result<u64, lexopt::Error> {
    use lexopt::ValueExt;
    let value = parser.value()?.string()?;
    value
        .parse()
        .map_err(|_| format!("{name}: {value:?} is not a whole number").into())
}

/// The configuration and output the command line asks for; `None` for `--help`.
fn parse_args() -> Result<Option<(SweepConfig, Option<String>)>, lexopt::Error> {
    use lexopt::prelude::*;

    let mut parser = lexopt::Parser::from_env();
    let mut cfg = SweepConfig::quick();
    let mut out = None;
    let (mut reps, mut produce_ns, mut callback_ns) = (None, None, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("quick") => cfg = SweepConfig::quick(),
            Long("full") => cfg = SweepConfig::full(),
            Long("out") => out = Some(parser.value()?.string()?),
            Long("reps") => reps = Some(number(&mut parser, "--reps")?),
            Long("produce-ns") => produce_ns = Some(number(&mut parser, "--produce-ns")?),
            Long("callback-ns") => callback_ns = Some(number(&mut parser, "--callback-ns")?),
            Short('h') | Long("help") => {
                println!("{USAGE}");
                return Ok(None);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    if let Some(n) = reps {
        cfg.reps = (n as usize).max(1);
    }
    if let Some(ns) = produce_ns {
        cfg.produce_ns = ns;
    }
    if let Some(ns) = callback_ns {
        cfg.callback_ns = ns;
    }
    Ok(Some((cfg, out)))
}

fn main() {
    let (cfg, out) = match parse_args() {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return,
        Err(e) => {
            eprintln!("producer_sweep: {e}\n(try --help)");
            std::process::exit(2)
        }
    };
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
