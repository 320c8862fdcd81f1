//! Readiness I/O for the loop's idle wait: epoll, with an eventfd to wake it.
//!
//! A loop asleep on a condition variable cannot also wait for a socket. One
//! that sleeps in `epoll_wait` can wait for both, if producers wake it through
//! a file descriptor in the same epoll set: an eventfd. This module wraps the
//! two system calls; phase 3.2.1 puts them under the ready queue.
//!
//! Under loom the kernel is not modelled: [`Poller`] becomes a flag and a
//! condition variable with the eventfd's semantics (a wake before the wait is
//! not lost), so that the wake-up protocol of 3.2.1 is checked all the same.

use std::io;
use std::time::Duration;

/// Readiness of one registered file descriptor, as `epoll_wait` reported it.
/// An error or hang-up counts as both readable and writable, as Python's
/// `selectors` module does, so that whoever waits on it finds out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoEvent {
    /// The file descriptor.
    pub fd: i32,
    /// Ready to read (or in error).
    pub readable: bool,
    /// Ready to write (or in error).
    pub writable: bool,
}

#[cfg(not(loom))]
pub use real::Poller;

#[cfg(loom)]
pub use model::Poller;

#[cfg(not(loom))]
mod real {
    use super::*;
    use std::mem::MaybeUninit;
    use std::sync::atomic::{AtomicI32, Ordering};

    /// An epoll set holding an eventfd, which [`wake`](Poller::wake) makes readable.
    ///
    /// The descriptors are released by [`close`](Poller::close) (when the loop
    /// is closed, as asyncio closes its selector) or on drop.
    #[derive(Debug)]
    pub struct Poller {
        epoll: AtomicI32,
        waker: AtomicI32,
        /// The process that made it (see [`inherited`](Poller::inherited)).
        made_in: libc::pid_t,
    }

    fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(rc)
        }
    }

    fn interest(readable: bool, writable: bool) -> u32 {
        let mut events = 0;
        if readable {
            events |= libc::EPOLLIN as u32;
        }
        if writable {
            events |= libc::EPOLLOUT as u32;
        }
        events
    }

    impl Poller {
        /// A new epoll set with its eventfd registered.
        pub fn new() -> io::Result<Self> {
            // safety: plain system calls; each returned descriptor is checked,
            // and owned by the `Poller` (or closed here if the second fails).
            let epoll = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
            let waker =
                match check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) }) {
                    Ok(fd) => fd,
                    Err(e) => {
                        // safety: `epoll` is ours and not shared yet.
                        unsafe { libc::close(epoll) };
                        return Err(e);
                    }
                };
            let poller = Poller {
                epoll: AtomicI32::new(epoll),
                waker: AtomicI32::new(waker),
                // safety: getpid cannot fail.
                made_in: unsafe { libc::getpid() },
            };
            // Edge-triggered: each write is reported once, so a wait that
            // finds the eventfd need not read it back (a system call on the
            // way from the wake to the GIL). The counter is never emptied;
            // `wake` resets it in the one case where that matters.
            poller.epoll_ctl(
                libc::EPOLL_CTL_ADD,
                waker,
                (libc::EPOLLIN | libc::EPOLLET) as u32,
            )?;
            Ok(poller)
        }

        fn epoll_fd(&self) -> i32 {
            self.epoll.load(Ordering::Acquire)
        }

        fn waker_fd(&self) -> i32 {
            self.waker.load(Ordering::Acquire)
        }

        /// Releases both descriptors; later calls fail with EBADF and wakes do
        /// nothing. The caller guarantees that no other thread is waking or
        /// waiting: a thread part of the way through [`wake`](Self::wake), holding
        /// the eventfd's number, would write to whatever file gets that number
        /// next. The ready queue makes sure of it: its `close_io` waits until
        /// every wake under way has been written (and no thread waits, since
        /// the loop is closed only when it is not running).
        pub fn close(&self) {
            for fd in [
                self.epoll.swap(-1, Ordering::AcqRel),
                self.waker.swap(-1, Ordering::AcqRel),
            ] {
                if fd >= 0 {
                    // safety: the descriptor was ours and is forgotten above.
                    unsafe { libc::close(fd) };
                }
            }
        }

        /// True in a child forked after the poller was made. Only the
        /// forking thread lives on in a child, so no other thread of the
        /// child can be part of the way through a wake: `close_io` must not
        /// wait for the wakes its parent had under way.
        pub fn inherited(&self) -> bool {
            // safety: getpid cannot fail.
            unsafe { libc::getpid() != self.made_in }
        }

        /// True if `fd` is one of the poller's own two descriptors.
        pub fn owns(&self, fd: i32) -> bool {
            fd >= 0 && (fd == self.epoll_fd() || fd == self.waker_fd())
        }

        /// `epoll_ctl` for a caller's descriptor. The poller's own are
        /// refused (EPERM): the number can only come from a caller's mistake
        /// (a descriptor closed meanwhile), and watching the eventfd again
        /// would make it level-triggered, so that a loop that never reads it
        /// back would never sleep again.
        fn control(&self, op: libc::c_int, fd: i32, events: u32) -> io::Result<()> {
            if self.owns(fd) {
                return Err(io::Error::from_raw_os_error(libc::EPERM));
            }
            self.epoll_ctl(op, fd, events)
        }

        fn epoll_ctl(&self, op: libc::c_int, fd: i32, events: u32) -> io::Result<()> {
            let mut event = libc::epoll_event {
                events,
                u64: fd as u64,
            };
            // safety: `event` is a valid epoll_event for the duration of the call;
            // the kernel checks `fd` and reports a bad one as EBADF.
            check(unsafe { libc::epoll_ctl(self.epoll_fd(), op, fd, &mut event) })?;
            Ok(())
        }

        /// Starts watching `fd` (level-triggered) for the given readiness. A
        /// descriptor still in the set from a one-shot wait that fired (see
        /// [`arm_once`](Self::arm_once)) is taken over.
        pub fn register(&self, fd: i32, readable: bool, writable: bool) -> io::Result<()> {
            match self.control(libc::EPOLL_CTL_ADD, fd, interest(readable, writable)) {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    self.control(libc::EPOLL_CTL_MOD, fd, interest(readable, writable))
                }
                other => other,
            }
        }

        /// Watches `fd` for one event: the first readiness reported disables
        /// it (`EPOLLONESHOT`), with no system call, and it stays in the set,
        /// disabled, until armed again or the file is closed. So a wait on a
        /// socket costs one `epoll_ctl`, not an add and a remove.
        pub fn arm_once(&self, fd: i32, readable: bool, writable: bool) -> io::Result<()> {
            let events = interest(readable, writable) | libc::EPOLLONESHOT as u32;
            match self.control(libc::EPOLL_CTL_MOD, fd, events) {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    self.control(libc::EPOLL_CTL_ADD, fd, events)
                }
                other => other,
            }
        }

        /// Changes what `fd` is watched for.
        pub fn modify(&self, fd: i32, readable: bool, writable: bool) -> io::Result<()> {
            self.control(libc::EPOLL_CTL_MOD, fd, interest(readable, writable))
        }

        /// Stops watching `fd`.
        pub fn deregister(&self, fd: i32) -> io::Result<()> {
            self.control(libc::EPOLL_CTL_DEL, fd, 0)
        }

        // ANCHOR: wake
        /// Makes the current or next [`wait`](Self::wait) return.
        pub fn wake(&self) {
            let fd = self.waker_fd();
            if fd < 0 {
                return;
            }
            let one: u64 = 1;
            // safety: writes 8 bytes from a live u64 to our own eventfd, whose
            // number cannot be closed and reused meanwhile (the caller keeps
            // `close` from running concurrently; see there). The write fails
            // (EAGAIN) only with the counter at its maximum, after 2^64 - 2
            // wakes: a failed write makes no edge, so the counter is read back
            // to zero and the write made again.
            unsafe {
                if libc::write(fd, (&one as *const u64).cast(), std::mem::size_of::<u64>()) < 0 {
                    self.drain_waker();
                    libc::write(fd, (&one as *const u64).cast(), std::mem::size_of::<u64>());
                }
            }
        }
        // ANCHOR_END: wake

        fn drain_waker(&self) {
            let mut count: u64 = 0;
            // safety: reads at most 8 bytes into a live u64 from our own
            // non-blocking eventfd; EAGAIN (nothing to read) is fine.
            unsafe {
                libc::read(
                    self.waker_fd(),
                    (&mut count as *mut u64).cast(),
                    std::mem::size_of::<u64>(),
                );
            }
        }

        // ANCHOR: wait
        /// Waits until a registered descriptor is ready, [`wake`](Self::wake)
        /// is called, or `timeout` (`None`: no limit) passes; appends the ready
        /// descriptors (not the eventfd) to `events`; returns true if the
        /// eventfd was among them (a wake since the last wait that found it).
        /// An interrupted wait (EINTR, a signal) adds nothing and returns the `Interrupted`
        /// error, so that the caller goes back to Python, where the signal's
        /// handler runs, instead of sleeping again.
        pub fn wait(
            &self,
            events: &mut Vec<IoEvent>,
            timeout: Option<Duration>,
        ) -> io::Result<bool> {
            const CAPACITY: usize = 256;
            // Not zeroed: the kernel writes the first `n` entries and only
            // those are read. Zeroing the 3 KB was a tenth of the user-space
            // instructions of a socket round trip (`sock_echo` in
            // benchmarks/instr).
            let mut raw = [const { MaybeUninit::<libc::epoll_event>::uninit() }; CAPACITY];
            let millis = timeout.map_or(-1, epoll_millis);
            // safety: `raw` has room for CAPACITY events, as the call is told.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll_fd(),
                    raw.as_mut_ptr().cast(),
                    CAPACITY as i32,
                    millis,
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let waker = self.waker_fd();
            let mut woken = false;
            for slot in &raw[..n as usize] {
                // safety: epoll_wait wrote the first `n` entries.
                let event = unsafe { slot.assume_init_ref() };
                let fd = event.u64 as i32;
                if fd == waker {
                    woken = true;
                    continue;
                }
                let bits = event.events;
                let failed = bits & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0;
                events.push(IoEvent {
                    fd,
                    readable: failed || bits & libc::EPOLLIN as u32 != 0,
                    writable: failed || bits & libc::EPOLLOUT as u32 != 0,
                });
            }
            Ok(woken)
        }
        // ANCHOR_END: wait
    }
}

/// `timeout` in whole milliseconds for `epoll_wait`, rounded up (so that a
/// timer is never found not yet due) and capped at `i32::MAX`. In 64-bit
/// arithmetic: `Duration::as_nanos` is a `u128`, whose division is a call
/// into compiler-rt on every wait.
#[cfg(not(loom))]
pub fn epoll_millis(timeout: Duration) -> i32 {
    const CAP_SECS: u64 = i32::MAX as u64 / 1_000;
    if timeout.as_secs() > CAP_SECS {
        return i32::MAX;
    }
    let millis = timeout.as_secs() * 1_000 + u64::from(timeout.subsec_nanos().div_ceil(1_000_000));
    millis.min(i32::MAX as u64) as i32
}

/// Test support: runs `f` in a forked child and reports whether the child
/// got through it and exited within `limit` (a child still running then is
/// killed). The child runs only `f` and `_exit`.
#[cfg(all(test, not(loom)))]
pub(crate) fn finishes_in_a_forked_child(f: impl FnOnce(), limit: Duration) -> bool {
    // safety: the child runs `f`, which the callers keep to the queue's own
    // atomics, lock and system calls, then leaves with `_exit` (no atexit
    // handlers, no unwinding into the test harness).
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        f();
        unsafe { libc::_exit(0) };
    }
    let start = std::time::Instant::now();
    let mut status = 0;
    loop {
        // safety: waits for our own child without blocking.
        let done = unsafe { libc::waitpid(child, &mut status, libc::WNOHANG) };
        if done == child {
            return libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        }
        if start.elapsed() > limit {
            // safety: our own child, still running.
            unsafe {
                libc::kill(child, libc::SIGKILL);
                libc::waitpid(child, &mut status, 0);
            }
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(not(loom))]
impl Drop for real::Poller {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(loom)]
mod model {
    use super::*;
    use crate::sync::{AtomicBool, Condvar, Mutex, Ordering};

    /// loom's stand-in for the epoll set: only the eventfd, as a flag, and
    /// whether it is still open.
    #[derive(Debug)]
    pub struct Poller {
        woken: Mutex<bool>,
        ready: Condvar,
        /// Cleared by `close`.
        open: AtomicBool,
    }

    impl Poller {
        /// A stand-in with no wake pending.
        pub fn new() -> io::Result<Self> {
            Ok(Poller {
                woken: Mutex::new(false),
                ready: Condvar::new(),
                open: AtomicBool::new(true),
            })
        }
        /// Not modelled: no descriptor is the model's.
        pub fn owns(&self, _fd: i32) -> bool {
            false
        }
        /// Not modelled: loom does not fork.
        pub fn inherited(&self) -> bool {
            false
        }
        /// Not modelled.
        pub fn register(&self, _fd: i32, _r: bool, _w: bool) -> io::Result<()> {
            Ok(())
        }
        /// Not modelled.
        pub fn modify(&self, _fd: i32, _r: bool, _w: bool) -> io::Result<()> {
            Ok(())
        }
        /// Not modelled.
        pub fn arm_once(&self, _fd: i32, _r: bool, _w: bool) -> io::Result<()> {
            Ok(())
        }
        /// Not modelled.
        pub fn deregister(&self, _fd: i32) -> io::Result<()> {
            Ok(())
        }
        /// Marks the eventfd closed: later wakes do nothing, later waits fail.
        pub fn close(&self) {
            self.open.store(false, Ordering::Release);
        }
        // ANCHOR: model_wake
        /// Sets the flag and wakes a waiter, like a write to the eventfd. The
        /// real wake reads the descriptor's number, then writes to it; if the
        /// descriptor was closed in between, the write goes to whatever file
        /// has that number by then. The model fails the run if `close` may
        /// have happened between the two steps.
        pub fn wake(&self) {
            if !self.open.load(Ordering::Acquire) {
                return;
            }
            let mut woken = self.woken.lock().unwrap();
            assert!(
                self.open.load(Ordering::Acquire),
                "a wake wrote to an eventfd closed after it read its number"
            );
            *woken = true;
            self.ready.notify_one();
        }
        // ANCHOR_END: model_wake
        /// Waits for the flag and clears it, as an edge-triggered wait
        /// reports the writes since the last one once, and returns whether it
        /// was set; fails (as EBADF would) once closed.
        pub fn wait(
            &self,
            _events: &mut Vec<IoEvent>,
            timeout: Option<Duration>,
        ) -> io::Result<bool> {
            if !self.open.load(Ordering::Acquire) {
                return Err(io::Error::from_raw_os_error(libc::EBADF));
            }
            let mut woken = self.woken.lock().unwrap();
            while !*woken && timeout != Some(Duration::ZERO) {
                woken = self.ready.wait(woken).unwrap();
            }
            Ok(std::mem::take(&mut *woken))
        }
    }
}
