//! Plots, drawn with `plotters` into SVG: saved to a file for the book, or
//! shown inline in an evcxr notebook through plotters' own evcxr helper
//! ([`plotters::evcxr::evcxr_figure`]).
//!
//! Every plot is a [`Figure`]: a size and a drawing function over owned data.
//! A notebook cell whose last value is a `Figure` shows it (evcxr calls
//! [`Figure::evcxr_display`]); [`Figure::save`] writes the same SVG to a file.

use std::error::Error;
use std::path::Path;
use std::sync::Arc;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::analysis::SeriesFit;
use crate::laws::amdahl_speedup;

type DrawResult = Result<(), Box<dyn Error>>;
type DrawFn = dyn for<'a> Fn(DrawingArea<SVGBackend<'a>, Shift>) -> DrawResult + Send + Sync;

/// A plot: its size in pixels and how to draw it.
#[derive(Clone)]
pub struct Figure {
    size: (u32, u32),
    draw: Arc<DrawFn>,
}

impl std::fmt::Debug for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Figure({}×{})", self.size.0, self.size.1)
    }
}

impl Figure {
    /// A figure of `size` drawn by `draw`.
    pub fn new(
        size: (u32, u32),
        draw: impl for<'a> Fn(DrawingArea<SVGBackend<'a>, Shift>) -> DrawResult + Send + Sync + 'static,
    ) -> Figure {
        Figure {
            size,
            draw: Arc::new(draw),
        }
    }

    /// Width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        self.size
    }

    /// The figure as an SVG document.
    pub fn to_svg(&self) -> Result<String, Box<dyn Error>> {
        let mut buffer = String::new();
        {
            let root = SVGBackend::with_string(&mut buffer, self.size).into_drawing_area();
            (self.draw)(root)?;
        }
        Ok(buffer)
    }

    /// Writes the SVG to `path` (creating its directory).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), Box<dyn Error>> {
        let path = path.as_ref();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.to_svg()?)?;
        Ok(())
    }

    /// The figure as plotters' evcxr output.
    pub fn evcxr(&self) -> plotters::evcxr::SVGWrapper {
        let draw = self.draw.clone();
        plotters::evcxr::evcxr_figure(self.size, move |root| draw(root))
    }

    /// Shows the figure inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        self.evcxr().evcxr_display()
    }
}

/// Twelve colours, distinguishable with the common colour-vision deficiencies
/// (Okabe–Ito's eight and four of Tol's), for series that are not a contender.
pub const PALETTE: [RGBColor; 12] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(230, 159, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(136, 34, 85),
    RGBColor(0, 0, 0),
    RGBColor(153, 153, 51),
    RGBColor(68, 170, 153),
    RGBColor(170, 68, 153),
    RGBColor(127, 127, 127),
];

/// The `i`-th colour of [`PALETTE`], cycling after twelve.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The colour of a contender in every figure of the book (the same as
/// `benchmarks/bookplot.py` gives it), found by its id in `label`
/// ("3.1.4", "uvloop", "measured, Rust 3.1.4"), or `None`.
pub fn colour_for(label: &str) -> Option<RGBColor> {
    const BY_ID: [(&str, RGBColor); 12] = [
        ("3.1.1", RGBColor(204, 121, 167)),
        ("3.1.2", RGBColor(230, 159, 0)),
        ("3.1.3", RGBColor(86, 180, 233)),
        ("3.1.4", RGBColor(0, 158, 115)),
        ("3.1.5", RGBColor(136, 34, 85)),
        ("3.2.1", RGBColor(0, 0, 0)),
        ("asyncio", RGBColor(127, 127, 127)),
        ("uvloop", RGBColor(0, 114, 178)),
        ("rloop", RGBColor(213, 94, 0)),
        ("std-mpsc", RGBColor(153, 153, 51)),
        ("crossbeam", RGBColor(68, 170, 153)),
        ("swap-all", RGBColor(170, 68, 153)),
    ];
    BY_ID
        .iter()
        .find(|(id, _)| label.split([' ', ',', '(', ')']).any(|w| w == *id))
        .map(|(_, c)| *c)
}

/// The colour of series `i` labelled `label`: its contender's, else the palette's.
fn series_colour(i: usize, label: &str) -> RGBColor {
    colour_for(label).unwrap_or_else(|| colour(i))
}

/// Width of every figure, in pixels: the book's text column is 750 px, and a
/// figure drawn at the width it is shown keeps its 12–14 px labels legible.
pub const WIDTH: u32 = 720;

const FONT: &str = "sans-serif";
// plotters writes an SVG font size of 0.806 times the size it is given (16 gives
// 12.9 px): the sizes below are chosen for 12–16 px text in the book.
const MEASURED: RGBColor = RGBColor(0, 0, 0);
const AMDAHL: RGBColor = RGBColor(0, 114, 178);
const USL: RGBColor = RGBColor(213, 94, 0);
const COUNTERS: RGBColor = RGBColor(0, 158, 115);
/// The summary's two Amdahl curves: colours no phase uses.
const MODEL: [RGBColor; 2] = [RGBColor(106, 61, 154), RGBColor(140, 81, 10)];

/// A unit for an axis of rates: divides by 1e6 (`M`) or 1e3 (`k`) to keep
/// tick labels short.
fn rate_scale(max: f64) -> (f64, &'static str) {
    if max >= 2e6 {
        (1e6, "M")
    } else if max >= 2e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    }
}

/// `(n, f(n))` on a grid fine enough for a smooth curve on a log axis, cut
/// where it leaves `0..=ymax` (the last point is moved onto the edge).
fn curve(n_max: f64, ymax: f64, f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
    let steps = 120;
    let mut out = Vec::with_capacity(steps + 1);
    let mut prev: Option<(f64, f64)> = None;
    for i in 0..=steps {
        let n = n_max.powf(i as f64 / steps as f64);
        let y = f(n);
        if !y.is_finite() {
            break;
        }
        if y > ymax {
            if let Some((pn, py)) = prev {
                let t = (ymax - py) / (y - py);
                out.push((pn + t * (n - pn), ymax));
            }
            break;
        }
        out.push((n, y));
        prev = Some((n, y));
    }
    out
}

/// A legend strip: coloured marks and labels in rows, drawn on `area`,
/// wrapping before an item that would pass `width`.
fn legend(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    items: &[(String, ShapeStyle, bool)],
    width: i32,
) -> DrawResult {
    let mut x = 10;
    let mut y = 12;
    for (label, style, dashed) in items {
        let item_w = 40 + (label.chars().count() as i32) * 7;
        if x > 10 && x + item_w > width {
            x = 10;
            y += 20;
        }
        if *dashed {
            for k in 0..3 {
                let x0 = x + k * 9;
                area.draw(&PathElement::new(vec![(x0, y), (x0 + 5, y)], *style))?;
            }
        } else {
            area.draw(&PathElement::new(vec![(x, y), (x + 24, y)], *style))?;
        }
        area.draw(&Text::new(
            label.clone(),
            (x + 30, y),
            TextStyle::from((FONT, 16).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        x += item_w;
    }
    Ok(())
}

/// Throughput against producer count, one panel per series (on one y scale
/// unless their throughputs differ more than fourfold): the measured
/// medians (dots, with the min–max range over repetitions), the fitted Amdahl
/// and USL curves, and Amdahl with the summary's `S` (lock hold / total, from
/// the counters) where the series has counters.
pub fn scaling_figure(title: &str, fits: &[SeriesFit]) -> Figure {
    let fits: Vec<SeriesFit> = fits.to_vec();
    let title = title.to_owned();
    let cols = fits.len().clamp(1, 2);
    let rows = fits.len().div_ceil(cols).max(1);
    let ph = 270u32;
    let head = 86;
    let size = (WIDTH, ph * rows as u32 + head);
    Figure::new(size, move |root| {
        root.fill(&WHITE)?;
        let (top, body) = root.split_vertically(head);
        top.draw(&Text::new(
            title.clone(),
            (10, 8),
            (FONT, 20).into_font().color(&BLACK),
        ))?;
        let any_counters = fits.iter().any(|f| f.from_counters.is_some());
        let mut items = vec![
            (
                "measured (median, min–max)".to_owned(),
                MEASURED.stroke_width(2),
                false,
            ),
            ("Amdahl fit".to_owned(), AMDAHL.stroke_width(2), false),
            ("USL fit".to_owned(), USL.stroke_width(2), false),
        ];
        if any_counters {
            items.push((
                "Amdahl, S = lock hold / total (the summary's way)".to_owned(),
                COUNTERS.stroke_width(2),
                true,
            ));
        }
        legend(&top.margin(34, 0, 0, 0), &items, WIDTH as i32 - 10)?;
        // One y scale for every panel, so that phases compare at a glance,
        // unless the series differ so much (asyncio against the others) that
        // the slowest would be a flat line: then each panel has its own.
        // Scaled to the medians: one wild repetition on a busy machine must
        // not squash the curves (its whisker is cut at the top edge).
        let tops: Vec<f64> = fits
            .iter()
            .map(|f| {
                f.series
                    .points
                    .iter()
                    .map(|p| p.throughput.median)
                    .fold(0.0, f64::max)
            })
            .collect();
        let highest = tops.iter().copied().fold(0.0, f64::max);
        let lowest = tops.iter().copied().fold(f64::INFINITY, f64::min);
        let shared = highest <= 4.0 * lowest;
        let panels = body.split_evenly((rows, cols));
        for ((f, area), top) in fits.iter().zip(panels.iter()).zip(&tops) {
            let y = if shared { highest } else { *top };
            scaling_panel(area, f, y * 1.5)?;
        }
        root.present()?;
        Ok(())
    })
}

fn scaling_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    f: &SeriesFit,
    ymax_raw: f64,
) -> DrawResult {
    let pts = &f.series.points;
    let n_max = pts.iter().map(|p| p.producers).max().unwrap_or(16).max(2) as f64;
    let (scale, prefix) = rate_scale(ymax_raw);
    let ymax = (ymax_raw / scale).max(1e-9);
    let mut caption = f.series.label.clone();
    if let Ok(a) = &f.amdahl {
        caption.push_str(&format!("   S={:.2}", a.model.serial));
    }
    if let Ok(u) = &f.usl {
        caption.push_str(&format!(
            " σ={:.2} κ={}",
            u.model.sigma,
            crate::table::fmt_sig(u.model.kappa, 2)
        ));
    }
    let keys: Vec<f64> = pts.iter().map(|p| p.producers as f64).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 15))
        .margin(8)
        .x_label_area_size(34)
        .y_label_area_size(50)
        .build_cartesian_2d(
            (0.85f64..n_max * 1.18).log_scale().with_key_points(keys),
            0f64..ymax,
        )?;
    chart
        .configure_mesh()
        .x_desc("producer threads")
        .y_desc(format!("{prefix} callbacks/s"))
        .x_label_formatter(&|n| format!("{n:.0}"))
        .y_label_formatter(&|y| crate::table::fmt_sig(*y, 2))
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 16))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let clip = ymax * scale;
    if let Some(c) = f.from_counters {
        let pts = curve(n_max, clip, |n| c.throughput(n));
        chart.draw_series(DashedLineSeries::new(
            pts.into_iter().map(|(n, y)| (n, y / scale)),
            6,
            4,
            COUNTERS.stroke_width(2),
        ))?;
    }
    if let Ok(a) = &f.amdahl {
        let pts = curve(n_max, clip, |n| a.model.throughput(n));
        chart.draw_series(LineSeries::new(
            pts.into_iter().map(|(n, y)| (n, y / scale)),
            AMDAHL.stroke_width(2),
        ))?;
    }
    if let Ok(u) = &f.usl {
        let pts = curve(n_max, clip, |n| u.model.throughput(n));
        chart.draw_series(LineSeries::new(
            pts.into_iter().map(|(n, y)| (n, y / scale)),
            USL.stroke_width(2),
        ))?;
    }
    chart.draw_series(pts.iter().map(|p| {
        PathElement::new(
            vec![
                (p.producers as f64, (p.throughput.min / scale).min(ymax)),
                (p.producers as f64, (p.throughput.max / scale).min(ymax)),
            ],
            MEASURED.stroke_width(1),
        )
    }))?;
    chart.draw_series(pts.iter().map(|p| {
        Circle::new(
            (p.producers as f64, p.throughput.median / scale),
            4,
            MEASURED.filled(),
        )
    }))?;
    Ok(())
}

/// One measured speed-up curve for [`speedup_figure`]: a label and
/// `(producers, speed-up over one producer)`.
pub type MeasuredSpeedup = (String, Vec<(usize, f64)>);

/// Speed-up against worker count: Amdahl's curves for the given serial
/// fractions (the summary's 0.5 and 0.1, say), the ceiling of `cores` workers
/// running at once, and measured speed-ups.
pub fn speedup_figure(
    title: &str,
    serial_fractions: &[(String, f64)],
    cores: Option<usize>,
    measured: &[MeasuredSpeedup],
) -> Figure {
    let title = title.to_owned();
    let model: Vec<(String, f64)> = serial_fractions.to_vec();
    let measured: Vec<MeasuredSpeedup> = measured.to_vec();
    Figure::new((WIDTH, 500), move |root| {
        root.fill(&WHITE)?;
        let n_max = 16f64;
        let measured_max = measured
            .iter()
            .flat_map(|(_, v)| v.iter().map(|p| p.1))
            .fold(0.0, f64::max);
        let model_max = model
            .iter()
            .map(|(_, s)| amdahl_speedup(*s, n_max))
            .fold(0.0, f64::max);
        let ymax = (measured_max.max(model_max) * 1.1).max(2.0);
        let mut chart = ChartBuilder::on(&root)
            .caption(title.clone(), (FONT, 20))
            .margin(12)
            .x_label_area_size(38)
            .y_label_area_size(48)
            .build_cartesian_2d(
                (0.9f64..n_max * 1.12)
                    .log_scale()
                    .with_key_points(vec![1.0, 2.0, 4.0, 8.0, 10.0, 16.0]),
                0f64..ymax,
            )?;
        chart
            .configure_mesh()
            .x_desc("threads (workers)")
            .y_desc("speed-up over one")
            .x_label_formatter(&|n| format!("{n:.0}"))
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 16))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for (i, (label, s)) in model.iter().enumerate() {
            let style = MODEL[i % 2].stroke_width(2);
            chart
                .draw_series(LineSeries::new(
                    curve(n_max, ymax, |n| amdahl_speedup(*s, n)),
                    style,
                ))?
                .label(format!("{label}: Amdahl, S = {s}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            let at10 = amdahl_speedup(*s, 10.0);
            chart.draw_series(std::iter::once(Circle::new(
                (10.0, at10),
                4,
                style.filled(),
            )))?;
            chart.draw_series(std::iter::once(Text::new(
                format!("{at10:.2}×"),
                (10.0, at10),
                TextStyle::from((FONT, 16).into_font()).pos(Pos::new(HPos::Left, VPos::Bottom)),
            )))?;
        }
        if let Some(c) = cores {
            let style = RGBColor(120, 120, 120).stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(
                    curve(n_max, ymax, |n| n.min(c as f64)),
                    5,
                    4,
                    style,
                ))?
                .label(format!("at most {c} threads run at once ({c} cores)"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        for (i, (label, points)) in measured.iter().enumerate() {
            let colour = series_colour(i, label);
            let style = colour.stroke_width(2);
            let xy: Vec<(f64, f64)> = points.iter().map(|&(n, s)| (n as f64, s)).collect();
            // A Python series shares its phase's colour with the Rust one: it is
            // dashed, with hollow marks.
            let python = label.contains("Python");
            if python {
                chart
                    .draw_series(DashedLineSeries::new(xy.clone(), 6, 4, style))?
                    .label(label.clone())
                    .legend(move |(x, y)| Circle::new((x + 10, y), 4, colour.stroke_width(2)));
                chart.draw_series(
                    xy.into_iter()
                        .map(|p| Circle::new(p, 4, colour.stroke_width(2))),
                )?;
            } else {
                chart
                    .draw_series(LineSeries::new(xy.clone(), style))?
                    .label(label.clone())
                    .legend(move |(x, y)| Circle::new((x + 10, y), 4, colour.filled()));
                chart.draw_series(xy.into_iter().map(|p| Circle::new(p, 4, colour.filled())))?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT, 16))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .draw()?;
        root.present()?;
        Ok(())
    })
}

/// Throughput against producer count for every series of a sweep in one
/// panel (a line per contender, the min–max range as a whisker), on a log
/// axis of producers: how the loops compare as threads are added.
pub fn sweep_lines_figure(title: &str, sweep: &crate::data::Sweep) -> Figure {
    let title = title.to_owned();
    let series = sweep.series.clone();
    Figure::new((WIDTH, 500), move |root| {
        root.fill(&WHITE)?;
        let n_max = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.producers))
            .max()
            .unwrap_or(16)
            .max(2) as f64;
        // Scaled to the medians; whiskers of wild repetitions are cut at the top.
        let y_raw = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.throughput.median))
            .fold(0.0, f64::max)
            * 1.4;
        let (scale, prefix) = rate_scale(y_raw);
        let mut keys: Vec<f64> = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.producers as f64))
            .collect();
        keys.sort_by(f64::total_cmp);
        keys.dedup();
        let mut chart = ChartBuilder::on(&root)
            .caption(title.clone(), (FONT, 20))
            .margin(12)
            .x_label_area_size(38)
            .y_label_area_size(52)
            .build_cartesian_2d(
                (0.85f64..n_max * 1.18).log_scale().with_key_points(keys),
                0f64..(y_raw / scale).max(1e-9),
            )?;
        chart
            .configure_mesh()
            .x_desc("producer threads")
            .y_desc(format!("{prefix} callbacks/s"))
            .x_label_formatter(&|n| format!("{n:.0}"))
            .y_label_formatter(&|y| crate::table::fmt_sig(*y, 2))
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 16))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for (i, s) in series.iter().enumerate() {
            let colour = series_colour(i, &s.id);
            let style = colour.stroke_width(2);
            let xy: Vec<(f64, f64)> = s
                .points
                .iter()
                .map(|p| (p.producers as f64, p.throughput.median / scale))
                .collect();
            chart
                .draw_series(LineSeries::new(xy.clone(), style))?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            chart.draw_series(xy.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
            let top = y_raw / scale;
            chart.draw_series(s.points.iter().map(|p| {
                let n = p.producers as f64;
                PathElement::new(
                    vec![
                        (n, (p.throughput.min / scale).min(top)),
                        (n, (p.throughput.max / scale).min(top)),
                    ],
                    colour.stroke_width(1),
                )
            }))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT, 16))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .draw()?;
        root.present()?;
        Ok(())
    })
}

/// One metric of one scenario as bars per contender, from one or two results
/// files (typically a quick run just made and the committed full run).
pub fn compare_figure(
    scenario: &str,
    metric: &str,
    first: (&str, &crate::data::Results),
    second: Option<(&str, &crate::data::Results)>,
) -> Figure {
    let (name, a) = first;
    let def = a.scenario(scenario).and_then(|s| s.metric(metric));
    let unit = def.map(|d| d.unit.clone()).unwrap_or_default();
    let better = def
        .map(|d| format!(" ({} is better)", d.better))
        .filter(|_| def.is_some_and(|d| d.better == "lower" || d.better == "higher"))
        .unwrap_or_default();
    let title = match def {
        Some(d) if !d.label.is_empty() => format!("{scenario}: {}{better}", d.label),
        _ => format!("{scenario}: {metric}{better}"),
    };
    let categories: Vec<String> = a.contenders.iter().map(|c| c.label.clone()).collect();
    let bars = |r: &crate::data::Results| -> Vec<Option<Bar>> {
        a.contenders
            .iter()
            .map(|c| r.get(scenario, &c.id, metric).map(Bar::from))
            .collect()
    };
    let mut groups = vec![(name.to_owned(), bars(a))];
    if let Some((name, b)) = second {
        groups.push((name.to_owned(), bars(b)));
    }
    bar_figure(&title, &unit, &categories, &groups)
}

/// A value with its range, for [`bar_figure`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bar {
    /// Bar length (the median).
    pub value: f64,
    /// Lower end of the whisker.
    pub min: f64,
    /// Upper end of the whisker.
    pub max: f64,
}

impl From<crate::data::Summary> for Bar {
    fn from(s: crate::data::Summary) -> Bar {
        Bar {
            value: s.median,
            min: s.min,
            max: s.max,
        }
    }
}

/// Grouped horizontal bars: one row per category (a contender), one bar per
/// group (a results file, a run) with its min–max whisker. `None` leaves a gap.
pub fn bar_figure(
    title: &str,
    unit: &str,
    categories: &[String],
    groups: &[(String, Vec<Option<Bar>>)],
) -> Figure {
    let title = title.to_owned();
    let unit = unit.to_owned();
    let categories: Vec<String> = categories.to_vec();
    let groups: Vec<(String, Vec<Option<Bar>>)> = groups.to_vec();
    let g = groups.len().max(1);
    let row_h = 10 + 16 * g as u32;
    let height = 110 + row_h * categories.len().max(1) as u32;
    let label_w = 12
        + 7 * categories
            .iter()
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(4) as u32;
    Figure::new((WIDTH, height), move |root| {
        root.fill(&WHITE)?;
        let xmax_raw = groups
            .iter()
            .flat_map(|(_, v)| v.iter().flatten().map(|b| b.max.max(b.value)))
            .fold(0.0, f64::max)
            * 1.15;
        let xmax = if xmax_raw > 0.0 { xmax_raw } else { 1.0 };
        let n = categories.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(title.clone(), (FONT, 20))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(label_w)
            .build_cartesian_2d(0f64..xmax, 0f64..n as f64)?;
        chart
            .configure_mesh()
            .x_desc(unit.clone())
            .x_label_formatter(&|x| crate::table::fmt_sig(*x, 3))
            .y_labels(0)
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 16))
            .light_line_style(WHITE.mix(0.0))
            .disable_y_mesh()
            .draw()?;
        // Category names, drawn by hand in the label area beside their row
        // (category 0 at the top: row i spans n-1-i .. n-i).
        for (i, name) in categories.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(0.0, (n - i) as f64 - 0.5));
            root.draw(&Text::new(
                name.clone(),
                (x - 6, y),
                TextStyle::from((FONT, 16).into_font()).pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
        }
        let band = 0.8 / g as f64;
        for (j, (label, bars)) in groups.iter().enumerate() {
            let colour = colour(j);
            let rects = bars.iter().enumerate().filter_map(|(i, b)| {
                let b = (*b)?;
                let top = (n - i) as f64 - 0.1 - band * j as f64;
                Some(Rectangle::new(
                    [(0.0, top - band * 0.9), (b.value, top)],
                    colour.filled(),
                ))
            });
            chart
                .draw_series(rects)?
                .label(label.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.filled())
                });
            let whiskers = bars.iter().enumerate().filter_map(|(i, b)| {
                let b = (*b)?;
                let mid = (n - i) as f64 - 0.1 - band * j as f64 - band * 0.45;
                Some(PathElement::new(
                    vec![(b.min, mid), (b.max, mid)],
                    BLACK.stroke_width(1),
                ))
            });
            chart.draw_series(whiskers)?;
            // The value beside each bar: bars of very different lengths share
            // one linear axis, and a short one must still be readable.
            let values = bars.iter().enumerate().filter_map(|(i, b)| {
                let b = (*b)?;
                let mid = (n - i) as f64 - 0.1 - band * j as f64 - band * 0.45;
                Some(Text::new(
                    crate::table::fmt_sig(b.value, 3),
                    (b.max.max(b.value), mid),
                    TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
                ))
            });
            chart.draw_series(values)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FONT, 16))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .draw()?;
        root.present()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_stop_at_the_edge() {
        let c = curve(16.0, 4.0, |n| n);
        let last = *c.last().unwrap();
        assert!(
            (last.1 - 4.0).abs() < 1e-9 && (last.0 - 4.0).abs() < 1e-6,
            "{last:?}"
        );
        assert!(c.iter().all(|p| p.1 <= 4.0));
        assert_eq!(curve(16.0, 100.0, |n| n).len(), 121);
    }

    #[test]
    fn a_bar_figure_renders() {
        let f = bar_figure(
            "t",
            "ns",
            &["a".into(), "b".into()],
            &[
                (
                    "quick".into(),
                    vec![
                        Some(Bar {
                            value: 2.0,
                            min: 1.0,
                            max: 3.0,
                        }),
                        None,
                    ],
                ),
                (
                    "full".into(),
                    vec![
                        Some(Bar {
                            value: 1.0,
                            min: 1.0,
                            max: 1.0,
                        }),
                        None,
                    ],
                ),
            ],
        );
        let svg = f.to_svg().unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("quick") && svg.contains("</svg>"));
    }
}
