//! The committed results load, and the analysis runs on them: the sweep this
//! crate publishes, and the benchmark results the notebooks compare against.

use pyloop_core::Phase;
use pyloop_model::analysis::{fit_sweep, fit_table, CORE_HEADLINES};
use pyloop_model::run::{committed_core, committed_python, committed_sweep};
use pyloop_model::{Results, Sweep};

#[test]
fn the_committed_sweep_loads_and_fits() {
    let sweep = Sweep::load(committed_sweep()).expect("crates/pyloop-model/results/sweep.json");
    assert_eq!(sweep.source, "rust");
    assert_eq!(sweep.mode, "full", "the committed sweep is a full run");
    // every phase the sweep knew, each at 1..16 producers
    assert!(sweep.series.len() >= 5);
    for phase in &Phase::ALL[..5] {
        let s = sweep
            .series(phase.tag())
            .unwrap_or_else(|| panic!("{phase} missing"));
        let ns: Vec<usize> = s.points.iter().map(|p| p.producers).collect();
        assert_eq!(ns, [1, 2, 4, 8, 16], "{phase}");
        for p in &s.points {
            assert!(p.throughput.median > 0.0);
            assert!(
                p.throughput.min <= p.throughput.median && p.throughput.median <= p.throughput.max
            );
            let hold = p.hold_share.expect("hold share").median;
            assert!((0.0..=1.0).contains(&hold), "{phase}: {hold}");
        }
    }
    let fits = fit_sweep(&sweep);
    for f in &fits {
        let a = f.amdahl.as_ref().expect("an Amdahl fit");
        let u = f.usl.as_ref().expect("a USL fit");
        assert!((0.0..=1.0).contains(&a.model.serial));
        assert!((0.0..=1.0).contains(&u.model.sigma) && u.model.kappa >= 0.0);
        assert!(f.from_counters.is_some());
    }
    assert_eq!(fit_table(&fits).rows.len(), sweep.series.len());
}

#[test]
fn the_committed_core_results_load() {
    let path = committed_core();
    let core = Results::load(&path).expect("benchmarks/results/core.json");
    assert!(core.contenders.iter().any(|c| c.id == "3.1.4"));
    for (scenario, metric) in CORE_HEADLINES {
        let s = core
            .get(scenario, "3.1.4", metric)
            .unwrap_or_else(|| panic!("{scenario}/{metric} missing for 3.1.4"));
        assert!(s.median.is_finite(), "{scenario}/{metric}");
    }
}

#[test]
fn the_committed_python_results_load_if_published() {
    let path = committed_python();
    if !path.is_file() {
        eprintln!("{} not committed yet: nothing to load", path.display());
        return;
    }
    let results = Results::load(&path).expect("benchmarks/results/python.json");
    assert!(results.contenders.iter().any(|c| c.id == "asyncio"));
    let sweep = Sweep::from_python(&results).expect("its scaling scenario");
    assert!(sweep.series("asyncio").is_some());
    assert!(sweep.series.iter().all(|s| s.points.len() >= 3));
}
