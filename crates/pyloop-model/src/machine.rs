//! Where this crate's own measurements ran: the record written beside every
//! sweep (CPU, cores, OS, rustc, commit, date; no host name), and the
//! workspace's location.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// The workspace root: two levels above this crate's manifest.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/pyloop-model sits two levels below the workspace root")
        .to_path_buf()
}

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a count of seconds since the Unix epoch
/// (proleptic Gregorian calendar, UTC).
pub fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The machine record: CPU model, logical CPUs, OS, `rustc -V`, build
/// profile, `git rev-parse HEAD`, whether the measured sources differ from
/// it, the date, and `mode`.
pub fn record(mode: &str) -> Value {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = info
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned());
    let logical = info.lines().filter(|l| l.starts_with("processor")).count();
    let os = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| format!("{} {}", std::env::consts::OS, r.trim()))
        .unwrap_or_else(|_| std::env::consts::OS.to_owned());
    let dirty = output(
        "git",
        &[
            "status",
            "--porcelain",
            "--",
            "Cargo.toml",
            "Cargo.lock",
            "crates/pyloop-core/src",
            "crates/pyloop-model/src",
        ],
    )
    .map(|s| !s.is_empty());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    json!({
        "cpu_model": cpu_model,
        "logical_cpus": logical,
        "available_parallelism": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "os": os,
        "arch": std::env::consts::ARCH,
        "rustc": output("rustc", &["-V"]),
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "git_commit": output("git", &["rev-parse", "HEAD"]),
        "git_dirty_measured": dirty,
        "date_utc": utc_timestamp(now),
        "mode": mode,
    })
}

/// Measures how much CPU *other* processes used while it was alive: a shared
/// machine's background load, recorded beside every sweep. The benchmarks'
/// sampler, shared.
pub use pyloop_benchmarks::machine::Background;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn background_load_is_a_percentage() {
        let b = Background::start();
        std::thread::sleep(std::time::Duration::from_millis(30));
        if let Some(p) = b.percent() {
            assert!((0.0..=100.0).contains(&p), "{p}");
        }
    }

    #[test]
    fn finds_the_workspace() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("crates/pyloop-core").is_dir());
    }
}
