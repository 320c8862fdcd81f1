//! PyLoop's Python extension: an asyncio event loop per ready-queue phase.
//!
//! The hot paths (`call_soon*`, `call_at`, the turn of the loop, handles) are
//! here; the rest of asyncio's API is in `python/pyloop/_loop.py` on top.

mod buffer;
pub mod clock;
pub mod event_loop;
mod gil_cell;
pub mod handle;
pub mod transport;

use pyloop_core::Phase;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// The phase a build uses by default, set by its `phase-*` cargo feature
/// (the newest phase if none is set).
pub const BUILD_DEFAULT_PHASE: Phase = if cfg!(feature = "phase-3-1-1") {
    Phase::BatchLimit
} else if cfg!(feature = "phase-3-1-2") {
    Phase::AdaptiveSleep
} else if cfg!(feature = "phase-3-1-3") {
    Phase::CondvarWake
} else if cfg!(feature = "phase-3-1-4") {
    Phase::TwoPhase
} else if cfg!(feature = "phase-3-1-5") {
    Phase::SwapBuffer
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
    m.add("BUILD_DEFAULT_PHASE", BUILD_DEFAULT_PHASE.tag())?;
    m.add_class::<handle::Handle>()?;
    m.add_class::<handle::TimerHandle>()?;
    m.add_class::<transport::TcpTransportCore>()?;
    m.add_class::<event_loop::BatchLimitLoop>()?;
    m.add_class::<event_loop::AdaptiveSleepLoop>()?;
    m.add_class::<event_loop::CondvarWakeLoop>()?;
    m.add_class::<event_loop::TwoPhaseLoop>()?;
    m.add_class::<event_loop::SwapBufferLoop>()?;
    m.add_class::<event_loop::EpollWakeLoop>()?;
    Ok(())
}
