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
//! The readers walk `serde_json::Value`s and say which field was missing when
//! a file does not have the expected shape.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::fit::Point;

/// Why a results file could not be read.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Io(PathBuf, std::io::Error),
    /// The file is not JSON.
    Json(PathBuf, serde_json::Error),
    /// The JSON lacks something this reader needs.
    Shape(PathBuf, String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(p, e) => write!(f, "cannot read {}: {e}", p.display()),
            LoadError::Json(p, e) => write!(f, "{} is not valid JSON: {e}", p.display()),
            LoadError::Shape(p, what) => write!(f, "{}: {what}", p.display()),
        }
    }
}

impl std::error::Error for LoadError {}

fn read_json(path: &Path) -> Result<Value, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::Io(path.to_owned(), e))?;
    serde_json::from_str(&text).map_err(|e| LoadError::Json(path.to_owned(), e))
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
    /// Reads `{"median", "min", "max"}`; `None` if the median is missing or null
    /// (a missing `min` or `max` falls back to the median).
    pub fn from_json(v: &Value) -> Option<Summary> {
        let median = v.get("median")?.as_f64()?;
        let or_median = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(median);
        Some(Summary {
            median,
            min: or_median("min"),
            max: or_median("max"),
        })
    }
}

/// One contender of a results file: a phase or a peer.
#[derive(Clone, Debug, PartialEq)]
pub struct Contender {
    /// Its id in the file: `"3.1.4"`, `"asyncio"`, `"crossbeam"`, ...
    pub id: String,
    /// How tables name it.
    pub label: String,
    /// `"phase"`, `"peer"`, or what the file says.
    pub kind: String,
}

impl Contender {
    /// True for one of PyLoop's phases.
    pub fn is_phase(&self) -> bool {
        self.kind == "phase"
    }
}

/// How a scenario defines one of its figures.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricDef {
    /// Key in the results.
    pub key: String,
    /// What it is.
    pub label: String,
    /// Unit: `"ns"`, `"us"`, `"1/s"`, `"%"`, `"count"`, ...
    pub unit: String,
    /// `"lower"`, `"higher"`, or anything else for no direction.
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

fn str_field(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
}

impl Results {
    /// Reads a `core.json` or `python.json`.
    pub fn load(path: impl AsRef<Path>) -> Result<Results, LoadError> {
        let path = path.as_ref();
        Results::from_json(path, &read_json(path)?)
    }

    /// Reads an already parsed document; `path` is only for messages.
    pub fn from_json(path: &Path, doc: &Value) -> Result<Results, LoadError> {
        let shape = |what: &str| LoadError::Shape(path.to_owned(), what.to_owned());
        let list = doc
            .get("contenders")
            .or_else(|| doc.get("loops"))
            .and_then(Value::as_array)
            .ok_or_else(|| shape("no 'contenders' or 'loops' list"))?;
        let contenders = list
            .iter()
            .map(|c| {
                let id = str_field(c, &["id"]).ok_or_else(|| shape("a contender without an id"))?;
                Ok(Contender {
                    label: str_field(c, &["label"]).unwrap_or_else(|| id.clone()),
                    kind: str_field(c, &["kind"]).unwrap_or_default(),
                    id,
                })
            })
            .collect::<Result<Vec<_>, LoadError>>()?;
        let scenarios = doc
            .get("scenarios")
            .and_then(Value::as_array)
            .ok_or_else(|| shape("no 'scenarios' list"))?
            .iter()
            .map(|s| {
                let key =
                    str_field(s, &["key"]).ok_or_else(|| shape("a scenario without a key"))?;
                let metrics = s
                    .get("metrics")
                    .and_then(Value::as_array)
                    .map(|ms| {
                        ms.iter()
                            .filter_map(|m| {
                                Some(MetricDef {
                                    key: str_field(m, &["key"])?,
                                    label: str_field(m, &["label", "what"]).unwrap_or_default(),
                                    unit: str_field(m, &["unit"]).unwrap_or_default(),
                                    better: str_field(m, &["better"]).unwrap_or_default(),
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let results = s
                    .get("results")
                    .and_then(Value::as_object)
                    .ok_or_else(|| shape(&format!("scenario {key} has no 'results'")))?
                    .iter()
                    .map(|(cid, per)| {
                        let figures = per
                            .as_object()
                            .map(|m| {
                                m.iter()
                                    .filter_map(|(k, v)| Some((k.clone(), Summary::from_json(v)?)))
                                    .collect()
                            })
                            .unwrap_or_default();
                        (cid.clone(), figures)
                    })
                    .collect();
                Ok(Scenario {
                    title: str_field(s, &["title"]).unwrap_or_else(|| key.clone()),
                    headline: str_field(s, &["headline"]),
                    params: s.get("params").cloned().unwrap_or(Value::Null),
                    key,
                    metrics,
                    results,
                })
            })
            .collect::<Result<Vec<_>, LoadError>>()?;
        let machine = doc.get("machine").cloned().unwrap_or(Value::Null);
        let mode = doc
            .pointer("/config/mode")
            .or_else(|| machine.get("mode"))
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        Ok(Results {
            path: path.to_owned(),
            mode,
            machine,
            contenders,
            scenarios,
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

impl Sweep {
    /// Reads this crate's sweep (schema `pyloop-model/sweep/1`).
    pub fn load(path: impl AsRef<Path>) -> Result<Sweep, LoadError> {
        let path = path.as_ref();
        Sweep::from_json(path, &read_json(path)?)
    }

    /// Reads an already parsed sweep document; `path` is only for messages.
    pub fn from_json(path: &Path, doc: &Value) -> Result<Sweep, LoadError> {
        let shape = |what: String| LoadError::Shape(path.to_owned(), what);
        if doc.get("schema").and_then(Value::as_str) != Some("pyloop-model/sweep/1") {
            return Err(shape("not a pyloop-model/sweep/1 document".into()));
        }
        let series = doc
            .get("phases")
            .and_then(Value::as_array)
            .ok_or_else(|| shape("no 'phases' list".into()))?
            .iter()
            .map(|ph| {
                let id = str_field(ph, &["phase"])
                    .ok_or_else(|| shape("a phase without a tag".into()))?;
                let title = str_field(ph, &["title"]).unwrap_or_default();
                let mut points = ph
                    .get("points")
                    .and_then(Value::as_array)
                    .ok_or_else(|| shape(format!("phase {id} has no points")))?
                    .iter()
                    .map(|p| {
                        let producers =
                            p.get("producers").and_then(Value::as_u64).ok_or_else(|| {
                                shape(format!("a point of {id} without 'producers'"))
                            })? as usize;
                        let throughput = p
                            .get("callbacks_per_s")
                            .and_then(Summary::from_json)
                            .ok_or_else(|| {
                                shape(format!("{id} at {producers}: no callbacks_per_s"))
                            })?;
                        let opt = |k: &str| p.get(k).and_then(Summary::from_json);
                        Ok(ScalingPoint {
                            producers,
                            throughput,
                            hold_share: opt("hold_share"),
                            push_wait_share: opt("push_wait_share"),
                            contended_pct: opt("contended_pct"),
                        })
                    })
                    .collect::<Result<Vec<_>, LoadError>>()?;
                points.sort_by_key(|p| p.producers);
                Ok(ScalingSeries {
                    label: if title.is_empty() {
                        id.clone()
                    } else {
                        format!("{id} {title}")
                    },
                    id,
                    points,
                })
            })
            .collect::<Result<Vec<_>, LoadError>>()?;
        let machine = doc.get("machine").cloned().unwrap_or(Value::Null);
        Ok(Sweep {
            path: path.to_owned(),
            source: "rust".into(),
            mode: doc
                .pointer("/config/mode")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned(),
            machine,
            config: doc.get("config").cloned().unwrap_or(Value::Null),
            background_load_pct: doc
                .pointer("/background_load_pct/whole_run")
                .and_then(Value::as_f64),
            kept_loads_pct: doc
                .pointer("/background_load_pct/per_repetition")
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default(),
            all_under_limit: doc
                .pointer("/background_load_pct/all_under_limit")
                .and_then(Value::as_bool),
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
        assert!(err.to_string().contains("'contenders' or 'loops'"), "{err}");
        let err = Sweep::from_json(Path::new("s.json"), &json!({"schema": "other"})).unwrap_err();
        assert!(err.to_string().contains("pyloop-model/sweep/1"), "{err}");
    }
}
