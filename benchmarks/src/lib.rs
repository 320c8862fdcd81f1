//! Rust-level benchmarks of PyLoop's ready queue: every phase of
//! `pyloop-core` against three peers, in the scenarios of the 3.1.4 summary,
//! with real parallel producer threads (no Python, no GIL).
//!
//! - [`contender`]: what is measured, behind one interface, [`BenchQueue`];
//!   the table in its docs says where contenders differ.
//! - [`job`]: the item every contender carries.
//! - [`scenarios`]: the workloads.
//! - [`machine`]: the record of where it ran (from `pyloop-measure`, which
//!   also gives the medians and the background-load sampler).
//!
//! Two programs drive them: the criterion benches (`cargo bench -p
//! pyloop-benchmarks`) and `core_scenarios` (`cargo run -p pyloop-benchmarks
//! --release --bin core_scenarios -- --quick`), which writes the JSON the
//! book's tables come from. See `benchmarks/README.md`.

#![warn(missing_docs)]

pub mod contender;
pub mod job;
pub mod machine;
pub mod scenarios;

pub use contender::{
    BenchQueue, ChannelConsumer, Contender, CrossbeamPeer, MpscPeer, Phased, SwapAllPeer,
    UnknownContender,
};
pub use job::{Callback, Job};
pub use scenarios::Metrics;
