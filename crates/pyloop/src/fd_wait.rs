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
//! A descriptor may also be watched the asyncio way, by a reader or writer
//! in the selector (`add_reader`, `add_writer`, asyncio's own code that uses
//! them), in the other direction: a task waits in `sock_recv` while another
//! sends a file with `sock_sendfile`, whose writer watches the same socket.
//! The two then share one epoll registration: while the selector watches a
//! descriptor, [`FdWaits`] keeps what it watches it for ([`Shared`]), and the
//! registration is level-triggered and persistent, for the union of that
//! and the directions of the pending waits, changed as waits come and go. An
//! event's directions with a pending wait wake it; the others go to the
//! selector. With no reader or writer the one-shot path above is unchanged
//! but for one branch. A reader or writer in the direction of a pending wait
//! is refused (`LoopCore::io_register`): it would take the wait's readiness.
//! A coroutine that finds a reader or writer already in its own direction
//! keeps asyncio's path, which replaces it, as asyncio does.

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

/// A direction as `selectors` numbers it: readable.
pub(crate) const READ: u8 = 1;
/// A direction as `selectors` numbers it: writable.
pub(crate) const WRITE: u8 = 2;

/// `read` and `write` as a mask of [`READ`] and [`WRITE`].
pub(crate) fn mask(read: bool, write: bool) -> u8 {
    (u8::from(read) * READ) | (u8::from(write) * WRITE)
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

// ANCHOR: shared
/// A descriptor that asyncio's selector watches too (a reader or writer
/// registered from Python): its epoll registration is level-triggered and
/// persistent, as the selector's always is, and covers the pending waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shared {
    /// What the selector watches it for ([`READ`], [`WRITE`]).
    python: u8,
    /// What the epoll set watches it for now: `python` and the directions of
    /// the waits pending on it. Kept so that a change that leaves the union
    /// as it was costs no system call.
    watched: u8,
}

impl Shared {
    /// The registration after the waits on the descriptor changed; `native`:
    /// the directions they wait for now (0: none is left).
    fn after(&mut self, native: u8) -> Interest {
        let want = self.python | native;
        let watch = (want != self.watched).then_some(want);
        self.watched = want;
        Interest::Shared(Sharing::new(watch, self.python, native != 0))
    }

    /// As [`after`](Self::after), for a wait just added: the registration is
    /// renewed even if the union did not change. A socket closed under an
    /// earlier wait took its registration out of the epoll set with it, and
    /// the new wait's socket may be the one that got its number.
    fn adding(&mut self, native: u8) -> Interest {
        self.after(native);
        Interest::Shared(Sharing::new(Some(self.watched), self.python, native != 0))
    }
}
// ANCHOR_END: shared

/// What a change of the waits on a descriptor shared with asyncio's
/// selector asks of the epoll set, packed in one byte so that [`Interest`]
/// stays two bytes: with the three fields as they are, the unshared path,
/// which never builds one, spent about ten instructions more per round trip
/// of `sock_echo` (benchmarks/instr) packing its wider `Interest`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sharing(u8);

impl Sharing {
    /// Bits 0-1: what to watch from now on; bit 2: whether that changed;
    /// bits 3-4: what the selector watches; bit 5: whether waits are left.
    const CHANGED: u8 = 1 << 2;
    const WAITING: u8 = 1 << 5;

    fn new(watch: Option<u8>, python: u8, waiting: bool) -> Self {
        let watch = watch.map_or(0, |events| events | Self::CHANGED);
        Sharing(watch | (python << 3) | (u8::from(waiting) * Self::WAITING))
    }

    /// What to watch the descriptor for from now on ([`READ`], [`WRITE`]),
    /// or `None` if that did not change (never for a wait just added).
    pub(crate) fn watch(self) -> Option<u8> {
        (self.0 & Self::CHANGED != 0).then_some(self.0 & (READ | WRITE))
    }

    /// What the selector watches it for: an event's directions in it go to
    /// the selector's readers and writers.
    pub(crate) fn python(self) -> u8 {
        (self.0 >> 3) & (READ | WRITE)
    }

    /// Whether waits are still pending on it.
    pub(crate) fn waiting(self) -> bool {
        self.0 & Self::WAITING != 0
    }
}

impl std::fmt::Debug for Sharing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharing")
            .field("watch", &self.watch())
            .field("python", &self.python())
            .field("waiting", &self.waiting())
            .finish()
    }
}

/// The descriptors with a pending one-shot wait, and their futures; and
/// those asyncio's selector watches, which a wait then shares.
#[derive(Default)]
pub(crate) struct FdWaits {
    by_fd: FdMap<Waiters>,
    /// The descriptors asyncio's selector watches, by number as it keys them
    /// (not the loop's self-pipe, on which no socket method waits). Empty in
    /// a program that only uses the socket methods: their waits then look at
    /// it with one branch.
    python: FdMap<Shared>,
}

// ANCHOR: interest
/// What the epoll set should watch a descriptor for after a change, or that
/// nothing waits on it any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interest {
    /// Arm it (one-shot) for reading, writing, or both.
    Arm { read: bool, write: bool },
    /// No waiter is left: leave the registration disabled.
    Idle,
    /// asyncio's selector watches the descriptor too: its registration is
    /// level-triggered, for the union of both (see [`Shared`]).
    Shared(Sharing),
}
// ANCHOR_END: interest

impl FdWaits {
    /// True if some wait is pending, on any descriptor.
    pub(crate) fn any(&self) -> bool {
        !self.by_fd.is_empty()
    }

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
        if !self.python.is_empty() {
            return self.shared(fd, Interest::Arm { read, write }, true);
        }
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

    /// The sockets waiting on `fd`, each with the direction it waits for
    /// ([`READ`] or [`WRITE`]).
    pub(crate) fn sockets(&self, py: Python<'_>, fd: i32) -> Vec<(Py<PyAny>, u8)> {
        let Some(waiters) = self.by_fd.get(&fd) else {
            return Vec::new();
        };
        let readers = waiters.readers.iter().map(|w| (w, READ));
        let all = readers.chain(waiters.writers.iter().map(|w| (w, WRITE)));
        all.map(|(w, direction)| (w.sock.clone_ref(py), direction))
            .collect()
    }

    /// The directions the waits pending on `fd` wait for ([`READ`], [`WRITE`]).
    pub(crate) fn native(&self, fd: i32) -> u8 {
        self.by_fd
            .get(&fd)
            .map_or(0, |w| mask(!w.readers.is_empty(), !w.writers.is_empty()))
    }

    /// What asyncio's selector watches `fd` for, if it watches it.
    pub(crate) fn python(&self, fd: i32) -> Option<u8> {
        self.python.get(&fd).map(|shared| shared.python)
    }

    /// Records that asyncio's selector now watches `fd` for `events` (it was
    /// registered or changed), and that the epoll set watches it for
    /// `watched`: `events` and the directions of the pending waits.
    pub(crate) fn set_python(&mut self, fd: i32, events: u8, watched: u8) {
        self.python.insert(
            fd,
            Shared {
                python: events,
                watched,
            },
        );
    }

    /// Records that asyncio's selector no longer watches `fd`; returns the
    /// directions of the waits still pending on it (0: none).
    pub(crate) fn forget_python(&mut self, fd: i32) -> u8 {
        if self.python.remove(&fd).is_none() {
            return 0;
        }
        self.native(fd)
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
        let interest = match self.by_fd.get(&fd).map(Waiters::interest) {
            Some((false, false)) | None => {
                self.by_fd.remove(&fd);
                Interest::Idle
            }
            Some((read, write)) => Interest::Arm { read, write },
        };
        if !self.python.is_empty() {
            return self.shared(fd, interest, false);
        }
        interest
    }

    /// `interest`, what the waits on `fd` need after a change (`added`: a
    /// wait was added), turned into the shared registration's if asyncio's
    /// selector watches `fd` too. Out of line: the socket methods' waits
    /// reach it only in a program that also registers readers or writers.
    #[cold]
    #[inline(never)]
    fn shared(&mut self, fd: i32, interest: Interest, added: bool) -> Interest {
        let Some(shared) = self.python.get_mut(&fd) else {
            return interest;
        };
        let native = match interest {
            Interest::Arm { read, write } => mask(read, write),
            _ => 0,
        };
        if added {
            shared.adding(native)
        } else {
            shared.after(native)
        }
    }

    /// Every pending waiter, taken out (the loop is closing); what asyncio's
    /// selector watched is forgotten with them.
    pub(crate) fn drain(&mut self) -> Vec<Waiter> {
        self.python.clear();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_registration_changes_only_when_the_union_does() {
        let mut shared = Shared {
            python: WRITE,
            watched: WRITE,
        };
        let change = |watch, waiting| Interest::Shared(Sharing::new(watch, WRITE, waiting));
        assert_eq!(shared.after(READ), change(Some(READ | WRITE), true));
        assert_eq!(shared.after(READ), change(None, true));
        // A write wait adds nothing the selector's writer did not watch.
        assert_eq!(shared.after(READ | WRITE), change(None, true));
        assert_eq!(shared.after(WRITE), change(Some(WRITE), true));
        assert_eq!(shared.after(0), change(None, false));
        assert_eq!(shared.watched, WRITE);
        // A wait added always renews the registration, changed or not.
        assert_eq!(shared.adding(WRITE), change(Some(WRITE), true));
        assert_eq!(shared.adding(READ), change(Some(READ | WRITE), true));
    }

    #[test]
    fn sharing_unpacks_what_it_packed_and_interest_stays_two_bytes() {
        for watch in [None, Some(0), Some(READ), Some(WRITE), Some(READ | WRITE)] {
            for python in [0, READ, WRITE, READ | WRITE] {
                for waiting in [false, true] {
                    let sharing = Sharing::new(watch, python, waiting);
                    let unpacked = (sharing.watch(), sharing.python(), sharing.waiting());
                    assert_eq!(unpacked, (watch, python, waiting));
                }
            }
        }
        assert_eq!(std::mem::size_of::<Interest>(), 2);
    }

    #[test]
    fn masks_number_directions_as_selectors_does() {
        assert_eq!(mask(false, false), 0);
        assert_eq!(mask(true, false), 1);
        assert_eq!(mask(false, true), 2);
        assert_eq!(mask(true, true), 3);
    }
}
