//! PyLoop's Python extension: an asyncio event loop per ready-queue phase.
//!
//! The hot paths (`call_soon*`, `call_at`, the turn of the loop, handles) are
//! here; the rest of asyncio's API is in `python/pyloop/_loop.py` on top.

mod boundary;
mod buffer;
pub mod clock;
mod entry;
pub mod event_loop;
mod exit_park;
mod fd_map;
mod fd_wait;
mod gil_cell;
pub mod handle;
mod sock_calls;
mod spare_bytes;
pub mod transport;

use pyloop_core::Phase;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

// The loop waits in epoll and is woken through an eventfd (pyloop-core's poller), and its
// transports use Linux socket calls: say so at once rather than fail in a system call's name.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "pyloop builds only on Linux: its event loop waits with epoll and wakes with an eventfd"
);

/// The phase a build uses by default, set by its `phase-*` cargo features.
///
/// The features add up, as Cargo's must: with several enabled the newest of
/// them wins (`phase-3-1-1` with `phase-3-1-4` gives 3.1.4), and with none
/// the default is [`Phase::DEFAULT`] (3.2.1).
pub const BUILD_DEFAULT_PHASE: Phase = if cfg!(feature = "phase-3-3-1") {
    Phase::LockFree
} else if cfg!(feature = "phase-3-2-1") {
    Phase::EpollWake
} else if cfg!(feature = "phase-3-1-5") {
    Phase::SwapBuffer
} else if cfg!(feature = "phase-3-1-4") {
    Phase::TwoPhase
} else if cfg!(feature = "phase-3-1-3") {
    Phase::CondvarWake
} else if cfg!(feature = "phase-3-1-2") {
    Phase::AdaptiveSleep
} else if cfg!(feature = "phase-3-1-1") {
    Phase::BatchLimit
} else {
    Phase::DEFAULT
};

/// `asyncio.iscoroutine(obj)`.
pub(crate) fn is_coroutine(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    static IS_COROUTINE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    IS_COROUTINE
        .import(py, "asyncio.coroutines", "iscoroutine")?
        .call1((obj,))?
        .is_truthy()
}

/// The tags of every phase, oldest first.
#[pyfunction]
fn phases() -> Vec<&'static str> {
    Phase::ALL.iter().map(|p| p.tag()).collect()
}

/// `(tag, title)` of every phase, oldest first.
#[pyfunction]
fn phase_titles() -> Vec<(&'static str, &'static str)> {
    Phase::ALL.iter().map(|p| (p.tag(), p.title())).collect()
}

/// The native module `pyloop._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(phases, m)?)?;
    m.add_function(wrap_pyfunction!(phase_titles, m)?)?;
    m.add_function(wrap_pyfunction!(sock_calls::sock_recv_nowait, m)?)?;
    m.add_function(wrap_pyfunction!(sock_calls::sock_recv_into_nowait, m)?)?;
    m.add_function(wrap_pyfunction!(sock_calls::sock_sendall_nowait, m)?)?;
    m.add_function(wrap_pyfunction!(entry::own_native_methods, m)?)?;
    m.add_function(wrap_pyfunction!(exit_park::park_loop_threads_at_exit, m)?)?;
    m.add_function(wrap_pyfunction!(exit_park::after_fork_in_child, m)?)?;
    m.add("BUILD_DEFAULT_PHASE", BUILD_DEFAULT_PHASE.tag())?;
    let (handle, timer_handle) = handle::types(m.py())?;
    m.add("Handle", handle)?;
    m.add("TimerHandle", timer_handle)?;
    m.add_class::<transport::TcpTransportCore>()?;
    m.add_class::<event_loop::BatchLimitLoop>()?;
    m.add_class::<event_loop::AdaptiveSleepLoop>()?;
    m.add_class::<event_loop::CondvarWakeLoop>()?;
    m.add_class::<event_loop::TwoPhaseLoop>()?;
    m.add_class::<event_loop::SwapBufferLoop>()?;
    m.add_class::<event_loop::EpollWakeLoop>()?;
    m.add_class::<event_loop::LockFreeLoop>()?;
    let py = m.py();
    entry::install::<event_loop::BatchLimitLoop>(&py.get_type::<event_loop::BatchLimitLoop>())?;
    entry::install::<event_loop::AdaptiveSleepLoop>(
        &py.get_type::<event_loop::AdaptiveSleepLoop>(),
    )?;
    entry::install::<event_loop::CondvarWakeLoop>(&py.get_type::<event_loop::CondvarWakeLoop>())?;
    entry::install::<event_loop::TwoPhaseLoop>(&py.get_type::<event_loop::TwoPhaseLoop>())?;
    entry::install::<event_loop::SwapBufferLoop>(&py.get_type::<event_loop::SwapBufferLoop>())?;
    entry::install::<event_loop::EpollWakeLoop>(&py.get_type::<event_loop::EpollWakeLoop>())?;
    entry::install::<event_loop::LockFreeLoop>(&py.get_type::<event_loop::LockFreeLoop>())?;
    entry::install_transport(&py.get_type::<transport::TcpTransportCore>())?;
    Ok(())
}
