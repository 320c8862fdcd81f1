//! Where PyLoop's Rust-level measurements ran, and what else ran beside them.
//!
//! Shared by the benchmarks (`benchmarks/`, the `core_scenarios` binary) and
//! by `pyloop-model` (its producer sweep), which both depend on this crate and
//! not on each other:
//!
//! - [`procfs`]: the one reader of Linux's `/proc` (CPU model and count, the
//!   kernel release, busy CPU time of the machine and of this process).
//! - [`machine`]: the record written beside every result (machine, toolchain,
//!   commit, date), and the workspace's location.
//! - [`load`]: how much CPU *other* processes used during a run
//!   ([`Background`]), and waiting for a quiet machine.
//! - [`summary`]: medians and ranges over repetitions.

#![warn(missing_docs)]

pub mod load;
pub mod machine;
pub mod procfs;
pub mod summary;

pub use load::{wait_for_quiet, Background};
pub use summary::{median, min_max};
