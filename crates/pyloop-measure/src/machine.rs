//! The record of where and from what a result was measured: machine (without
//! its host name), toolchain, commit, date. Each program adds its own fields
//! (a peer's version, a note) to the object returned by [`record`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use crate::procfs;

/// The workspace root: two levels above this crate's manifest.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/pyloop-measure sits two levels below the workspace root")
        .to_path_buf()
}

/// The trimmed standard output of `cmd args...` run in the workspace root, if
/// it ran and succeeded.
pub fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether any of `paths` (relative to the workspace root) differs from the
/// commit, untracked files included; `None` without git.
pub fn git_dirty(paths: &[&str]) -> Option<bool> {
    let mut args = vec!["status", "--porcelain", "--"];
    args.extend_from_slice(paths);
    output("git", &args).map(|s| !s.is_empty())
}

/// The version of package `name` locked in the workspace's `Cargo.lock`.
pub fn locked_version(name: &str) -> Option<String> {
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock")).ok()?;
    let mut lines = lock.lines();
    let wanted = format!("name = \"{name}\"");
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            return lines
                .next()?
                .trim()
                .strip_prefix("version = \"")
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_owned);
        }
    }
    None
}

/// Now, in RFC 3339 to the second: `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// The machine record: CPU model, logical CPUs, available parallelism, OS and
/// kernel, architecture, `rustc -V`, build profile, `git rev-parse HEAD`,
/// whether any of `measured_paths` differs from it (`git_dirty_measured`),
/// the date, and `mode` (`"quick"`, `"full"`, ...).
pub fn record(mode: &str, measured_paths: &[&str]) -> Map<String, Value> {
    let os = match procfs::kernel_release() {
        Some(release) => format!("{} {release}", std::env::consts::OS),
        None => std::env::consts::OS.to_owned(),
    };
    let record = json!({
        "cpu_model": procfs::cpu_model(),
        "logical_cpus": procfs::logical_cpus(),
        "available_parallelism": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "os": os,
        "arch": std::env::consts::ARCH,
        "rustc": output("rustc", &["-V"]),
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "git_commit": output("git", &["rev-parse", "HEAD"]),
        "git_dirty_measured": git_dirty(measured_paths),
        "date_utc": utc_now(),
        "mode": mode,
    });
    match record {
        Value::Object(map) => map,
        _ => unreachable!("json! of an object literal is an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_workspace() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("crates/pyloop-core").is_dir());
    }

    #[test]
    fn dates_are_rfc3339_seconds() {
        let now = utc_now();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
        assert!(humantime::parse_rfc3339(&now).is_ok(), "{now}");
    }

    #[test]
    fn reads_the_lock_file() {
        assert_eq!(
            locked_version("serde_json").map(|v| v.starts_with("1.")),
            Some(true)
        );
        assert_eq!(locked_version("no-such-crate"), None);
    }

    #[test]
    fn the_record_has_what_results_files_carry() {
        let r = record("quick", &["crates/pyloop-measure/src"]);
        for key in [
            "cpu_model",
            "logical_cpus",
            "available_parallelism",
            "os",
            "arch",
            "rustc",
            "profile",
            "git_commit",
            "git_dirty_measured",
            "date_utc",
            "mode",
        ] {
            assert!(r.contains_key(key), "{key}");
        }
        assert_eq!(r["mode"], "quick");
    }
}
