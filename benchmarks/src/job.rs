//! What travels through every queue: one small callback-like item.
//!
//! Every contender carries the same item type and its consumer runs every item
//! the same way, so the only thing that differs between two contenders is the
//! queue. Two item types are available:
//!
//! - [`Callback`], a boxed closure: one heap allocation per push (made by the
//!   producer, freed by the consumer after running it) and one indirect call per
//!   run. This resembles the real loop, where each `call_soon_threadsafe`
//!   allocates a handle on the caller's thread and the loop frees it. It is the
//!   published item.
//! - `u64`, a bare payload the consumer adds up: no allocation, no call. It
//!   shows the queues alone, without the allocator's cross-thread frees.

use std::hint::spin_loop;
use std::time::{Duration, Instant};

/// An item a producer makes from a payload and the consumer runs.
///
/// Running adds the payload into the consumer's accumulator, so that a lost or
/// duplicated item shows up in the checksum every scenario verifies.
pub trait Job: Send + 'static {
    /// How the results file names this item type.
    const NAME: &'static str;

    /// Makes the item that carries `payload`.
    fn make(payload: u64) -> Self;

    /// Runs the item, adding its payload to `acc`.
    fn run(self, acc: &mut u64);
}

/// A boxed closure, as a loop's ready queue holds handles: the published item.
pub type Callback = Box<dyn FnOnce(&mut u64) + Send>;

impl Job for Callback {
    const NAME: &'static str = "boxed-closure";

    #[inline]
    fn make(payload: u64) -> Self {
        Box::new(move |acc: &mut u64| *acc = acc.wrapping_add(payload))
    }

    #[inline]
    fn run(self, acc: &mut u64) {
        self(acc)
    }
}

impl Job for u64 {
    const NAME: &'static str = "u64";

    #[inline]
    fn make(payload: u64) -> Self {
        payload
    }

    #[inline]
    fn run(self, acc: &mut u64) {
        *acc = acc.wrapping_add(self)
    }
}

/// The sum of the payloads `0..n`, which is what a consumer that ran each of
/// them once has in its accumulator.
pub fn checksum(n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        n.wrapping_mul(n - 1) / 2
    }
}

/// Busy-waits for about `ns` nanoseconds (nothing if 0): the "little work" a
/// callback does in the lock-hold scenario. Timed by the clock rather than by
/// a count of spins, so it means the same on any machine.
#[inline]
pub fn spin_for(ns: u64) {
    if ns == 0 {
        return;
    }
    let until = Duration::from_nanos(ns);
    let start = Instant::now();
    while start.elapsed() < until {
        spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_items_add_their_payload() {
        let mut acc = 0;
        <Callback as Job>::make(5).run(&mut acc);
        <u64 as Job>::make(7).run(&mut acc);
        assert_eq!(acc, 12);
        assert_eq!(checksum(4), 6);
        assert_eq!(checksum(0), 0);
    }
}
