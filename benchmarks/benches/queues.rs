//! Criterion groups: the throughput of every phase and peer, on one thread and
//! with 10 producer threads. The same drivers as `core_scenarios`
//! (`pyloop_benchmarks::scenarios`), with the published item, a boxed closure.
//!
//! - `single_thread/<contender>`: 10,000 callbacks pushed then run by one
//!   thread, on a queue reused across iterations (so grown, as a long-lived
//!   loop's is).
//! - `producers_10/<contender>`: 10 threads × 1,000 pushes while the calling
//!   thread consumes, timed from the first push to the last callback run, on a
//!   fresh queue each iteration (thread start-up is not timed). On a 2-core
//!   machine the 10 producers are time-sliced.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pyloop_benchmarks::scenarios::{consume, produce_and_consume};
use pyloop_benchmarks::{with_contender, BenchQueue, Callback, Contender, Job};

const SINGLE_N: usize = 10_000;
const PRODUCERS: usize = 10;
const PER_PRODUCER: usize = 1_000;

// Some contenders' consumer state is `()`; the macro stamps the same code for all.
#[allow(clippy::let_unit_value)]
fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("single_thread");
    group
        .throughput(Throughput::Elements(SINGLE_N as u64))
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for contender in Contender::all() {
        with_contender!(contender, Q => {
            let q = <Q<Callback> as BenchQueue<Callback>>::create();
            let mut consumer = q.consumer();
            group.bench_function(BenchmarkId::from_parameter(contender.id()), |b| {
                b.iter(|| {
                    for i in 0..SINGLE_N as u64 {
                        q.push(Callback::make(i));
                    }
                    black_box(consume::<Q<Callback>, Callback>(&q, &mut consumer, SINGLE_N, 0))
                })
            });
        });
    }
    group.finish();
}

fn producers_10(c: &mut Criterion) {
    let mut group = c.benchmark_group("producers_10");
    group
        .throughput(Throughput::Elements((PRODUCERS * PER_PRODUCER) as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for contender in Contender::all() {
        with_contender!(contender, Q => {
            group.bench_function(BenchmarkId::from_parameter(contender.id()), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            let r = produce_and_consume::<Q<Callback>, Callback>(
                                PRODUCERS,
                                PER_PRODUCER,
                                0,
                                false,
                            );
                            r.all_run - r.first_push
                        })
                        .sum()
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, single_thread, producers_10);
criterion_main!(benches);
