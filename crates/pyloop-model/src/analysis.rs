//! The analysis the notebooks and the book show: both laws fitted to each
//! series of a sweep, the summary's model beside them, and the tables.

use crate::data::{Results, ScalingSeries, Sweep};
use crate::fit::{fit_amdahl, fit_usl, Fit, FitError};
use crate::laws::{amdahl_speedup, Amdahl, Usl};
use crate::table::{fmt_rate, fmt_sig, Table};

/// The figures of `core.json` that notebook 02 sets side by side, as
/// `(scenario, metric)`: one per scenario.
pub const CORE_HEADLINES: [(&str, &str); 7] = [
    ("single", "total_ns"),
    ("registration", "pushes_per_s"),
    ("contention", "callbacks_per_s"),
    ("latency", "p99_ns"),
    ("mixed", "ops_per_s"),
    ("wakeup", "p50_ns"),
    ("lock_hold", "hold_mean_ns"),
];

/// The `(scenario, metric)` pairs to show from a results file: each
/// scenario's headline metric when the file names one, else its first.
pub fn headlines(results: &Results) -> Vec<(String, String)> {
    results
        .scenarios
        .iter()
        .filter_map(|s| {
            let m = s
                .headline
                .clone()
                .or_else(|| s.metrics.first().map(|m| m.key.clone()))?;
            Some((s.key.clone(), m))
        })
        .collect()
}

/// Both laws fitted to one series, and the summary's way of getting `S`.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesFit {
    /// The measurements.
    pub series: ScalingSeries,
    /// Amdahl's law fitted to the medians.
    pub amdahl: Result<Fit<Amdahl>, FitError>,
    /// The USL fitted to the medians.
    pub usl: Result<Fit<Usl>, FitError>,
    /// The summary's model: `S` = the consumer's lock hold / run length,
    /// measured by the counters with one producer, and `X(1)` measured; `None`
    /// when the series has no counters (a peer, or the Python sweep).
    pub from_counters: Option<Amdahl>,
}

impl SeriesFit {
    /// Fits both laws to `series`.
    pub fn new(series: &ScalingSeries) -> SeriesFit {
        let points = series.fit_points();
        let from_counters = series.points.first().and_then(|p| {
            Some(Amdahl {
                x1: p.throughput.median,
                serial: p.hold_share?.median.clamp(0.0, 1.0),
            })
        });
        SeriesFit {
            series: series.clone(),
            amdahl: fit_amdahl(&points),
            usl: fit_usl(&points),
            from_counters,
        }
    }
}

/// Fits every series of `sweep`.
pub fn fit_sweep(sweep: &Sweep) -> Vec<SeriesFit> {
    sweep.series.iter().map(SeriesFit::new).collect()
}

/// The summary's model as it used it: speed-up `1 / (S + (1 − S)/N)` at the
/// given worker counts for `S = 0.5` ("3.1.3") and `S = 0.1` ("3.1.4"), and the
/// ratio it read as the gain of 3.1.4.
pub fn summary_model_table(ns: &[usize]) -> Table {
    let mut t = Table::new([
        "N threads",
        "S = 0.5 (\"3.1.3\")",
        "S = 0.1 (\"3.1.4\")",
        "ratio",
    ])
    .titled("The summary's model: Amdahl speed-up with S = lock hold / total");
    for &n in ns {
        let (a, b) = (amdahl_speedup(0.5, n as f64), amdahl_speedup(0.1, n as f64));
        t.push([
            n.to_string(),
            format!("{a:.2}×"),
            format!("{b:.2}×"),
            format!("{:.2}", b / a),
        ]);
    }
    t.note("S = 50 µs / 100 µs and 10 µs / 100 µs: round figures, not measurements.");
    t
}

fn or_dash<T, E>(r: &Result<T, E>, f: impl Fn(&T) -> String) -> String {
    r.as_ref().map(f).unwrap_or_else(|_| "–".into())
}

/// Per series: throughput with one producer, the best measured speed-up, the
/// summary's `S` from the counters, the fitted Amdahl `S`, the fitted USL `σ`,
/// `κ` and peak, and each fit's RMS relative error.
pub fn fit_table(fits: &[SeriesFit]) -> Table {
    let mut t = Table::new([
        "series",
        "X(1) callbacks/s",
        "best speed-up",
        "S from counters",
        "Amdahl S",
        "Amdahl error",
        "USL σ",
        "USL κ",
        "USL peak N",
        "USL error",
    ]);
    for f in fits {
        let s = &f.series;
        let x1 = s
            .points
            .first()
            .map(|p| p.throughput.median)
            .unwrap_or(f64::NAN);
        let best = s
            .speedups()
            .into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(n, v)| format!("{v:.2}× at {n}"))
            .unwrap_or_else(|| "–".into());
        t.push([
            s.label.clone(),
            fmt_rate(x1),
            best,
            f.from_counters
                .map(|a| format!("{:.3}", a.serial))
                .unwrap_or_else(|| "–".into()),
            or_dash(&f.amdahl, |a| format!("{:.3}", a.model.serial)),
            or_dash(&f.amdahl, |a| format!("{:.1} %", 100.0 * a.rms_rel_error)),
            or_dash(&f.usl, |u| format!("{:.3}", u.model.sigma)),
            or_dash(&f.usl, |u| fmt_sig(u.model.kappa, 2)),
            or_dash(&f.usl, |u| {
                let n = u.model.peak_n();
                if n.is_finite() {
                    format!("{n:.1}")
                } else {
                    "∞".into()
                }
            }),
            or_dash(&f.usl, |u| format!("{:.1} %", 100.0 * u.rms_rel_error)),
        ]);
    }
    t
}

/// Per series and producer count: median callbacks/s, speed-up over one
/// producer, the consumer's lock-hold share, the producers' lock-wait share,
/// and the share of pushes that found the lock taken.
pub fn counters_table(sweep: &Sweep) -> Table {
    let mut t = Table::new([
        "series",
        "producers",
        "callbacks/s",
        "speed-up",
        "lock hold share",
        "push wait share",
        "contended pushes",
    ]);
    let pct = |s: Option<crate::data::Summary>| {
        s.map(|s| format!("{:.1} %", 100.0 * s.median))
            .unwrap_or_else(|| "–".into())
    };
    for s in &sweep.series {
        let base = s.points.first().map(|p| p.throughput.median);
        for p in &s.points {
            t.push([
                s.label.clone(),
                p.producers.to_string(),
                fmt_rate(p.throughput.median),
                base.map(|b| format!("{:.2}×", p.throughput.median / b))
                    .unwrap_or_default(),
                pct(p.hold_share),
                pct(p.push_wait_share),
                p.contended_pct
                    .map(|c| format!("{:.1} %", c.median))
                    .unwrap_or_else(|| "–".into()),
            ]);
        }
    }
    t
}

/// One metric of one scenario, side by side from two results files (typically
/// a quick run just made and the committed full run): medians with their
/// ranges, and the ratio of the medians. Contenders are those of `first`.
pub fn compare_table(
    scenario: &str,
    metric: &str,
    first: (&str, &Results),
    second: Option<(&str, &Results)>,
) -> Table {
    let (first_name, a) = first;
    let mut headers = vec!["contender".to_owned(), first_name.to_owned()];
    if let Some((name, _)) = second {
        headers.push(name.to_owned());
        headers.push(format!("{first_name} / {name}"));
    }
    let def = a.scenario(scenario).and_then(|s| s.metric(metric));
    let title = match def {
        Some(d) => format!(
            "{scenario}: {metric} ({}, {}; better: {})",
            d.label, d.unit, d.better
        ),
        None => format!("{scenario}: {metric}"),
    };
    let mut t = Table::new(headers).titled(title);
    let cell = |s: Option<crate::data::Summary>| {
        s.map(|s| {
            format!(
                "{} [{}–{}]",
                fmt_sig(s.median, 3),
                fmt_sig(s.min, 3),
                fmt_sig(s.max, 3)
            )
        })
        .unwrap_or_else(|| "–".into())
    };
    for c in &a.contenders {
        let x = a.get(scenario, &c.id, metric);
        let mut row = vec![c.label.clone(), cell(x)];
        if let Some((_, b)) = second {
            let y = b.get(scenario, &c.id, metric);
            row.push(cell(y));
            row.push(match (x, y) {
                (Some(x), Some(y)) if y.median != 0.0 => format!("{:.2}", x.median / y.median),
                _ => "–".into(),
            });
        }
        t.push(row);
    }
    t.note("median [min–max] over repetitions");
    t
}

/// One metric of one scenario for every contender of `results`, with the
/// ratio to `reference` (for example `"asyncio"`), "times better" by the
/// metric's direction.
pub fn versus_table(results: &Results, scenario: &str, metric: &str, reference: &str) -> Table {
    let def = results.scenario(scenario).and_then(|s| s.metric(metric));
    let higher = def.map(|d| d.better == "higher").unwrap_or(false);
    let title = match def {
        Some(d) => format!("{scenario}: {} ({})", d.label, d.unit),
        None => format!("{scenario}: {metric}"),
    };
    let mut t = Table::new([
        "loop",
        "median",
        "min",
        "max",
        &format!("× better than {reference}"),
    ])
    .titled(title);
    let base = results.get(scenario, reference, metric);
    for c in &results.contenders {
        let Some(s) = results.get(scenario, &c.id, metric) else {
            continue;
        };
        let ratio = base.filter(|b| b.median > 0.0 && s.median > 0.0).map(|b| {
            if higher {
                s.median / b.median
            } else {
                b.median / s.median
            }
        });
        t.push([
            c.label.clone(),
            fmt_sig(s.median, 3),
            fmt_sig(s.min, 3),
            fmt_sig(s.max, 3),
            ratio
                .map(|r| format!("{r:.2}"))
                .unwrap_or_else(|| "–".into()),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{ScalingPoint, Summary};

    fn series(xs: &[(usize, f64)], hold: Option<f64>) -> ScalingSeries {
        let s = |v| Summary {
            median: v,
            min: v,
            max: v,
        };
        ScalingSeries {
            id: "t".into(),
            label: "test".into(),
            points: xs
                .iter()
                .map(|&(n, x)| ScalingPoint {
                    producers: n,
                    throughput: s(x),
                    hold_share: hold.map(s),
                    push_wait_share: None,
                    contended_pct: None,
                })
                .collect(),
        }
    }

    #[test]
    fn fits_and_tables() {
        let u = Usl {
            lambda: 1e6,
            sigma: 0.2,
            kappa: 0.01,
        };
        let xs: Vec<(usize, f64)> = [1, 2, 4, 8, 16]
            .iter()
            .map(|&n| (n, u.throughput(n as f64)))
            .collect();
        let f = SeriesFit::new(&series(&xs, Some(0.25)));
        let fit = f.usl.as_ref().unwrap();
        assert!((fit.model.sigma - 0.2).abs() < 1e-6, "{fit:?}");
        assert_eq!(f.from_counters.unwrap().serial, 0.25);
        let t = fit_table(std::slice::from_ref(&f));
        assert_eq!(t.rows.len(), 1);
        assert_eq!(t.rows[0][3], "0.250");
        assert_eq!(t.rows[0][6], "0.200");
        let md = summary_model_table(&[10]).to_markdown();
        assert!(md.contains("| 10 | 1.82× | 5.26× | 2.89 |"), "{md}");
    }

    #[test]
    fn a_series_too_short_to_fit_shows_dashes() {
        let f = SeriesFit::new(&series(&[(1, 5.0), (2, 6.0)], None));
        assert!(f.amdahl.is_ok());
        assert!(f.usl.is_err());
        let t = fit_table(&[f]);
        assert_eq!(t.rows[0][6], "–");
        assert_eq!(t.rows[0][3], "–");
    }
}
