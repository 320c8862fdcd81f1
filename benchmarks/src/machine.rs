//! The record of where and from what a result was measured: machine (without
//! its host name), toolchain, peer versions, commit, date.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benchmarks/ sits in the workspace")
        .to_path_buf()
}

/// Paths whose changes would change what is measured: `git_dirty_measured`
/// says whether any of them differs from the commit.
pub const MEASURED_PATHS: [&str; 6] = [
    "Cargo.toml",
    "Cargo.lock",
    "crates/pyloop-core/src",
    "benchmarks/Cargo.toml",
    "benchmarks/src",
    "benchmarks/benches",
];

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The first `model name` of `/proc/cpuinfo`, and the number of `processor` entries.
pub fn cpu() -> (Option<String>, usize) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned());
    let count = info.lines().filter(|l| l.starts_with("processor")).count();
    (model, count)
}

/// The version of package `name` locked in the workspace's `Cargo.lock`.
pub fn locked_version(name: &str) -> Option<String> {
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock")).ok()?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"") {
            let version = lines.next()?.trim();
            return version
                .strip_prefix("version = \"")
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_owned);
        }
    }
    None
}

/// `days` since 1970-01-01 as (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Now, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// CPU time, in clock ticks, spent so far by the whole machine (busy: user,
/// nice, system, irq, softirq, steal, from `/proc/stat`) and by this process
/// (user and system, from `/proc/self/stat`).
pub fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| fields.get(i))
        .sum();
    let own = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest: Vec<&str> = own.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((busy, utime + stime))
}

/// Measures how busy the machine was with work other than this process, as
/// a percentage of all its cores, between [`Background::start`] and
/// [`Background::percent`]. On a shared machine this tells whether other jobs
/// competed with a run. Resolution: the kernel's clock tick (10 ms).
#[derive(Clone, Copy, Debug)]
pub struct Background {
    ticks: Option<(u64, u64)>,
    wall: std::time::Instant,
}

impl Background {
    /// Starts measuring.
    pub fn start() -> Self {
        Background {
            ticks: cpu_ticks(),
            wall: std::time::Instant::now(),
        }
    }

    /// Other processes' CPU use since [`start`](Self::start), in percent of
    /// all cores; `None` where `/proc` is not there.
    pub fn percent(&self) -> Option<f64> {
        let (busy0, own0) = self.ticks?;
        let (busy1, own1) = cpu_ticks()?;
        let cpus = cpu().1.max(1) as f64;
        let wall_ticks = self.wall.elapsed().as_secs_f64() * 100.0 * cpus;
        let others = busy1.saturating_sub(busy0) as f64 - own1.saturating_sub(own0) as f64;
        Some((100.0 * others.max(0.0) / wall_ticks).clamp(0.0, 100.0))
    }
}

/// Waits, at most `max_wait`, until other processes have used less than
/// `threshold` percent of the CPUs over a quarter of a second; returns how long
/// it waited and the last load seen. Measuring while someone else's build runs
/// on a 2-core machine measures the scheduler, not the queues.
pub fn wait_for_quiet(
    threshold: f64,
    max_wait: std::time::Duration,
) -> (std::time::Duration, Option<f64>) {
    let start = std::time::Instant::now();
    loop {
        let probe = Background::start();
        std::thread::sleep(std::time::Duration::from_millis(250));
        let load = probe.percent();
        match load {
            Some(l) if l >= threshold && start.elapsed() < max_wait => continue,
            _ => return (start.elapsed(), load),
        }
    }
}

/// The machine record, as a JSON object. `mode` is `"quick"` or `"full"`.
pub fn record(mode: &str) -> Value {
    let (model, cpus) = cpu();
    let porcelain = |paths: &[&str]| {
        let mut args = vec!["status", "--porcelain", "--"];
        args.extend_from_slice(paths);
        run("git", &args).map(|s| !s.is_empty())
    };
    json!({
        "cpu_model": model,
        "logical_cpus": cpus,
        "available_parallelism": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "os": format!("{} {}", std::env::consts::OS,
            std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim()),
        "arch": std::env::consts::ARCH,
        "rustc": run("rustc", &["-V"]),
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "crossbeam_channel": locked_version("crossbeam-channel"),
        "git_commit": run("git", &["rev-parse", "HEAD"]),
        "git_dirty": porcelain(&["."]),
        "git_dirty_measured": porcelain(&MEASURED_PATHS),
        "date_utc": utc_now(),
        "mode": mode,
        "note": "a shared machine: figures are medians over repetitions; compare contenders \
                 within one run, not absolute times across runs",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(utc_now().len(), 20);
    }

    #[test]
    fn background_load_is_a_percentage() {
        let b = Background::start();
        std::thread::sleep(std::time::Duration::from_millis(30));
        if let Some(p) = b.percent() {
            assert!((0.0..=100.0).contains(&p));
        }
    }
}
