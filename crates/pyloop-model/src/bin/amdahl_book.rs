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

fn main() {
    let root = workspace_root();
    let mut out = root.join("book/src/generated");
    let mut sweep = committed_sweep();
    let mut python = committed_python();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().map(PathBuf::from).unwrap_or_else(|| {
            eprintln!("usage: amdahl_book [--out DIR] [--sweep FILE] [--python FILE]");
            std::process::exit(2)
        });
        match arg.as_str() {
            "--out" => out = value,
            "--sweep" => sweep = value,
            "--python" => python = value,
            _ => {
                eprintln!("amdahl_book: unknown option {arg}");
                std::process::exit(2)
            }
        }
    }
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
