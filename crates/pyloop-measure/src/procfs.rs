//! The one reader of Linux's `/proc` on the Rust side. Each function returns
//! `None` (or an empty value) where the file is missing or unreadable, so that
//! a record says "unknown" rather than fail a run.

use std::fs;

/// The first `model name` of `/proc/cpuinfo`.
pub fn cpu_model() -> Option<String> {
    let info = fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

/// The number of `processor` entries of `/proc/cpuinfo`: the machine's
/// logical CPUs (0 if unreadable).
pub fn logical_cpus() -> usize {
    fs::read_to_string("/proc/cpuinfo")
        .map(|info| info.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0)
}

/// The kernel release, from `/proc/sys/kernel/osrelease`.
pub fn kernel_release() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|r| r.trim().to_owned())
}

/// Clock ticks the whole machine has spent busy since boot: user, nice,
/// system, irq, softirq and steal of the first line of `/proc/stat` (idle and
/// iowait left out; guest time is already inside user and nice).
pub fn machine_busy_ticks() -> Option<u64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    Some(
        [0, 1, 2, 5, 6, 7]
            .iter()
            .filter_map(|&i| fields.get(i))
            .sum(),
    )
}

/// Clock ticks this process has run (user + system), from `/proc/self/stat`.
pub fn own_ticks() -> Option<u64> {
    let own = fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest: Vec<&str> = own.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second of the two counters above: the kernel's `USER_HZ`,
/// 100 on every Linux architecture this project builds for.
pub const TICKS_PER_SECOND: f64 = 100.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_machine() {
        // The crate builds only where /proc is there (Linux).
        assert!(logical_cpus() >= 1);
        assert!(kernel_release().is_some_and(|r| !r.is_empty()));
        let before = own_ticks().expect("/proc/self/stat");
        let busy = machine_busy_ticks().expect("/proc/stat");
        // Burn a little CPU: both counters can only grow.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i ^ (x >> 3));
        }
        std::hint::black_box(x);
        assert!(own_ticks().unwrap() >= before);
        assert!(machine_busy_ticks().unwrap() >= busy);
    }
}
