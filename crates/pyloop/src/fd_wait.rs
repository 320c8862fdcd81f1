//! One-shot waits for a descriptor to be ready: the fast path of the loop's
//! low-level socket methods (`sock_recv`, `sock_recv_into`, `sock_sendall`,
//! `sock_accept`, `sock_connect`).
//!
//! asyncio's socket methods try the system call first and, when it would
//! block, register a reader or writer with the selector: a Python handle, a
//! selector key, a done-callback on the future, and an `epoll_ctl` to add the
//! descriptor and another to remove it afterwards; readiness then goes through
//! the selector's Python code to the handle, which makes the call and completes
//! the method's future. Here the method's coroutine (in `pyloop._sockets`)
//! makes the first attempt and, when it would block, gives the loop a
//! [`Waiter`]: the future, the socket and what to do ([`SockOp`]). When the
//! descriptor is ready the loop makes the call itself and completes the
//! future with its result, or waits again if it would still block. The loop
//! arms the descriptor with `EPOLLONESHOT`: the event that wakes the waiter
//! also disables the registration, with no system call, so a wait costs one
//! `epoll_ctl`.
//!
//! A descriptor already watched the asyncio way (a reader or writer in the
//! selector) keeps asyncio's path: the coroutine sees that and falls back.

use pyo3::prelude::*;
use pyo3::pyclass::{PyTraverseError, PyVisit};

use crate::fd_map::FdMap;
use crate::sock_calls::SockOp;

/// A socket method waiting for its descriptor: the future it awaits, the
/// socket, and the call to make when the descriptor is ready.
pub(crate) struct Waiter {
    /// Completed with the call's result (or error).
    pub(crate) future: Py<PyAny>,
    /// The socket whose descriptor is awaited; the descriptor is read from it
    /// again before any use, since it may have been closed meanwhile.
    pub(crate) sock: Py<PyAny>,
    /// What to do when the descriptor is ready.
    pub(crate) op: SockOp,
}

impl Waiter {
    fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.future)?;
        visit.call(&self.sock)?;
        self.op.traverse(visit)
    }
}

/// The futures waiting for one descriptor, by direction.
#[derive(Default)]
struct Waiters {
    readers: Vec<Waiter>,
    writers: Vec<Waiter>,
}

impl Waiters {
    fn interest(&self) -> (bool, bool) {
        (!self.readers.is_empty(), !self.writers.is_empty())
    }
}

/// The descriptors with a pending one-shot wait, and their futures.
#[derive(Default)]
pub(crate) struct FdWaits {
    by_fd: FdMap<Waiters>,
}

// ANCHOR: interest
/// What the epoll set should watch a descriptor for after a change, or that
/// nothing waits on it any more.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Interest {
    /// Arm it (one-shot) for reading, writing, or both.
    Arm { read: bool, write: bool },
    /// No waiter is left: leave the registration disabled.
    Idle,
}
// ANCHOR_END: interest

impl FdWaits {
    /// True if some wait is pending on `fd`.
    pub(crate) fn contains(&self, fd: i32) -> bool {
        self.by_fd.contains_key(&fd)
    }

    /// Records `waiter` as waiting for `fd` to be readable (`read`) or
    /// writable; returns what to arm the descriptor for.
    pub(crate) fn add(&mut self, fd: i32, waiter: Waiter, read: bool) -> Interest {
        let waiters = self.by_fd.entry(fd).or_default();
        if read {
            waiters.readers.push(waiter);
        } else {
            waiters.writers.push(waiter);
        }
        let (read, write) = waiters.interest();
        Interest::Arm { read, write }
    }

    /// Forgets the waiter of `future` (its wait was cancelled); returns what
    /// the descriptor should be armed for now and the waiter, to be dropped by
    /// the caller once no borrow is held. `None` if it was not waiting.
    pub(crate) fn remove(
        &mut self,
        fd: i32,
        future: &Bound<'_, PyAny>,
    ) -> Option<(Interest, Waiter)> {
        let waiters = self.by_fd.get_mut(&fd)?;
        let removed = [&mut waiters.readers, &mut waiters.writers]
            .into_iter()
            .find_map(|list| {
                let at = list
                    .iter()
                    .position(|w| w.future.as_ptr() == future.as_ptr())?;
                Some(list.swap_remove(at))
            })?;
        Some((self.interest_after_change(fd), removed))
    }

    /// The sockets waiting on `fd`.
    pub(crate) fn sockets(&self, py: Python<'_>, fd: i32) -> Vec<Py<PyAny>> {
        let Some(waiters) = self.by_fd.get(&fd) else {
            return Vec::new();
        };
        let all = waiters.readers.iter().chain(&waiters.writers);
        all.map(|w| w.sock.clone_ref(py)).collect()
    }

    /// The descriptor `future` waits on, found by looking at every one (for
    /// a socket closed meanwhile, which no longer knows its number).
    pub(crate) fn fd_of(&self, future: &Bound<'_, PyAny>) -> Option<i32> {
        self.by_fd.iter().find_map(|(fd, waiters)| {
            let mut all = waiters.readers.iter().chain(&waiters.writers);
            all.any(|w| w.future.as_ptr() == future.as_ptr())
                .then_some(*fd)
        })
    }

    /// Moves the waiters that `readable`/`writable` readiness wakes into
    /// `woken`; returns what the descriptor should be armed for now (the
    /// event disabled it), or `None` if nothing waited on it.
    pub(crate) fn take_ready(
        &mut self,
        fd: i32,
        readable: bool,
        writable: bool,
        woken: &mut Vec<Waiter>,
    ) -> Option<Interest> {
        let waiters = self.by_fd.get_mut(&fd)?;
        if readable {
            woken.append(&mut waiters.readers);
        }
        if writable {
            woken.append(&mut waiters.writers);
        }
        Some(self.interest_after_change(fd))
    }

    fn interest_after_change(&mut self, fd: i32) -> Interest {
        match self.by_fd.get(&fd).map(Waiters::interest) {
            Some((false, false)) | None => {
                self.by_fd.remove(&fd);
                Interest::Idle
            }
            Some((read, write)) => Interest::Arm { read, write },
        }
    }

    /// Every pending waiter, taken out (the loop is closing).
    pub(crate) fn drain(&mut self) -> Vec<Waiter> {
        self.by_fd
            .drain()
            .flat_map(|(_, w)| w.readers.into_iter().chain(w.writers))
            .collect()
    }

    /// Reports every pending waiter's objects to the collector.
    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        for waiters in self.by_fd.values() {
            for waiter in waiters.readers.iter().chain(&waiters.writers) {
                waiter.traverse(visit)?;
            }
        }
        Ok(())
    }
}
