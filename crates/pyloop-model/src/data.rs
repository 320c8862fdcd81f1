//! Loading the results files.
//!
//! Three producers of JSON, two shapes:
//!
//! - **Benchmark results** ([`Results`]): `benchmarks/results/core.json`
//!   (schema `pyloop-benchmarks/core/1`, the Rust-level scenarios) and
//!   `benchmarks/results/python.json` (the Python-level benchmarks). Both are a
//!   list of scenarios, each with its metric definitions and, per contender
//!   (phase or peer), per metric, a `{median, min, max, ...}` summary over
//!   repetitions. Contenders are listed under `contenders` in the first and
//!   `loops` in the second; a metric is described by `what` in the first and
//!   `label` in the second.
//! - **Scaling sweeps** ([`Sweep`]): this crate's producer sweep
//!   (`crates/pyloop-model/results/sweep.json`, schema `pyloop-model/sweep/1`,
//!   see [`crate::sweep`]), and the `scaling` scenario of the Python results
//!   (its `cb_per_s_<N>` metrics), read by [`Sweep::from_python`].
//!
//! The files are read with serde's derive into private mirror types (`File*`),
//! whose `alias`es and defaults cover the differences between the two
//! benchmark shapes, then turned into the public types below. A file of the
//! wrong shape is an error that names the missing or mistyped field.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::fit::Point;

/// Why a results file could not be read.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Io(PathBuf, std::io::Error),
    /// The file is not JSON, or a field is missing or has the wrong type.
    Json(PathBuf, serde_json::Error),
    /// The JSON lacks something this reader needs.
    Shape(PathBuf, String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(p, e) => write!(f, "cannot read {}: {e}", p.display()),
            LoadError::Json(p, e) => write!(
                f,
                "{} is not a results file of this shape: {e}",
                p.display()
            ),
            LoadError::Shape(p, what) => write!(f, "{}: {what}", p.display()),
        }
    }
}

impl std::error::Error for LoadError {}

fn read_json(path: &Path) -> Result<Value, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::Io(path.to_owned(), e))?;
    serde_json::from_str(&text).map_err(|e| LoadError::Json(path.to_owned(), e))
}

/// Deserialises `doc` into `T`; `path` is only for messages.
fn parse<T: DeserializeOwned>(path: &Path, doc: &Value) -> Result<T, LoadError> {
    T::deserialize(doc).map_err(|e| LoadError::Json(path.to_owned(), e))
}

/// A figure as the files write it: `{"median", "min", "max", ...}` (also
/// `reps` or `values`, `n`, which are not read). The median may be null.
#[derive(Deserialize)]
struct FileSummary {
    median: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
}

impl FileSummary {
    /// `None` if the median is null or missing; a missing `min` or `max`
    /// falls back to the median.
    fn summary(&self) -> Option<Summary> {
        let median = self.median?;
        Some(Summary {
            median,
            min: self.min.unwrap_or(median),
            max: self.max.unwrap_or(median),
        })
    }
}

/// A figure summarised over repetitions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Median over the kept repetitions.
    pub median: f64,
    /// Smallest repetition.
    pub min: f64,
    /// Largest repetition.
    pub max: f64,
}

impl Summary {
    /// Reads `{"median", "min", "max"}`; `None` if it is not such an object or
    /// its median is missing or null (a missing `min` or `max` falls back to
    /// the median).
    pub fn from_json(v: &Value) -> Option<Summary> {
        FileSummary::deserialize(v).ok()?.summary()
    }
}

/// One contender of a results file: a phase or a peer.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(from = "FileContender")]
pub struct Contender {
    /// Its id in the file: `"3.1.4"`, `"asyncio"`, `"crossbeam"`, ...
    pub id: String,
    /// How tables name it.
    pub label: String,
    /// `"phase"`, `"peer"`, or what the file says.
    pub kind: String,
}

/// A contender as written: `label` and `kind` may be missing.
#[derive(Deserialize)]
struct FileContender {
    id: String,
    label: Option<String>,
    #[serde(default)]
    kind: String,
}

impl From<FileContender> for Contender {
    fn from(c: FileContender) -> Self {
        Contender {
            label: c.label.unwrap_or_else(|| c.id.clone()),
            kind: c.kind,
            id: c.id,
        }
    }
}

impl Contender {
    /// True for one of PyLoop's phases.
    pub fn is_phase(&self) -> bool {
        self.kind == "phase"
    }
}

/// How a scenario defines one of its figures.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct MetricDef {
    /// Key in the results.
    pub key: String,
    /// What it is (`label` in `python.json`, `what` in `core.json`).
    #[serde(default, alias = "what")]
    pub label: String,
    /// Unit: `"ns"`, `"us"`, `"1/s"`, `"%"`, `"count"`, ...
    #[serde(default)]
    pub unit: String,
    /// `"lower"`, `"higher"`, or anything else for no direction.
    #[serde(default)]
    pub better: String,
}

/// One scenario of a results file.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Its key, e.g. `"contention"`.
    pub key: String,
    /// Its title.
    pub title: String,
    /// The metric its summary tables lead with, if the file names one.
    pub headline: Option<String>,
    /// Its parameters (sizes), as written.
    pub params: Value,
    /// Its figures, in the file's order.
    pub metrics: Vec<MetricDef>,
    /// contender id → metric key → summary (metrics whose median is null are left out).
    pub results: BTreeMap<String, BTreeMap<String, Summary>>,
}

impl Scenario {
    /// The definition of metric `key`.
    pub fn metric(&self, key: &str) -> Option<&MetricDef> {
        self.metrics.iter().find(|m| m.key == key)
    }

    /// The summary of `metric` for `contender`.
    pub fn get(&self, contender: &str, metric: &str) -> Option<Summary> {
        self.results.get(contender)?.get(metric).copied()
    }
}

/// A benchmark results file: `core.json` or `python.json`.
#[derive(Clone, Debug, PartialEq)]
pub struct Results {
    /// Where it was read from.
    pub path: PathBuf,
    /// `"full"`, `"quick"`, `"smoke"` (from `config.mode`, else `machine.mode`).
    pub mode: String,
    /// The machine record, as written.
    pub machine: Value,
    /// The contenders, in the file's order.
    pub contenders: Vec<Contender>,
    /// The scenarios, in the file's order.
    pub scenarios: Vec<Scenario>,
}

/// A scenario as written.
#[derive(Deserialize)]
struct FileScenario {
    key: String,
    title: Option<String>,
    headline: Option<String>,
    #[serde(default)]
    params: Value,
    #[serde(default)]
    metrics: Vec<MetricDef>,
    /// contender id → metric key → figure.
    results: BTreeMap<String, BTreeMap<String, FileSummary>>,
}

impl From<FileScenario> for Scenario {
    fn from(s: FileScenario) -> Self {
        let results = s
            .results
            .into_iter()
            .map(|(id, figures)| {
                let figures = figures
                    .into_iter()
                    .filter_map(|(key, f)| Some((key, f.summary()?)))
                    .collect();
                (id, figures)
            })
            .collect();
        Scenario {
            title: s.title.unwrap_or_else(|| s.key.clone()),
            headline: s.headline,
            params: s.params,
            key: s.key,
            metrics: s.metrics,
            results,
        }
    }
}

/// `{"mode": ...}`, as `config` and `machine` carry it.
#[derive(Deserialize, Default)]
struct FileMode {
    mode: Option<String>,
}

/// `core.json` (`contenders`) or `python.json` (`loops`).
#[derive(Deserialize)]
struct FileResults {
    #[serde(alias = "loops")]
    contenders: Vec<Contender>,
    scenarios: Vec<FileScenario>,
    #[serde(default)]
    machine: Value,
    #[serde(default)]
    config: FileMode,
}

impl Results {
    /// Reads a `core.json` or `python.json`.
    pub fn load(path: impl AsRef<Path>) -> Result<Results, LoadError> {
        let path = path.as_ref();
        Results::from_json(path, &read_json(path)?)
    }

    /// Reads an already parsed document; `path` is only for messages.
    pub fn from_json(path: &Path, doc: &Value) -> Result<Results, LoadError> {
        let file: FileResults = parse(path, doc)?;
        let mode = file
            .config
            .mode
            .or_else(|| FileMode::deserialize(&file.machine).ok()?.mode)
            .unwrap_or_else(|| "unknown".to_owned());
        Ok(Results {
            path: path.to_owned(),
            mode,
            machine: file.machine,
            contenders: file.contenders,
            scenarios: file.scenarios.into_iter().map(Scenario::from).collect(),
        })
    }

    /// The scenario `key`.
    pub fn scenario(&self, key: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.key == key)
    }

    /// The summary of `metric` in `scenario` for `contender`.
    pub fn get(&self, scenario: &str, contender: &str, metric: &str) -> Option<Summary> {
        self.scenario(scenario)?.get(contender, metric)
    }

    /// The contender `id`.
    pub fn contender(&self, id: &str) -> Option<&Contender> {
        self.contenders.iter().find(|c| c.id == id)
    }
}

/// One producer count of a sweep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScalingPoint {
    /// Producer threads.
    pub producers: usize,
    /// Callbacks per second.
    pub throughput: Summary,
    /// The consumer's lock hold / run length, if the sweep measured it.
    pub hold_share: Option<Summary>,
    /// The producers' lock wait / (producers × run length), if measured.
    pub push_wait_share: Option<Summary>,
    /// Pushes that found the lock taken, percent, if measured.
    pub contended_pct: Option<Summary>,
}

/// The sweep of one contender over producer counts.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalingSeries {
    /// Phase tag or peer id.
    pub id: String,
    /// How plots and tables name it.
    pub label: String,
    /// Its points, by increasing producer count.
    pub points: Vec<ScalingPoint>,
}

impl ScalingSeries {
    /// The medians as fitting points `(N, callbacks/s)`.
    pub fn fit_points(&self) -> Vec<Point> {
        self.points
            .iter()
            .map(|p| Point::new(p.producers as f64, p.throughput.median))
            .collect()
    }

    /// The point at `producers`, if measured.
    pub fn at(&self, producers: usize) -> Option<&ScalingPoint> {
        self.points.iter().find(|p| p.producers == producers)
    }

    /// Measured speed-up at each producer count: median throughput over the
    /// median at the smallest count.
    pub fn speedups(&self) -> Vec<(usize, f64)> {
        let Some(base) = self.points.first() else {
            return Vec::new();
        };
        self.points
            .iter()
            .map(|p| (p.producers, p.throughput.median / base.throughput.median))
            .collect()
    }
}

/// A producer sweep: one [`ScalingSeries`] per contender.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    /// Where it was read from.
    pub path: PathBuf,
    /// `"rust"` (this crate's sweep) or `"python"` (the Python benchmarks' scaling scenario).
    pub source: String,
    /// `"full"`, `"quick"`, ...
    pub mode: String,
    /// The machine record, as written.
    pub machine: Value,
    /// The configuration, as written (`params` of the scenario for Python).
    pub config: Value,
    /// CPU used by other processes during the whole run, percent of all CPUs,
    /// if the file records it.
    pub background_load_pct: Option<f64>,
    /// The same during each kept repetition (empty if not recorded).
    pub kept_loads_pct: Vec<f64>,
    /// Whether every kept repetition was under the sweep's background-load
    /// limit (`None` if the file does not say).
    pub all_under_limit: Option<bool>,
    /// One series per contender, in the file's order.
    pub series: Vec<ScalingSeries>,
}

/// One producer count of a sweep, as written.
#[derive(Deserialize)]
struct FilePoint {
    producers: usize,
    callbacks_per_s: FileSummary,
    hold_share: Option<FileSummary>,
    push_wait_share: Option<FileSummary>,
    contended_pct: Option<FileSummary>,
}

/// One phase of a sweep, as written.
#[derive(Deserialize)]
struct FilePhase {
    phase: String,
    #[serde(default)]
    title: String,
    points: Vec<FilePoint>,
}

/// The background load a sweep records.
#[derive(Deserialize, Default)]
struct FileLoad {
    whole_run: Option<f64>,
    /// One per kept repetition; null where `/proc` could not be read.
    #[serde(default)]
    per_repetition: Vec<Option<f64>>,
    all_under_limit: Option<bool>,
}

/// The `schema` of a document, read before the rest.
#[derive(Deserialize)]
struct FileSchema {
    schema: Option<String>,
}

/// A sweep document (schema `pyloop-model/sweep/1`, written by [`crate::sweep`]).
#[derive(Deserialize)]
struct FileSweep {
    phases: Vec<FilePhase>,
    #[serde(default)]
    machine: Value,
    #[serde(default)]
    config: Value,
    #[serde(default)]
    background_load_pct: FileLoad,
}

impl FileSweep {
    fn config_mode(&self) -> Option<String> {
        FileMode::deserialize(&self.config).ok()?.mode
    }
}

impl Sweep {
    /// Reads this crate's sweep (schema `pyloop-model/sweep/1`).
    pub fn load(path: impl AsRef<Path>) -> Result<Sweep, LoadError> {
        let path = path.as_ref();
        Sweep::from_json(path, &read_json(path)?)
    }

    /// Reads an already parsed sweep document; `path` is only for messages.
    pub fn from_json(path: &Path, doc: &Value) -> Result<Sweep, LoadError> {
        let shape = |what: String| LoadError::Shape(path.to_owned(), what);
        let schema: FileSchema = parse(path, doc)?;
        if schema.schema.as_deref() != Some("pyloop-model/sweep/1") {
            return Err(shape("not a pyloop-model/sweep/1 document".into()));
        }
        let file: FileSweep = parse(path, doc)?;
        let mode = file.config_mode().unwrap_or_else(|| "unknown".to_owned());
        let series = file
            .phases
            .into_iter()
            .map(|phase| {
                let id = phase.phase;
                let mut points = phase
                    .points
                    .iter()
                    .map(|p| {
                        let throughput = p.callbacks_per_s.summary().ok_or_else(|| {
                            shape(format!(
                                "{id} at {}: callbacks_per_s has no median",
                                p.producers
                            ))
                        })?;
                        let opt =
                            |f: &Option<FileSummary>| f.as_ref().and_then(FileSummary::summary);
                        Ok(ScalingPoint {
                            producers: p.producers,
                            throughput,
                            hold_share: opt(&p.hold_share),
                            push_wait_share: opt(&p.push_wait_share),
                            contended_pct: opt(&p.contended_pct),
                        })
                    })
                    .collect::<Result<Vec<_>, LoadError>>()?;
                points.sort_by_key(|p| p.producers);
                Ok(ScalingSeries {
                    label: if phase.title.is_empty() {
                        id.clone()
                    } else {
                        format!("{id} {}", phase.title)
                    },
                    id,
                    points,
                })
            })
            .collect::<Result<Vec<_>, LoadError>>()?;
        let load = file.background_load_pct;
        Ok(Sweep {
            path: path.to_owned(),
            source: "rust".into(),
            mode,
            machine: file.machine,
            config: file.config,
            background_load_pct: load.whole_run,
            kept_loads_pct: load.per_repetition.into_iter().flatten().collect(),
            all_under_limit: load.all_under_limit,
            series,
        })
    }

    /// The sweep inside Python benchmark results: scenario `scaling`, metrics
    /// `cb_per_s_<N>` (and `contended_pct_<N>` for the phases). Contenders
    /// without any such figure are left out.
    pub fn from_python(results: &Results) -> Result<Sweep, LoadError> {
        let scenario = results.scenario("scaling").ok_or_else(|| {
            LoadError::Shape(results.path.clone(), "no 'scaling' scenario".into())
        })?;
        let mut series = Vec::new();
        for c in &results.contenders {
            let Some(figures) = scenario.results.get(&c.id) else {
                continue;
            };
            let mut points: Vec<ScalingPoint> = figures
                .iter()
                .filter_map(|(k, s)| {
                    let n: usize = k.strip_prefix("cb_per_s_")?.parse().ok()?;
                    Some(ScalingPoint {
                        producers: n,
                        throughput: *s,
                        hold_share: None,
                        push_wait_share: None,
                        contended_pct: figures.get(&format!("contended_pct_{n}")).copied(),
                    })
                })
                .collect();
            if points.is_empty() {
                continue;
            }
            points.sort_by_key(|p| p.producers);
            series.push(ScalingSeries {
                id: c.id.clone(),
                label: c.label.clone(),
                points,
            });
        }
        Ok(Sweep {
            path: results.path.clone(),
            source: "python".into(),
            mode: results.mode.clone(),
            machine: results.machine.clone(),
            config: scenario.params.clone(),
            background_load_pct: None,
            kept_loads_pct: Vec::new(),
            all_under_limit: None,
            series,
        })
    }

    /// The series `id`.
    pub fn series(&self, id: &str) -> Option<&ScalingSeries> {
        self.series.iter().find(|s| s.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_both_benchmark_shapes() {
        let core = json!({
            "config": {"mode": "quick"},
            "contenders": [{"id": "3.1.4", "label": "3.1.4 two-phase", "kind": "phase"},
                           {"id": "crossbeam", "kind": "peer"}],
            "scenarios": [{"key": "contention", "title": "High contention",
                "metrics": [{"key": "callbacks_per_s", "unit": "1/s", "better": "higher", "what": "cb/s"}],
                "results": {"3.1.4": {"callbacks_per_s": {"median": 2.0, "min": 1.0, "max": 3.0, "reps": [1, 2, 3]}},
                            "crossbeam": {"callbacks_per_s": {"median": null}}}}]
        });
        let r = Results::from_json(Path::new("core.json"), &core).unwrap();
        assert_eq!(r.mode, "quick");
        assert_eq!(r.contenders[1].label, "crossbeam");
        assert!(r.contender("3.1.4").unwrap().is_phase());
        let s = r.get("contention", "3.1.4", "callbacks_per_s").unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(r.get("contention", "crossbeam", "callbacks_per_s"), None);
        assert_eq!(
            r.scenario("contention")
                .unwrap()
                .metric("callbacks_per_s")
                .unwrap()
                .label,
            "cb/s"
        );

        let python = json!({
            "config": {"mode": "full"},
            "loops": [{"id": "asyncio", "label": "asyncio", "kind": "peer"},
                      {"id": "3.1.1", "label": "pyloop 3.1.1", "kind": "phase"}],
            "scenarios": [{"key": "scaling", "params": {"total": 16},
                "metrics": [{"key": "cb_per_s_1", "label": "1 producer", "unit": "1/s", "better": "higher"}],
                "results": {
                    "asyncio": {"cb_per_s_1": {"median": 10.0, "min": 9.0, "max": 11.0},
                                "cb_per_s_2": {"median": 9.0, "min": 9.0, "max": 9.0}},
                    "3.1.1": {"cb_per_s_2": {"median": 20.0, "min": 20.0, "max": 20.0},
                              "cb_per_s_1": {"median": 30.0, "min": 30.0, "max": 30.0},
                              "contended_pct_2": {"median": 5.0, "min": 5.0, "max": 5.0}}}}]
        });
        let r = Results::from_json(Path::new("python.json"), &python).unwrap();
        let sweep = Sweep::from_python(&r).unwrap();
        assert_eq!(sweep.source, "python");
        assert_eq!(sweep.series.len(), 2);
        let p = sweep.series("3.1.1").unwrap();
        assert_eq!(p.points[0].producers, 1);
        assert_eq!(p.points[1].contended_pct.unwrap().median, 5.0);
        assert_eq!(p.speedups(), vec![(1, 1.0), (2, 20.0 / 30.0)]);
        assert_eq!(p.fit_points()[1], Point::new(2, 20.0));
    }

    #[test]
    fn says_what_is_missing() {
        let err = Results::from_json(Path::new("x.json"), &json!({"scenarios": []})).unwrap_err();
        assert!(
            err.to_string().contains("missing field `contenders`"),
            "{err}"
        );
        let err = Sweep::from_json(Path::new("s.json"), &json!({"schema": "other"})).unwrap_err();
        assert!(err.to_string().contains("pyloop-model/sweep/1"), "{err}");
        let no_phases = json!({"schema": "pyloop-model/sweep/1"});
        let err = Sweep::from_json(Path::new("s.json"), &no_phases).unwrap_err();
        assert!(err.to_string().contains("missing field `phases`"), "{err}");
        let bad_point = json!({"schema": "pyloop-model/sweep/1", "phases": [{"phase": "3.1.1",
            "points": [{"producers": 1, "callbacks_per_s": {"median": null}}]}]});
        let err = Sweep::from_json(Path::new("s.json"), &bad_point).unwrap_err();
        assert!(
            err.to_string()
                .contains("3.1.1 at 1: callbacks_per_s has no median"),
            "{err}"
        );
    }
}
