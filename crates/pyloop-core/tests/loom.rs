//! Loom models of every phase's queue and idle wait.
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p pyloop-core --release --test loom`.
//!
//! Built with `--cfg loom`, the crate takes its mutex, condition variable and
//! atomics from loom ([`pyloop_core::sync`]), so these models check the code
//! that ships: loom runs each model under every interleaving of those
//! operations, up to [`PREEMPTIONS`] forced thread switches per run
//! (`LOOM_MAX_PREEMPTIONS` overrides it). A lost wake-up shows as a deadlock
//! (every thread blocked) in the phases that sleep (3.1.3 on; under loom the
//! eventfd of 3.2.1 is a flag and a condvar, see `pyloop_core::poller`), and
//! as a spin that never ends (loom's branch limit) in the polling ones. Both
//! were checked by breaking the core on purpose: a window between the
//! consumer's look and its sleep in 3.1.3's wait, and a `wait` that ignores
//! `wake()`; the models below caught each.
//!
//! Loom has no time: `wait` is only ever called with `None` here (loom's
//! `wait_timeout` never times out), and in the polling phases 3.1.1 and 3.1.2
//! every nap and spin of the idle loop is a `loom::thread::yield_now`
//! ([`pyloop_core::sync::sleep`], [`pyloop_core::sync::spin_hint`]), which loom
//! treats as "run someone else", so a polling `wait(None)` ends once a
//! producer has run. The polling phases get the same models as the others.
//!
//! Models, stamped for every phase by `loom_models!`:
//! - `loom_wake_up`: two producers push one item each while the consumer loops
//!   `wait(None)` + `run_batch` until it has two: no lost wake-up, no
//!   deadlock, each item exactly once.
//! - `loom_wake`: `wake()` from another thread ends `wait(None)`.
//! - `loom_close`: `close()` from another thread ends `wait(None)`, and a push
//!   after it fails, giving the item back.
//! - `loom_close_races_push`: a push racing a close either fails, giving its
//!   item back, or succeeds, and then its item still runs.
//! - `loom_try_push`: a producer that uses only `try_push` (retrying while it
//!   is `Contended`) also wakes the sleeping consumer.
//! - `loom_fifo`: one producer pushes 1, 2, 3 while the consumer (batch limit
//!   1, so the swap phase takes items in one swap and runs them over several
//!   batches) runs them: they run in order, also across a swap.
//!
//! Models of phase 3.3.1 alone (module `lock_free`; its blocks hold 2 slots
//! under loom, so that a few pushes fill blocks, install new ones and recycle
//! drained ones):
//! - `two_producers_race_for_a_block`: two producers race for the last slot
//!   of a block; the winner installs the next one while the other waits.
//! - `spare_block_is_reused`: the consumer recycles a drained block into the
//!   spare while the producer may be taking it for the next installation.
//! - `wake_up_model`: one producer, a consumer that sleeps whenever it finds
//!   nothing (the handshake of `prepare_to_sleep`).
//!
//! Models of the two phases that sleep in epoll (module `epoll_phases`):
//! - `loom_close_io_races_a_waking_push`: a producer's wake-up races `close`
//!   and then `close_io`; loom's poller fails the run if an eventfd write
//!   could land after the descriptor was closed.
//! - `loom_sleep_after_a_stale_wake`: sleeps after an eventfd write that came
//!   too late for the wait it was meant for.
//!
//! `wake_up_model` and the close-io model, on a 3.3.1 queue broken on purpose
//! (the loop's re-check a plain load instead of a read-modify-write;
//! `close_io` not waiting for wakers), must fail: they are in
//! `tests/broken.rs`.

#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;

use pyloop_core::{Closed, ReadyQueue, TryPushError};

/// Forced switches loom tries per run unless `LOOM_MAX_PREEMPTIONS` says
/// otherwise. The classic lost wake-up needs one (between the consumer's look
/// and its sleep); 3 leaves room for the producers to interleave with each
/// other too. All models of all phases then take about 1.5 s in release on 2
/// cores, after a compile of about 25 s; they also pass with 5 (about 15 s)
/// and 7 (about 45 s).
const PREEMPTIONS: usize = 3;

/// Runs `model` under loom with the preemption bound above.
fn check(model: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(PREEMPTIONS);
    }
    builder.check(model);
}

/// Plays the loop thread until `want` items have run: `wait(None)` (which
/// returns at once if there is work), then a batch, again and again. Returns
/// the items in the order they ran.
fn run_until<Q: ReadyQueue<u64>>(queue: &Q, consumer: &mut Q::Consumer, want: usize) -> Vec<u64> {
    let mut ran = Vec::new();
    while ran.len() < want {
        queue.wait(consumer, None);
        queue.run_batch(consumer, |item| ran.push(item));
    }
    ran
}

/// Two producers, one item each, a consumer that sleeps whenever it finds
/// nothing: it is always woken, and runs each item exactly once.
fn loom_wake_up<Q: ReadyQueue<u64>>() {
    check(|| {
        let queue = Arc::new(Q::new());
        let producers: Vec<_> = [1, 2]
            .into_iter()
            .map(|item| {
                let queue = Arc::clone(&queue);
                thread::spawn(move || queue.push(item).unwrap())
            })
            .collect();
        let mut consumer = queue.consumer();
        let mut ran = run_until(&*queue, &mut consumer, 2);
        for p in producers {
            p.join().unwrap();
        }
        ran.sort_unstable();
        assert_eq!(ran, [1, 2]);
        assert!(!queue.has_pending(&consumer));
    });
}

/// `wake()` from another thread ends a `wait(None)` on an empty queue, whether
/// it comes before the wait or during it.
fn loom_wake<Q: ReadyQueue<u64>>() {
    check(|| {
        let queue = Arc::new(Q::new());
        let waker = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.wake())
        };
        let mut consumer = queue.consumer();
        queue.wait(&mut consumer, None);
        waker.join().unwrap();
        assert_eq!(queue.run_batch(&mut consumer, |_| {}), 0);
    });
}

/// `close()` from another thread ends a `wait(None)`; a push after it fails
/// and gives the item back.
fn loom_close<Q: ReadyQueue<u64>>() {
    check(|| {
        let queue = Arc::new(Q::new());
        let closer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.close())
        };
        let mut consumer = queue.consumer();
        queue.wait(&mut consumer, None);
        assert!(queue.is_closed());
        closer.join().unwrap();
        assert_eq!(queue.push(7), Err(Closed(7)));
    });
}

/// A push racing a close: refused with its own item back, or accepted and run.
/// The consumer runs what comes until the queue is closed, then drains.
fn loom_close_races_push<Q: ReadyQueue<u64>>() {
    check(|| {
        let queue = Arc::new(Q::new());
        let pusher = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.push(5))
        };
        let closer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.close())
        };
        let mut consumer = queue.consumer();
        let mut ran = Vec::new();
        // The loop: wait, run what there is, until closed. (Waiting without
        // running would spin: `wait` returns at once while work is queued.)
        loop {
            queue.wait(&mut consumer, None);
            queue.run_batch(&mut consumer, |item| ran.push(item));
            if queue.is_closed() {
                break;
            }
        }
        closer.join().unwrap();
        let pushed = pusher.join().unwrap();
        while queue.run_batch(&mut consumer, |item| ran.push(item)) > 0 {}
        match pushed {
            Ok(()) => assert_eq!(ran, [5]),
            Err(Closed(back)) => {
                assert_eq!(back, 5);
                assert!(ran.is_empty());
            }
        }
    });
}

/// A producer that only ever uses `try_push`, yielding and retrying while the
/// lock is taken, as a caller holding the GIL would: its item is never lost,
/// and the consumer asleep in `wait(None)` is woken by it.
fn loom_try_push<Q: ReadyQueue<u64>>() {
    check(|| {
        let queue = Arc::new(Q::new());
        let producer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let mut item = 9;
                loop {
                    match queue.try_push(item) {
                        Ok(()) => return,
                        Err(TryPushError::Contended(back)) => {
                            item = back;
                            thread::yield_now();
                        }
                        Err(TryPushError::Closed(_)) => unreachable!("nobody closes"),
                    }
                }
            })
        };
        let mut consumer = queue.consumer();
        let ran = run_until(&*queue, &mut consumer, 1);
        producer.join().unwrap();
        assert_eq!(ran, [9]);
    });
}

/// One producer pushes 1, 2, 3; a consumer with batch limit 1 runs them in
/// that order, however the pushes fall between its swaps and batches.
fn loom_fifo<Q: ReadyQueue<u64>>() {
    check(|| {
        let queue = Arc::new(Q::with_batch_limit(1));
        let producer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                for item in 1..=3 {
                    queue.push(item).unwrap();
                }
            })
        };
        let mut consumer = queue.consumer();
        let ran = run_until(&*queue, &mut consumer, 3);
        producer.join().unwrap();
        assert_eq!(ran, [1, 2, 3]);
    });
}

/// Stamps, for each `module => QueueType`, a module with one `#[test]` per
/// model above, run on `QueueType<u64>`, and lists the stamped phases in
/// `STAMPED`.
macro_rules! loom_models {
    ($($module:ident => $queue:ident),+ $(,)?) => {
        /// The phases that have models, in the order stamped.
        const STAMPED: &[pyloop_core::Phase] = &[
            $(<pyloop_core::phases::$queue<u64> as ReadyQueue<u64>>::PHASE),+
        ];
        $(
            mod $module {
                loom_models!(@tests $queue:
                    loom_wake_up,
                    loom_wake,
                    loom_close,
                    loom_close_races_push,
                    loom_try_push,
                    loom_fifo,
                );
            }
        )+
    };
    (@tests $queue:ident: $($model:ident),+ $(,)?) => {
        $(
            #[test]
            fn $model() {
                super::$model::<pyloop_core::phases::$queue<u64>>();
            }
        )+
    };
}

loom_models! {
    p3_1_1 => BatchLimitQueue,
    p3_1_2 => AdaptiveSleepQueue,
    p3_1_3 => CondvarWakeQueue,
    p3_1_4 => TwoPhaseQueue,
    p3_1_5 => SwapBufferQueue,
    p3_2_1 => EpollWakeQueue,
    p3_3_1 => LockFreeQueue,
}

/// The models of phase 3.3.1's own mechanisms: blocks, recycling and the
/// wake-up handshake. The handshake, and closing the eventfd (modelled in
/// `epoll_phases`), also run on a queue broken on purpose in
/// `tests/broken.rs`, where loom must find the fault.
mod lock_free {
    use loom::sync::Arc;
    use loom::thread;

    use pyloop_core::phases::LockFreeQueue;
    use pyloop_core::ReadyQueue;

    use super::{check, run_until};

    /// Two producers race for the last slot of the first block (2 slots under
    /// loom): producer 1 pushes 11, 12, producer 2 pushes 21. Whoever claims
    /// position 1 installs the second block; a producer that finds the block
    /// full meanwhile waits for it. The consumer runs the items once both are
    /// done: each once, each producer's in order. (A consumer polling
    /// meanwhile would be a second thread spinning on the installer, which
    /// makes loom's scheduler oscillate between the two waiters without end,
    /// loom issue #53; `spare_block_is_reused` has the consumer concurrent.)
    #[test]
    fn two_producers_race_for_a_block() {
        check(|| {
            let queue = Arc::new(LockFreeQueue::<u64>::new());
            let producers: Vec<_> = [&[11u64, 12][..], &[21][..]]
                .into_iter()
                .map(|items| {
                    let queue = Arc::clone(&queue);
                    thread::spawn(move || {
                        for &item in items {
                            queue.push(item).unwrap();
                        }
                    })
                })
                .collect();
            for p in producers {
                p.join().unwrap();
            }
            let mut consumer = queue.consumer();
            let mut ran = Vec::new();
            while queue.run_batch(&mut consumer, |item| ran.push(item)) > 0 {}
            let first: Vec<u64> = ran.iter().copied().filter(|i| i / 10 == 1).collect();
            assert_eq!(first, [11, 12], "ran {ran:?}");
            assert!(ran.contains(&21), "ran {ran:?}");
            assert_eq!(queue.stats().snapshot().pushes, 3);
        });
    }

    /// One producer pushes 1 … 4 (positions 0, 1, 3, 4: blocks installed at
    /// the claims of 1 and 4) while the consumer runs them, polling. The
    /// consumer recycles the first block into the spare when it leaves it,
    /// possibly while the producer takes the spare for the second
    /// installation: the swaps on the spare pointer must hand the block over
    /// whole, and a recycled block must come back clean (a stale `written`
    /// flag would let the consumer read a slot before it is written, which
    /// loom's `UnsafeCell` reports).
    #[test]
    fn spare_block_is_reused() {
        check(|| {
            let queue = Arc::new(LockFreeQueue::<u64>::new());
            let producer = {
                let queue = Arc::clone(&queue);
                thread::spawn(move || {
                    for item in 1..=4 {
                        queue.push(item).unwrap();
                    }
                })
            };
            let mut consumer = queue.consumer();
            let mut ran = Vec::new();
            while ran.len() < 4 {
                if queue.run_batch(&mut consumer, |item| ran.push(item)) == 0 {
                    thread::yield_now();
                }
            }
            producer.join().unwrap();
            assert_eq!(ran, [1, 2, 3, 4]);
            assert!(!queue.has_pending(&consumer));
        });
    }

    /// One producer, one consumer that sleeps whenever it finds nothing:
    /// the handshake of `prepare_to_sleep` (a lost wake-up shows as a deadlock).
    #[test]
    fn wake_up_model() {
        check(|| {
            let queue = Arc::new(LockFreeQueue::<u64>::with_batch_limit(1));
            let producer = {
                let queue = Arc::clone(&queue);
                thread::spawn(move || queue.push(3).unwrap())
            };
            let mut consumer = queue.consumer();
            assert_eq!(run_until(&*queue, &mut consumer, 1), [3]);
            producer.join().unwrap();
        });
    }
}

/// Every phase has its models: `loom_models!` stamped all of `Phase::ALL`.
#[test]
fn every_phase_is_modelled() {
    assert_eq!(STAMPED, pyloop_core::Phase::ALL.as_slice());
}

/// A look without sleeping first (a zero timeout, as a busy turn makes), then
/// sleeps without a limit until two pushes from another thread have run. A
/// push can write the eventfd after that first look has returned: a stale
/// write, which the next sleep is told of at once, and after which 3.2.1's
/// loop leaves its `sleeping` mark up. No interleaving may leave the loop
/// asleep with an item queued. (Only the phases that sleep in epoll: the
/// eventfd and its stale writes are theirs.)
fn loom_sleep_after_a_stale_wake<Q: ReadyQueue<u64>>() {
    check(|| {
        let queue = Arc::new(Q::new());
        let producer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                queue.push(1).unwrap();
                queue.push(2).unwrap();
            })
        };
        let mut consumer = queue.consumer();
        let mut ran = Vec::new();
        queue.wait(&mut consumer, Some(std::time::Duration::ZERO));
        queue.run_batch(&mut consumer, |item| ran.push(item));
        ran.extend(run_until(&*queue, &mut consumer, 2 - ran.len()));
        producer.join().unwrap();
        assert_eq!(ran, [1, 2]);
    });
}

/// The consumer makes a zero-timeout wait (setting its `sleeping` mark for a
/// moment) while a producer pushes; then the loop closes: `close`, then
/// `close_io`, while the producer may still be on its way to the eventfd
/// write that it promised itself under the lock (3.2.1) or counted itself in
/// for (3.3.1). The poller's model fails the run if that write could come
/// after `close_io` closed the eventfd. The push is accepted or refused.
fn loom_close_io_races_a_waking_push<Q: ReadyQueue<u64>>() {
    check(|| {
        let queue = Arc::new(Q::with_batch_limit(1));
        let producer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.push(1))
        };
        let mut consumer = queue.consumer();
        queue.wait(&mut consumer, Some(std::time::Duration::ZERO));
        queue.close();
        queue.close_io();
        let pushed = producer.join().unwrap();
        let mut ran = Vec::new();
        while queue.run_batch(&mut consumer, |item| ran.push(item)) > 0 {}
        match pushed {
            Ok(()) => assert_eq!(ran, [1]),
            Err(Closed(back)) => assert_eq!((back, ran.len()), (1, 0)),
        }
    });
}

mod epoll_phases {
    #[test]
    fn close_io_races_a_waking_push_3_2_1() {
        super::loom_close_io_races_a_waking_push::<pyloop_core::phases::EpollWakeQueue<u64>>();
    }

    #[test]
    fn close_io_races_a_waking_push_3_3_1() {
        super::loom_close_io_races_a_waking_push::<pyloop_core::phases::LockFreeQueue<u64>>();
    }

    #[test]
    fn sleep_after_a_stale_wake_3_2_1() {
        super::loom_sleep_after_a_stale_wake::<pyloop_core::phases::EpollWakeQueue<u64>>();
    }

    #[test]
    fn sleep_after_a_stale_wake_3_3_1() {
        super::loom_sleep_after_a_stale_wake::<pyloop_core::phases::LockFreeQueue<u64>>();
    }
}
