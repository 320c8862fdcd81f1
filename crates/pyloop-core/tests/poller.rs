//! The poller's descriptors after `close`: a wake must never write to a
//! number that the poller no longer owns (defect 8 of issue 9: a producer part
//! of the way through a wake, holding the eventfd's number, could write 8 bytes
//! into whatever file had taken that number after the loop closed).
//!
//! These tests check the end state (after `close_io`, wakes and pushes reach
//! no file). The race itself, a wake already under way when the loop closes,
//! cannot be scheduled from a test; it is ruled out by construction: in both
//! epoll phases `close_io` waits for the wakes under way (3.2.1 counts them
//! under the queue's lock, 3.3.1 in one atomic word with the closed mark),
//! and loom checks both (`loom_close_io_races_a_waking_push`).
//!
//! And the eventfd's wakes: each reported to one wait, none lost by a loop
//! that the eventfd woke (it leaves its mark to the producer that wrote it).
//!
//! The tests take [`ONE_AT_A_TIME`] first: each relies on the lowest free
//! descriptor numbers of the process, which another test running on another
//! thread would take.
#![cfg(not(loom))]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use pyloop_core::phases::{EpollWakeQueue, LockFreeQueue};
use pyloop_core::{Poller, ReadyQueue};

/// Held by each test for its whole run (see the module docs).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A pipe, as owned descriptors (read end, write end), non-blocking.
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // safety: `fds` has room for the two descriptors pipe2 returns.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // safety: both descriptors were just made for us.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Bytes waiting in the pipe whose read end is `read`.
fn pending_bytes(read: &OwnedFd) -> usize {
    let mut buf = [0u8; 64];
    // safety: reads at most 64 bytes into a live buffer from our own pipe.
    let n = unsafe { libc::read(read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    n.max(0) as usize
}

/// Pipes opened right after the poller let go of its descriptors: the lowest
/// free numbers, so among them the ones the poller held (the test checks it).
fn pipes_on_released_numbers(released: &[i32]) -> Vec<(OwnedFd, OwnedFd)> {
    let pipes: Vec<_> = (0..2).map(|_| pipe()).collect();
    let numbers: Vec<i32> = pipes
        .iter()
        .flat_map(|(r, w)| [r.as_raw_fd(), w.as_raw_fd()])
        .collect();
    assert!(
        released.iter().all(|n| numbers.contains(n)),
        "the released numbers {released:?} were not reused (got {numbers:?})"
    );
    pipes
}

/// The two descriptor numbers a new poller takes, found by elimination: the
/// lowest free numbers before it is made.
fn next_two_numbers() -> [i32; 2] {
    let (a, b) = pipe();
    [a.as_raw_fd(), b.as_raw_fd()]
}

#[test]
fn wake_after_close_writes_nowhere() {
    let _serial = one_at_a_time();
    let numbers = next_two_numbers();
    let poller = Poller::new().expect("epoll and eventfd");
    poller.close();
    let pipes = pipes_on_released_numbers(&numbers);
    for _ in 0..3 {
        poller.wake();
    }
    for (read, _) in &pipes {
        assert_eq!(
            pending_bytes(read),
            0,
            "a wake wrote to a reused descriptor"
        );
    }
}

fn queue_close_io_then_push_writes_nowhere<Q: ReadyQueue<u32>>() {
    let _serial = one_at_a_time();
    let numbers = next_two_numbers();
    let queue = Q::try_new().expect("epoll and eventfd");
    let mut consumer = queue.consumer();
    queue.close_io();
    let pipes = pipes_on_released_numbers(&numbers);
    // A consumer that marks itself asleep (its wait fails at once on the
    // closed set), then pushes and wakes that would signal it: nothing may
    // reach the pipes that now have the poller's old numbers.
    queue.wait(&mut consumer, Some(Duration::from_millis(1)));
    for i in 0..100 {
        queue.push(i).expect("still open for pushes");
        queue.wake();
    }
    for (read, _) in &pipes {
        assert_eq!(
            pending_bytes(read),
            0,
            "a wake wrote to a reused descriptor"
        );
    }
    assert_eq!(queue.run_batch(&mut consumer, drop), 100);
}

#[test]
fn close_io_then_push_writes_nowhere_3_2_1() {
    queue_close_io_then_push_writes_nowhere::<EpollWakeQueue<u32>>();
}

#[test]
fn close_io_then_push_writes_nowhere_3_3_1() {
    queue_close_io_then_push_writes_nowhere::<LockFreeQueue<u32>>();
}

#[test]
fn epoll_millis_rounds_up_and_caps() {
    use pyloop_core::poller::epoll_millis;
    use std::time::Duration;
    assert_eq!(epoll_millis(Duration::ZERO), 0);
    assert_eq!(epoll_millis(Duration::from_nanos(1)), 1);
    assert_eq!(epoll_millis(Duration::from_millis(1)), 1);
    assert_eq!(epoll_millis(Duration::from_nanos(1_000_001)), 2);
    assert_eq!(epoll_millis(Duration::new(2, 999_999_999)), 3_000);
    assert_eq!(epoll_millis(Duration::new(2, 0)), 2_000);
    let cap = i32::MAX as u64;
    assert_eq!(epoll_millis(Duration::from_millis(cap - 1)), i32::MAX - 1);
    assert_eq!(epoll_millis(Duration::from_millis(cap)), i32::MAX);
    assert_eq!(
        epoll_millis(Duration::new(cap / 1_000, 999_999_999)),
        i32::MAX
    );
    assert_eq!(epoll_millis(Duration::from_millis(cap + 1)), i32::MAX);
    assert_eq!(epoll_millis(Duration::MAX), i32::MAX);
}

/// The eventfd is edge-triggered and never read back: each run of wakes is
/// reported to exactly one wait, and a wake after that is reported again.
#[test]
fn each_wake_is_reported_to_one_wait() {
    let _serial = one_at_a_time();
    let poller = Poller::new().expect("epoll and eventfd");
    let mut events = Vec::new();
    let mut look = || poller.wait(&mut events, Some(Duration::ZERO)).unwrap();
    assert!(!look(), "a new poller reports a wake");
    poller.wake();
    assert!(look(), "a wake before the wait was lost");
    assert!(!look(), "one wake was reported twice");
    for _ in 0..3 {
        poller.wake();
    }
    assert!(look(), "three wakes were lost");
    assert!(!look(), "three wakes were reported more than once");
    poller.wake();
    assert!(look(), "a wake after one that was never read back was lost");
    assert!(events.is_empty(), "the eventfd was handed out as I/O");
}

/// A loop the eventfd woke leaves its `sleeping` mark to the producer that
/// took it down (3.2.1's `wait`): the next sleep must still be woken by the
/// next push. The sleeps have no timeout; the test gives up after a minute
/// rather than hang.
fn every_sleep_after_a_woken_one_is_woken<Q: ReadyQueue<u32> + Sync + 'static>() {
    use std::sync::mpsc;
    use std::sync::Arc;
    let queue = Arc::new(Q::try_new().expect("epoll and eventfd"));
    let (asleep_tx, asleep_rx) = mpsc::channel::<()>();
    let (ran_tx, ran_rx) = mpsc::channel::<u32>();
    let consumer_queue = Arc::clone(&queue);
    let loop_thread = std::thread::spawn(move || {
        let mut consumer = consumer_queue.consumer();
        for round in 0..200u32 {
            asleep_tx.send(()).unwrap();
            let mut got = None;
            while got.is_none() {
                consumer_queue.wait(&mut consumer, None);
                consumer_queue.run_batch(&mut consumer, |item| got = Some(item));
            }
            assert_eq!(got, Some(round));
            ran_tx.send(round).unwrap();
        }
    });
    // If the loop thread panics, its channels close: report its panic, not
    // a lost wake-up.
    let loop_failed = |loop_thread: std::thread::JoinHandle<()>| -> ! {
        match loop_thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("the loop thread ended early"),
        }
    };
    for round in 0..200u32 {
        if asleep_rx.recv_timeout(Duration::from_secs(60)).is_err() {
            loop_failed(loop_thread);
        }
        // Half the pushes race the loop's way into its sleep, half find it
        // asleep.
        if round % 2 == 1 {
            std::thread::sleep(Duration::from_millis(1));
        }
        queue.push(round).expect("open");
        match ran_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(ran) => assert_eq!(ran, round),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("push {round} did not wake the loop: a lost wake-up")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => loop_failed(loop_thread),
        }
    }
    loop_thread.join().unwrap();
}

#[test]
fn every_sleep_after_a_woken_one_is_woken_3_2_1() {
    every_sleep_after_a_woken_one_is_woken::<EpollWakeQueue<u32>>();
}

#[test]
fn every_sleep_after_a_woken_one_is_woken_3_3_1() {
    every_sleep_after_a_woken_one_is_woken::<LockFreeQueue<u32>>();
}
