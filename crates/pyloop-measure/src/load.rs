//! How busy the machine was with work other than ours: on a shared machine
//! this tells whether other jobs competed with a run.

use std::time::{Duration, Instant};

use crate::procfs;

/// Measures how busy the machine was with work other than this process, as
/// a percentage of all its cores, between [`Background::start`] and
/// [`Background::percent`]. Resolution: the kernel's clock tick (10 ms).
#[derive(Clone, Copy, Debug)]
pub struct Background {
    /// Machine busy ticks and this process's ticks at the start.
    ticks: Option<(u64, u64)>,
    wall: Instant,
}

fn ticks() -> Option<(u64, u64)> {
    Some((procfs::machine_busy_ticks()?, procfs::own_ticks()?))
}

impl Background {
    /// Starts measuring.
    pub fn start() -> Self {
        Background {
            ticks: ticks(),
            wall: Instant::now(),
        }
    }

    /// Other processes' CPU use since [`start`](Self::start), in percent of
    /// all cores; `None` where `/proc` is not there.
    pub fn percent(&self) -> Option<f64> {
        let (busy0, own0) = self.ticks?;
        let (busy1, own1) = ticks()?;
        let cpus = procfs::logical_cpus().max(1) as f64;
        let wall_ticks = self.wall.elapsed().as_secs_f64() * procfs::TICKS_PER_SECOND * cpus;
        let others = busy1.saturating_sub(busy0) as f64 - own1.saturating_sub(own0) as f64;
        Some((100.0 * others.max(0.0) / wall_ticks).clamp(0.0, 100.0))
    }
}

/// Waits, at most `max_wait`, until other processes have used less than
/// `threshold` percent of the CPUs over a quarter of a second; returns how long
/// it waited and the last load seen. Measuring while someone else's build runs
/// on a 2-core machine measures the scheduler, not the queues.
pub fn wait_for_quiet(threshold: f64, max_wait: Duration) -> (Duration, Option<f64>) {
    let start = Instant::now();
    loop {
        let probe = Background::start();
        std::thread::sleep(Duration::from_millis(250));
        let load = probe.percent();
        match load {
            Some(l) if l >= threshold && start.elapsed() < max_wait => continue,
            _ => return (start.elapsed(), load),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_load_is_a_percentage() {
        let b = Background::start();
        std::thread::sleep(Duration::from_millis(30));
        let p = b.percent().expect("/proc is there on Linux");
        assert!((0.0..=100.0).contains(&p), "{p}");
    }

    #[test]
    fn waiting_is_bounded() {
        // A threshold no machine is under: it waits its whole budget, no longer than a probe more.
        let (waited, load) = wait_for_quiet(-1.0, Duration::from_millis(300));
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        assert!(load.is_some());
    }
}
