//! Writes the Amdahl chapter's generated files (see `pyloop_model::book`) from
//! the committed results:
//!
//! ```text
//! cargo run -p pyloop-model --bin amdahl_book -- --out book/src/generated
//! ```
//!
//! Options: `--out DIR` (default `book/src/generated`), `--sweep FILE`
//! (default `crates/pyloop-model/results/sweep.json`), `--python FILE`
//! (default `benchmarks/results/python.json`, used if it exists).

use std::path::PathBuf;

use pyloop_model::machine::workspace_root;
use pyloop_model::run::{committed_python, committed_sweep};

const USAGE: &str = "\
usage: amdahl_book [--out DIR] [--sweep FILE] [--python FILE]

Writes the Amdahl chapter's generated files from the committed results.

  --out DIR        default: book/src/generated
  --sweep FILE     default: crates/pyloop-model/results/sweep.json
  --python FILE    default: benchmarks/results/python.json (used if it exists)";

/// `(out, sweep, python)` as the command line asks; `None` for `--help`.
fn parse_args() -> Result<Option<(PathBuf, PathBuf, PathBuf)>, lexopt::Error> {
    use lexopt::prelude::*;

    let mut out = workspace_root().join("book/src/generated");
    let mut sweep = committed_sweep();
    let mut python = committed_python();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("out") => out = parser.value()?.into(),
            Long("sweep") => sweep = parser.value()?.into(),
            Long("python") => python = parser.value()?.into(),
            Short('h') | Long("help") => {
                println!("{USAGE}");
                return Ok(None);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(Some((out, sweep, python)))
}

fn main() {
    let (out, sweep, python) = match parse_args() {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return,
        Err(e) => {
            eprintln!("amdahl_book: {e}\n(try --help)");
            std::process::exit(2)
        }
    };
    let root = workspace_root();
    match pyloop_model::book::write(&root, &sweep, Some(&python), &out) {
        Ok(files) => {
            for f in files {
                eprintln!("wrote {}", f.display());
            }
        }
        Err(e) => {
            eprintln!("amdahl_book: {e}");
            std::process::exit(1)
        }
    }
}
