//! Amdahl's law and the Universal Scalability Law, fitted to PyLoop's measured
//! phases: the logic behind the notebooks in `notebooks/` and the generated
//! part of the book's Amdahl chapter.
//!
//! - [`laws`]: the two laws as formulas ([`amdahl_speedup`], [`Amdahl`], [`Usl`]).
//! - [`fit`]: least-squares fits of both to `(N, throughput)` points
//!   ([`fit_amdahl`], [`fit_usl`]), written here: a bounded grid, then
//!   Levenberg–Marquardt.
//! - [`sweep`]: the producer sweep at the Rust level (1–16 producers on every
//!   phase of `pyloop-core`, with the counters' lock hold and wait).
//! - [`data`]: loading `benchmarks/results/*.json` and the sweep.
//! - [`analysis`]: both laws fitted per phase, the summary's model, tables.
//! - [`plot`]: SVG plots with `plotters`, saved to files or shown inline in
//!   evcxr ([`Figure`]); [`table`]: tables as markdown or HTML.
//! - [`run`]: running the benchmark commands from a notebook; [`notebook`]:
//!   one-call table-and-figure shortcuts for notebook cells.
//! - [`diagram`]: the book's diagrams (data path, lost wake-up, GIL deadlock),
//!   drawn as SVG.
//! - [`book`]: the book's generated files drawn here (the Amdahl chapter's, the
//!   diagrams).
//!
//! In a notebook (the evcxr kernel):
//!
//! ```text
//! :dep pyloop-model = { path = "../crates/pyloop-model" }
//! use pyloop_model::*;
//! let sweep = Sweep::load(run::committed_sweep())?;
//! plot::scaling_figure("committed sweep", &analysis::fit_sweep(&sweep))
//! ```

#![warn(missing_docs)]

pub mod analysis;
pub mod book;
pub mod data;
pub mod diagram;
pub mod fit;
pub mod laws;
pub mod machine;
pub mod notebook;
pub mod plot;
pub mod run;
pub mod sweep;
pub mod table;

pub use analysis::{fit_sweep, SeriesFit};
pub use data::{Results, ScalingSeries, Summary, Sweep};
pub use fit::{fit_amdahl, fit_usl, Fit, FitError, Point};
pub use laws::{amdahl_speedup, usl_speedup, Amdahl, Usl};
pub use plot::Figure;
pub use table::Table;
