//! Running the measurements from a notebook: each function runs one of the
//! project's benchmark commands in the workspace, waits for it, and returns
//! where it wrote its results. Their progress lines go to the notebook as
//! they come (the children inherit stderr); a failure is an error with the
//! command and its exit status.
//!
//! The paths the notebooks use by default are under `target/notebooks/`
//! (ignored by git), so that executing a notebook never rewrites a
//! committed file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::machine::workspace_root;

/// Where a quick run from a notebook writes `name` by default: `target/notebooks/<name>`.
pub fn scratch(name: &str) -> PathBuf {
    workspace_root().join("target").join("notebooks").join(name)
}

/// The committed Rust-level benchmark results.
pub fn committed_core() -> PathBuf {
    workspace_root().join("benchmarks/results/core.json")
}

/// The committed Python-level benchmark results.
pub fn committed_python() -> PathBuf {
    workspace_root().join("benchmarks/results/python.json")
}

/// The committed producer sweep of this crate.
pub fn committed_sweep() -> PathBuf {
    workspace_root().join("crates/pyloop-model/results/sweep.json")
}

/// The Python interpreter of the project's `.venv` if there is one, else `python3`.
pub fn python() -> PathBuf {
    let venv = workspace_root().join(".venv/bin/python");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Runs `cmd` in the workspace root; an error if it cannot start or exits non-zero.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let started = Instant::now();
    eprintln!("running {shown}");
    let status = cmd
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cannot start {shown}: {e}"))?;
    if !status.success() {
        return Err(format!("{shown} failed: {status}"));
    }
    eprintln!("done in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn out_arg(out: &Path) -> String {
    out.to_string_lossy().into_owned()
}

/// The Rust-level core benchmarks in quick mode:
/// `cargo run -p pyloop-benchmarks --release --bin core_scenarios -- --quick --out OUT`.
pub fn core_benchmarks_quick(out: impl AsRef<Path>) -> Result<PathBuf, String> {
    let out = out.as_ref();
    run(Command::new("cargo").args([
        "run",
        "-p",
        "pyloop-benchmarks",
        "--release",
        "--bin",
        "core_scenarios",
        "--",
        "--quick",
        "--out",
        &out_arg(out),
    ]))?;
    Ok(out.to_owned())
}

/// This crate's producer sweep (`--quick` or `--full`):
/// `cargo run -p pyloop-model --release --bin producer_sweep -- --quick --out OUT`.
pub fn producer_sweep(quick: bool, out: impl AsRef<Path>) -> Result<PathBuf, String> {
    let out = out.as_ref();
    run(Command::new("cargo").args([
        "run",
        "-p",
        "pyloop-model",
        "--release",
        "--bin",
        "producer_sweep",
        "--",
        if quick { "--quick" } else { "--full" },
        "--out",
        &out_arg(out),
    ]))?;
    Ok(out.to_owned())
}

/// The Python benchmarks in quick mode, every loop (asyncio, uvloop, rloop,
/// every phase): `python benchmarks/pyloop/run.py --quick --out OUT`, or only
/// the named `scenarios` (comma-separated keys; `"scaling"` for the sweep).
/// Needs the extension built into `.venv` (`maturin develop --release`).
pub fn python_benchmarks_quick(
    scenarios: Option<&str>,
    out: impl AsRef<Path>,
) -> Result<PathBuf, String> {
    let out = out.as_ref();
    let mut cmd = Command::new(python());
    cmd.args([
        "benchmarks/pyloop/run.py",
        "--quick",
        "--out",
        &out_arg(out),
    ]);
    if let Some(s) = scenarios {
        cmd.args(["--scenarios", s]);
    }
    run(&mut cmd)?;
    Ok(out.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_in_the_workspace() {
        assert!(scratch("x.json").starts_with(workspace_root().join("target")));
        assert!(committed_core().ends_with("benchmarks/results/core.json"));
        assert!(committed_sweep()
            .parent()
            .unwrap()
            .ends_with("crates/pyloop-model/results"));
    }

    #[test]
    fn a_failing_command_is_an_error() {
        let err = run(&mut Command::new("false")).unwrap_err();
        assert!(err.contains("failed"), "{err}");
        assert!(run(&mut Command::new("/nonexistent/command")).is_err());
    }
}
