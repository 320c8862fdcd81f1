//! The book's generated files that this crate draws, made from committed
//! results and from source only:
//!
//! - the diagrams of [`crate::diagram`]: `diagram_data_path.svg`,
//!   `diagram_lost_wake_up.svg`, `diagram_gil_deadlock.svg`;
//! - for the Amdahl chapter, `amdahl_fit.md`: the fitted parameters per phase (serial fraction, USL σ
//!   and κ, ...) from the Rust-level sweep, and from the Python sweep when
//!   `benchmarks/results/python.json` is there, with where they were measured
//!   (six columns, for the chapter), and `amdahl_fit_full.md`, every column and
//!   the counters at each producer count (for the appendix);
//! - `amdahl_scaling.svg`: measured throughput and both fits, per phase;
//! - `amdahl_speedup.svg`: the summary's model beside the measured speed-ups;
//! - `amdahl_python.svg`: the Python sweep, when there is one.
//!
//! `cargo run -p pyloop-model --bin amdahl_book -- --out book/src/generated`
//! writes them; `scripts/test.sh tables` reruns it and fails if the committed
//! files differ. The output depends only on the input files (no dates, no
//! machine-dependent rounding beyond `f64`), so it is the same on every machine.

use std::error::Error;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::analysis::{counters_table, fit_sweep, fit_table, summary_model_table, SeriesFit};
use crate::data::{Results, Sweep};
use crate::diagram;
use crate::plot::{scaling_figure, speedup_figure, Figure};
use crate::table::Table;

fn provenance(sweep: &Sweep, rel_path: &str) -> String {
    let m = &sweep.machine;
    let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
    let cpus = m
        .get("logical_cpus")
        .or_else(|| m.get("cpu_count"))
        .and_then(Value::as_u64)
        .map(|c| c.to_string())
        .unwrap_or_else(|| "?".into());
    let commit = s("git_commit");
    let short = commit.get(..10).unwrap_or(&commit);
    let lo = sweep
        .kept_loads_pct
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let hi = sweep.kept_loads_pct.iter().copied().fold(0.0, f64::max);
    let limit = sweep
        .config
        .get("max_background_pct")
        .and_then(Value::as_f64);
    let load = match (
        sweep.kept_loads_pct.is_empty(),
        limit,
        sweep.all_under_limit,
    ) {
        (false, Some(limit), Some(false)) => format!(
            " The machine was busy: no {} repetitions with other processes under {limit:.0} % \
of the CPUs could be had in time, so the least disturbed were kept ({lo:.0}–{hi:.0} %).",
            sweep.kept_loads_pct.len()
        ),
        (false, _, _) => format!(
            " Other processes used {lo:.0}–{hi:.0} % of the CPUs during the kept repetitions."
        ),
        (true, _, _) => sweep
            .background_load_pct
            .map(|l| format!(" Other processes used {l:.0} % of the CPUs meanwhile."))
            .unwrap_or_default(),
    };
    format!(
        "From `{rel_path}` ({} mode): {} logical CPUs ({}), {}, commit {short}, {}.{load}",
        sweep.mode,
        cpus,
        s("cpu_model"),
        s("rustc"),
        m.get("date_utc")
            .or_else(|| m.get("date"))
            .and_then(Value::as_str)
            .unwrap_or("date not recorded")
    )
}

/// The columns of [`fit_table`] the chapter shows (by header): six, so that
/// the table fits the book's text column.
const FIT_COLUMNS: &[&str] = &[
    "series",
    "S from counters",
    "Amdahl S",
    "USL σ",
    "USL κ",
    "USL peak N",
];

/// `table` with only the columns whose headers are in `keep`, in `keep`'s order.
fn columns(table: &Table, keep: &[&str]) -> Table {
    let index: Vec<usize> = keep
        .iter()
        .filter_map(|k| table.headers.iter().position(|h| h == k))
        .collect();
    let pick = |row: &Vec<String>| index.iter().map(|&i| row[i].clone()).collect::<Vec<_>>();
    Table {
        title: table.title.clone(),
        headers: pick(&table.headers),
        rows: table.rows.iter().map(pick).collect(),
        right: index.iter().map(|&i| table.right[i]).collect(),
        notes: table.notes.clone(),
    }
}

/// The Rust-level speed-ups of each series, for [`speedup_figure`].
fn measured_speedups(fits: &[SeriesFit], prefix: &str) -> Vec<(String, Vec<(usize, f64)>)> {
    fits.iter()
        .map(|f| (format!("{prefix}{}", f.series.id), f.series.speedups()))
        .collect()
}

/// The figure comparing the summary's model with measured speed-ups.
pub fn summary_vs_measured(rust: &[SeriesFit], python: Option<&[SeriesFit]>) -> Figure {
    let mut measured = measured_speedups(rust, "measured, Rust ");
    if let Some(p) = python {
        // Only the phases: the peers' curves would crowd the plot.
        let phases: Vec<SeriesFit> = p
            .iter()
            .filter(|f| f.series.id.starts_with("3."))
            .cloned()
            .collect();
        // The default phase, not the best of six: they do the same work from
        // Python but for the queue, and the best of six noisy curves flatters.
        // (A results file older than the default phase: its newest phase.)
        let default = pyloop_core::Phase::DEFAULT.tag();
        let chosen = phases
            .iter()
            .find(|f| f.series.id == default)
            .or(phases.last());
        if let Some(series) = chosen {
            let what = if series.series.id == default {
                "the default phase"
            } else {
                "the newest phase measured"
            };
            measured.push((
                format!("measured, Python {} ({what})", series.series.id),
                series.series.speedups(),
            ));
        }
    }
    speedup_figure(
        "Amdahl's law as the summary used it, and measured speed-ups",
        &[("\"3.1.3\"".into(), 0.5), ("\"3.1.4\"".into(), 0.1)],
        Some(2),
        &measured,
    )
}

/// Writes the diagrams into `out_dir`. Returns the files written.
pub fn write_diagrams(out_dir: &Path) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    std::fs::create_dir_all(out_dir)?;
    let mut written = Vec::new();
    for (name, svg) in [
        ("diagram_data_path.svg", diagram::data_path()),
        ("diagram_lost_wake_up.svg", diagram::lost_wake_up()),
        ("diagram_gil_deadlock.svg", diagram::gil_deadlock()),
    ] {
        let path = out_dir.join(name);
        std::fs::write(&path, svg)?;
        written.push(path);
    }
    Ok(written)
}

/// Writes the diagrams and the Amdahl chapter's files into `out_dir`, from the
/// committed sweep at `sweep_path` and, if it exists, the Python results at
/// `python_path`. Paths in the text are shown relative to `root`. Returns the
/// files written.
pub fn write(
    root: &Path,
    sweep_path: &Path,
    python_path: Option<&Path>,
    out_dir: &Path,
) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let rel = |p: &Path| {
        p.strip_prefix(root)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    let mut written = write_diagrams(out_dir)?;
    let sweep = Sweep::load(sweep_path)?;
    let fits = fit_sweep(&sweep);
    let python = match python_path {
        Some(p) if p.is_file() => {
            let sweep = Sweep::from_python(&Results::load(p)?)?;
            let fits = fit_sweep(&sweep);
            Some((sweep, fits))
        }
        _ => None,
    };

    // Two versions: the chapter's, whose tables keep to six columns so that they
    // fit the text column, and the appendix's, with every column.
    let head =
        "<!-- generated by `cargo run -p pyloop-model --bin amdahl_book`: do not edit -->\n\n";
    let mut md = String::from(head);
    let mut full = String::from(head);
    let fit_notes = format!(
        "\n{} Producers {}, {} callbacks per run, producer work {} ns per item, callback work {} ns; medians of {} repetitions. \
*S from counters* is the summary's definition (the consumer's lock hold / run length, one producer); \
*Amdahl S* and *USL σ, κ* are least-squares fits to the medians; *error* is the RMS relative residual.\n",
        provenance(&sweep, &rel(sweep_path)),
        sweep.config.get("producers").cloned().unwrap_or(Value::Null),
        sweep.config.get("total_callbacks").cloned().unwrap_or(Value::Null),
        sweep.config.get("produce_ns").cloned().unwrap_or(Value::Null),
        sweep.config.get("callback_ns").cloned().unwrap_or(Value::Null),
        sweep.config.get("repetitions").cloned().unwrap_or(Value::Null),
    );
    md.push_str(&summary_model_table(&[2, 4, 10, 16]).to_markdown());
    let rust_title = "\n**Fitted to the Rust-level sweep** (real parallel producers, no GIL)\n\n";
    md.push_str(rust_title);
    full.push_str(rust_title);
    let fit = fit_table(&fits);
    md.push_str(&columns(&fit, FIT_COLUMNS).to_markdown());
    full.push_str(&fit.to_markdown());
    md.push_str(&fit_notes);
    md.push_str(" Every column, and the counters at each producer count, are in the [appendix](appendix/core-tables.md#the-producer-sweep).\n");
    full.push_str(&fit_notes);
    full.push_str("\n**The counters at each producer count** (Rust-level sweep)\n\n");
    full.push_str(&counters_table(&sweep).to_markdown());
    if let Some((ps, pf)) = &python {
        let title = "\n**Fitted to the Python sweep** (`call_soon_threadsafe` from 1–16 threads; \
the GIL lets one producer run at a time)\n\n";
        md.push_str(title);
        full.push_str(title);
        let fit = fit_table(pf);
        md.push_str(&columns(&fit, FIT_COLUMNS).to_markdown());
        full.push_str(&fit.to_markdown());
        let from = format!(
            "\nFrom `{}` ({} mode), scenario `scaling`.\n",
            rel(&ps.path),
            ps.mode
        );
        md.push_str(&from);
        full.push_str(&from);
        md.push_str(
            "\n![Callbacks/s against Python producer threads, per loop, with both fits]\
(generated/amdahl_python.svg)\n",
        );
    }
    let full_path = out_dir.join("amdahl_fit_full.md");
    std::fs::write(&full_path, full)?;
    written.push(full_path);
    let md_path = out_dir.join("amdahl_fit.md");
    std::fs::write(&md_path, md)?;
    written.push(md_path);

    let scaling = out_dir.join("amdahl_scaling.svg");
    scaling_figure(
        "Rust-level sweep: callbacks/s against producer threads, per phase",
        &fits,
    )
    .save(&scaling)?;
    written.push(scaling);

    let speedup = out_dir.join("amdahl_speedup.svg");
    summary_vs_measured(&fits, python.as_ref().map(|(_, f)| f.as_slice())).save(&speedup)?;
    written.push(speedup);

    if let Some((_, pf)) = &python {
        let path = out_dir.join("amdahl_python.svg");
        scaling_figure(
            "Python sweep: callbacks/s against producer threads (GIL: producers take turns)",
            pf,
        )
        .save(&path)?;
        written.push(path);
    } else {
        // No Python results: leave no stale figure behind.
        let stale = out_dir.join("amdahl_python.svg");
        if stale.is_file() {
            std::fs::remove_file(stale)?;
        }
    }
    Ok(written)
}
