//! The loop's clock: `time.monotonic()`, read without going through Python.

/// Seconds on the monotonic clock, the same clock and origin as Python's
/// `time.monotonic()`, which asyncio's `loop.time()` returns.
pub(crate) fn monotonic() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // safety: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0);
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// The resolution asyncio allows for: a timer due within this of now runs now.
pub(crate) const CLOCK_RESOLUTION: f64 = 1e-9;

/// A small non-zero number identifying the calling thread, cheaper to read
/// than `threading.get_ident()`.
pub(crate) fn thread_token() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static TOKEN: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TOKEN.with(|t| *t)
}
