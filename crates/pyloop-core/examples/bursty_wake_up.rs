//! The case phase 3.1.2 was built for: work that arrives after short gaps.
//!
//! ```text
//! cargo run -p pyloop-core --release --example bursty_wake_up
//! cargo run -p pyloop-core --release --example bursty_wake_up -- 3.1.1,3.1.2,3.1.3 400
//! ```
//!
//! A consumer thread runs the phase's loop turn (`wait`, then `run_batch`). A
//! producer waits a gap after the previous callback has run, pushes one
//! callback, and measures the time until it runs. Gaps of 20 µs to 2 ms: below
//! the back-off's ramp (about 1.3 ms of spins, yields and growing sleeps) 3.1.2
//! should look at the queue sooner than 3.1.1's fixed 1 ms nap; above it, both
//! nap a whole millisecond; 3.1.3 and later are woken by the push. The producer
//! times its gaps by spinning, so on a machine with one free core the spin
//! competes with a spinning consumer: run it on an otherwise idle machine.
//!
//! Prints a Markdown table of the median and 99th percentile per phase and gap.
//! This is an exercise, not a benchmark the book publishes: its figures move
//! with the machine, its load and its kernel's timer slack.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use pyloop_core::{with_phase_queue, Phase, ReadyQueue};

/// Gaps between one callback running and the next push.
const GAPS_US: [u64; 5] = [20, 100, 300, 1000, 2000];

type Item = Box<dyn FnOnce() + Send>;

/// Push-to-run latencies in nanoseconds, `samples` per gap, for queue `Q`.
fn measure<Q: ReadyQueue<Item>>(samples: usize) -> Vec<Vec<u64>> {
    let queue = Arc::new(Q::new());
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (queue, stop) = (Arc::clone(&queue), Arc::clone(&stop));
        thread::spawn(move || {
            let mut state = queue.consumer();
            while !stop.load(Ordering::Acquire) {
                queue.wait(&mut state, Some(Duration::from_millis(20)));
                queue.run_batch(&mut state, |item| item());
            }
        })
    };
    let epoch = Instant::now();
    let mut out = Vec::new();
    for gap in GAPS_US {
        let gap = Duration::from_micros(gap);
        let mut lat = Vec::with_capacity(samples);
        for _ in 0..samples {
            let spin_until = Instant::now() + gap;
            while Instant::now() < spin_until {
                std::hint::spin_loop();
            }
            let ran_at = Arc::new(AtomicU64::new(0));
            let pushed = epoch.elapsed().as_nanos() as u64;
            let done = Arc::clone(&ran_at);
            let item: Item = Box::new(move || {
                done.store(epoch.elapsed().as_nanos() as u64, Ordering::Release);
            });
            if queue.push(item).is_err() {
                panic!("the queue closed");
            }
            while ran_at.load(Ordering::Acquire) == 0 {
                std::hint::spin_loop();
            }
            lat.push(ran_at.load(Ordering::Acquire).saturating_sub(pushed));
        }
        out.push(lat);
    }
    stop.store(true, Ordering::Release);
    queue.wake();
    consumer.join().expect("the consumer thread");
    out
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn fmt_us(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.1} µs", ns as f64 / 1e3)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let phases: Vec<Phase> = args
        .next()
        .unwrap_or_else(|| "3.1.1,3.1.2,3.1.3".into())
        .split(',')
        .map(|s| s.parse().unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let samples: usize = args
        .next()
        .map_or(200, |s| s.parse().expect("a sample count"));
    let mut columns = Vec::new();
    for phase in &phases {
        let lat = with_phase_queue!(*phase, Q => measure::<Q<Item>>(samples));
        columns.push(lat);
    }
    print!("| gap |");
    for phase in &phases {
        print!(" {} (p50 / p99) |", phase.tag());
    }
    println!();
    println!("|---|{}", "--:|".repeat(phases.len()));
    for (g, gap) in GAPS_US.iter().enumerate() {
        print!("| {} |", fmt_us(gap * 1000));
        for col in &columns {
            let mut v = col[g].clone();
            v.sort_unstable();
            print!(
                " {} / {} |",
                fmt_us(quantile(&v, 0.5)),
                fmt_us(quantile(&v, 0.99))
            );
        }
        println!();
    }
    println!(
        "\n{samples} pushes per gap; time from a push to its callback running. {} CPUs.",
        thread::available_parallelism().map_or(0, |n| n.get())
    );
}
