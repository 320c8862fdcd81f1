//! One-shot waits for a descriptor to be ready: the fast path of the loop's
//! low-level socket methods (`sock_recv`, `sock_recv_into`, `sock_sendall`,
//! `sock_accept`, `sock_connect`).
//!
//! asyncio's socket methods try the system call first and, when it would
//! block, register a reader or writer with the selector: a Python handle, a
//! selector key, a done-callback on the future, and an `epoll_ctl` to add the
//! descriptor and another to remove it afterwards; readiness then goes through
//! the selector's Python code to the handle. Here the method's coroutine (in
//! `pyloop._sockets`) asks the loop for a future that completes when the
//! descriptor is ready ([`FdWaits`]), retries its system call when it does,
//! and waits again if that would still block. The loop arms the descriptor
//! with `EPOLLONESHOT`: the event that wakes the waiter also disables the
//! registration, with no system call, so a wait costs one `epoll_ctl`.
//!
//! A descriptor already watched the asyncio way (a reader or writer in the
//! selector) keeps asyncio's path: the coroutine sees that and falls back.

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::pyclass::{PyTraverseError, PyVisit};

/// The futures waiting for one descriptor, by direction.
#[derive(Default)]
struct Waiters {
    readers: Vec<Py<PyAny>>,
    writers: Vec<Py<PyAny>>,
}

impl Waiters {
    fn interest(&self) -> (bool, bool) {
        (!self.readers.is_empty(), !self.writers.is_empty())
    }
}

/// The descriptors with a pending one-shot wait, and their futures.
#[derive(Default)]
pub(crate) struct FdWaits {
    by_fd: HashMap<i32, Waiters>,
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

    /// Records `future` as waiting for `fd` to be readable (`read`) or
    /// writable; returns what to arm the descriptor for.
    pub(crate) fn add(&mut self, fd: i32, future: Py<PyAny>, read: bool) -> Interest {
        let waiters = self.by_fd.entry(fd).or_default();
        if read {
            waiters.readers.push(future);
        } else {
            waiters.writers.push(future);
        }
        let (read, write) = waiters.interest();
        Interest::Arm { read, write }
    }

    /// Forgets `future` (its wait was cancelled); returns what the descriptor
    /// should be armed for now and the future, to be dropped by the caller
    /// once no borrow is held. `None` if it was not waiting.
    pub(crate) fn remove(
        &mut self,
        fd: i32,
        future: &Bound<'_, PyAny>,
    ) -> Option<(Interest, Py<PyAny>)> {
        let waiters = self.by_fd.get_mut(&fd)?;
        let removed = [&mut waiters.readers, &mut waiters.writers]
            .into_iter()
            .find_map(|list| {
                let at = list.iter().position(|f| f.as_ptr() == future.as_ptr())?;
                Some(list.swap_remove(at))
            })?;
        Some((self.interest_after_change(fd), removed))
    }

    /// Moves the waiters that `readable`/`writable` readiness wakes into
    /// `woken`; returns what the descriptor should be armed for now (the
    /// event disabled it), or `None` if nothing waited on it.
    pub(crate) fn take_ready(
        &mut self,
        fd: i32,
        readable: bool,
        writable: bool,
        woken: &mut Vec<Py<PyAny>>,
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

    /// Every pending future, taken out (the loop is closing).
    pub(crate) fn drain(&mut self) -> Vec<Py<PyAny>> {
        self.by_fd
            .drain()
            .flat_map(|(_, w)| w.readers.into_iter().chain(w.writers))
            .collect()
    }

    /// Reports every pending future to the collector.
    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        for waiters in self.by_fd.values() {
            for future in waiters.readers.iter().chain(&waiters.writers) {
                visit.call(future)?;
            }
        }
        Ok(())
    }
}
