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

/// A non-zero number identifying the calling thread: the address of its
/// interpreter thread state, which is unique among live threads and is read
/// without the thread-local lookup a Rust `thread_local!` costs in a shared library.
pub(crate) fn thread_token(_py: pyo3::Python<'_>) -> u64 {
    // safety: the token proves this thread is attached, so it has a thread state.
    unsafe { pyo3::ffi::PyThreadState_Get() as u64 }
}
