//! Least-squares fits of [`Amdahl`] and [`Usl`] to measured `(N, throughput)`
//! points, written out here rather than taken from a crate: a bounded grid
//! search for a start, then Levenberg–Marquardt on the full model.
//!
//! **What is minimised.** The sum of squared *relative* residuals,
//! `Σ ((x_i − X(N_i)) / x_i)²`: every measured point counts alike whether its
//! throughput is high or low, which suits measurements whose noise is a share
//! of the value (a descheduled thread costs a fraction of the run, not a fixed
//! number of callbacks), and keeps one fast point from pulling the whole fit.
//! The throughput is first divided by the largest measured value so that every
//! parameter is of order one while solving; the reported parameters are in the
//! data's unit.
//!
//! **Bounds.** `0 ≤ σ ≤ 1` (a serial fraction), `κ ≥ 0` (coherency never helps),
//! `λ > 0`. A parameter that ends on a bound (often `κ = 0` when the data do not
//! fall) is a result, not a failure: it says the data need no more than the
//! other terms.
//!
//! **How.**
//! 1. For fixed `σ` and `κ` the model is linear in `λ`, so the best `λ` has a
//!    closed form (`λ = Σ (f/x) / Σ (f/x)²` with `f = N / (1 + σ(N−1) + κN(N−1))`).
//!    A grid over `σ` (steps of 0.01, or 0.001 for Amdahl) and `κ` (0, then
//!    ten steps a decade from 10⁻⁷ to 1) with that `λ` finds the basin of the
//!    global minimum.
//! 2. Levenberg–Marquardt from the best grid point, with the analytic Jacobian,
//!    Marquardt's diagonal scaling, and the bounds kept by projection: a
//!    parameter sitting on a bound whose gradient points out of the box is held
//!    there for that iteration (an active set), the others move.

use std::fmt;

use crate::laws::{Amdahl, Usl};

/// One measurement: `n` workers gave throughput `x`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Number of workers (producer threads), at least 1.
    pub n: f64,
    /// Measured throughput, positive (any unit; the fit's `λ` is in the same one).
    pub x: f64,
}

impl Point {
    /// A point from a worker count and a throughput.
    pub fn new(n: impl Into<f64>, x: f64) -> Self {
        Point { n: n.into(), x }
    }
}

/// A fitted model and how well it fits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fit<M> {
    /// The fitted parameters.
    pub model: M,
    /// The minimised sum of squared relative residuals `Σ ((x − X(N)) / x)²`.
    pub rss: f64,
    /// Coefficient of determination of the throughputs, `1 − Σ(x − X(N))² / Σ(x − x̄)²`
    /// (NaN when every `x` is equal).
    pub r_squared: f64,
    /// Root mean square of the relative residuals `(x − X(N)) / x`, as a fraction.
    pub rms_rel_error: f64,
    /// Number of points fitted.
    pub points: usize,
    /// Levenberg–Marquardt iterations taken after the grid search.
    pub iterations: usize,
}

/// Why a fit could not be made.
#[derive(Clone, Debug, PartialEq)]
pub enum FitError {
    /// Fewer distinct worker counts than the model has parameters.
    TooFewPoints {
        /// Distinct `n` needed.
        need: usize,
        /// Distinct `n` given.
        got: usize,
    },
    /// A point with `n < 1`, `x ≤ 0`, or a value that is not finite.
    BadPoint(Point),
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitError::TooFewPoints { need, got } => write!(
                f,
                "need at least {need} distinct worker counts to fit, got {got}"
            ),
            FitError::BadPoint(p) => write!(
                f,
                "cannot fit the point n = {}, x = {} (need n >= 1 and x > 0, both finite)",
                p.n, p.x
            ),
        }
    }
}

impl std::error::Error for FitError {}

/// Fits Amdahl's law `X(N) = x1 · N / (1 + S (N − 1))` with `0 ≤ S ≤ 1`.
/// Needs at least two distinct `n`.
pub fn fit_amdahl(points: &[Point]) -> Result<Fit<Amdahl>, FitError> {
    check(points, 2)?;
    let scale = max_x(points);
    let data: Vec<Point> = points
        .iter()
        .map(|p| Point::new(p.n, p.x / scale))
        .collect();

    // 1. grid over S, best x1 in closed form.
    let mut best = (f64::INFINITY, 0.0, 0.0);
    for i in 0..=1000 {
        let s = i as f64 / 1000.0;
        let (lambda, rss) = best_lambda(&data, s, 0.0);
        if rss < best.0 {
            best = (rss, lambda, s);
        }
    }
    // 2. Levenberg–Marquardt on (x1, S).
    let (p, iterations) = levenberg_marquardt(
        [best.1, best.2],
        [f64::MIN_POSITIVE, 0.0],
        [f64::INFINITY, 1.0],
        &data,
        |p, n| {
            let d = 1.0 + p[1] * (n - 1.0);
            let f = n / d;
            (p[0] * f, [f, -p[0] * n * (n - 1.0) / (d * d)])
        },
    );
    let model = Amdahl {
        x1: p[0] * scale,
        serial: p[1],
    };
    Ok(quality(points, model, |m, n| m.throughput(n), iterations))
}

/// Fits the Universal Scalability Law
/// `X(N) = λ N / (1 + σ (N − 1) + κ N (N − 1))` with `0 ≤ σ ≤ 1`, `κ ≥ 0`.
/// Needs at least three distinct `n`.
pub fn fit_usl(points: &[Point]) -> Result<Fit<Usl>, FitError> {
    check(points, 3)?;
    let scale = max_x(points);
    let data: Vec<Point> = points
        .iter()
        .map(|p| Point::new(p.n, p.x / scale))
        .collect();

    // 1. grid over (σ, κ), best λ in closed form.
    let kappas: Vec<f64> = std::iter::once(0.0)
        .chain((0..=70).map(|i| 10f64.powf(-7.0 + i as f64 / 10.0)))
        .collect();
    let mut best = (f64::INFINITY, 0.0, 0.0, 0.0);
    for i in 0..=100 {
        let sigma = i as f64 / 100.0;
        for &kappa in &kappas {
            let (lambda, rss) = best_lambda(&data, sigma, kappa);
            if rss < best.0 {
                best = (rss, lambda, sigma, kappa);
            }
        }
    }
    // 2. Levenberg–Marquardt on (λ, σ, κ).
    let (p, iterations) = levenberg_marquardt(
        [best.1, best.2, best.3],
        [f64::MIN_POSITIVE, 0.0, 0.0],
        [f64::INFINITY, 1.0, f64::INFINITY],
        &data,
        |p, n| {
            let d = 1.0 + p[1] * (n - 1.0) + p[2] * n * (n - 1.0);
            let f = n / d;
            let g = -p[0] * n / (d * d);
            (p[0] * f, [f, g * (n - 1.0), g * n * (n - 1.0)])
        },
    );
    let model = Usl {
        lambda: p[0] * scale,
        sigma: p[1],
        kappa: p[2],
    };
    Ok(quality(points, model, |m, n| m.throughput(n), iterations))
}

fn check(points: &[Point], need: usize) -> Result<(), FitError> {
    if let Some(bad) = points
        .iter()
        .find(|p| !(p.n.is_finite() && p.x.is_finite() && p.n >= 1.0 && p.x > 0.0))
    {
        return Err(FitError::BadPoint(*bad));
    }
    let mut ns: Vec<f64> = points.iter().map(|p| p.n).collect();
    ns.sort_by(f64::total_cmp);
    ns.dedup();
    if ns.len() < need {
        return Err(FitError::TooFewPoints {
            need,
            got: ns.len(),
        });
    }
    Ok(())
}

fn max_x(points: &[Point]) -> f64 {
    points.iter().map(|p| p.x).fold(0.0, f64::max)
}

/// The least-squares `λ` for fixed `σ`, `κ`, and the sum of squared relative
/// residuals it gives: with `g = f / x`, minimising `Σ (1 − λ g)²` gives
/// `λ = Σ g / Σ g²`.
fn best_lambda(data: &[Point], sigma: f64, kappa: f64) -> (f64, f64) {
    let g = |p: &Point| p.n / (1.0 + sigma * (p.n - 1.0) + kappa * p.n * (p.n - 1.0)) / p.x;
    let (mut sg, mut gg) = (0.0, 0.0);
    for p in data {
        sg += g(p);
        gg += g(p) * g(p);
    }
    let lambda = if gg > 0.0 { sg / gg } else { 0.0 };
    let rss = data.iter().map(|p| (1.0 - lambda * g(p)).powi(2)).sum();
    (lambda, rss)
}

fn rss_of<const P: usize>(
    data: &[Point],
    p: &[f64; P],
    model: &impl Fn(&[f64; P], f64) -> (f64, [f64; P]),
) -> f64 {
    data.iter()
        .map(|d| ((d.x - model(p, d.n).0) / d.x).powi(2))
        .sum()
}

/// Minimises `Σ ((x − model(p, n).0) / x)²` over `p` within `[lower, upper]`, from
/// `start`. `model` returns the prediction and its gradient in `p`. Returns the
/// parameters and the number of iterations.
fn levenberg_marquardt<const P: usize>(
    start: [f64; P],
    lower: [f64; P],
    upper: [f64; P],
    data: &[Point],
    model: impl Fn(&[f64; P], f64) -> (f64, [f64; P]),
) -> ([f64; P], usize) {
    let clamp = |mut p: [f64; P]| {
        for j in 0..P {
            p[j] = p[j].clamp(lower[j], upper[j]);
        }
        p
    };
    let mut p = clamp(start);
    let mut rss = rss_of(data, &p, &model);
    let mut mu = 1e-3;
    let mut iterations = 0;
    while iterations < 500 && rss > 0.0 {
        iterations += 1;
        // Normal equations: JᵀJ δ = Jᵀ r, with r = (x − model) / x and
        // J = ∂model/∂p / x.
        let mut jtj = [[0.0; P]; P];
        let mut jtr = [0.0; P];
        for d in data {
            let (m, grad) = model(&p, d.n);
            let r = (d.x - m) / d.x;
            let j = grad.map(|g| g / d.x);
            for a in 0..P {
                jtr[a] += j[a] * r;
                for b in 0..P {
                    jtj[a][b] += j[a] * j[b];
                }
            }
        }
        // Active set: a parameter on a bound whose descent direction leaves the
        // box, or that has no influence at all, is held.
        let free: [bool; P] = std::array::from_fn(|j| {
            let pinned_low = p[j] <= lower[j] && jtr[j] <= 0.0;
            let pinned_high = p[j] >= upper[j] && jtr[j] >= 0.0;
            !(pinned_low || pinned_high || jtj[j][j] <= 0.0)
        });
        if !free.iter().any(|&f| f) {
            break;
        }
        let mut accepted = None;
        for _ in 0..60 {
            let mut a = [[0.0; P]; P];
            let mut b = [0.0; P];
            for i in 0..P {
                for j in 0..P {
                    a[i][j] = if free[i] && free[j] { jtj[i][j] } else { 0.0 };
                }
                if free[i] {
                    a[i][i] += mu * jtj[i][i];
                    b[i] = jtr[i];
                } else {
                    a[i][i] = 1.0;
                }
            }
            let Some(delta) = solve(a, b) else {
                mu *= 10.0;
                continue;
            };
            let candidate = clamp(std::array::from_fn(|j| p[j] + delta[j]));
            let candidate_rss = rss_of(data, &candidate, &model);
            if candidate_rss < rss {
                accepted = Some((candidate, candidate_rss));
                mu = (mu / 3.0).max(1e-12);
                break;
            }
            mu *= 4.0;
            if mu > 1e12 {
                break;
            }
        }
        let Some((next, next_rss)) = accepted else {
            break; // no step lowers the sum: converged (to the bounds, maybe)
        };
        let moved = (0..P).all(|j| (next[j] - p[j]).abs() <= 1e-13 * (p[j].abs() + 1e-9));
        let gained = rss - next_rss <= 1e-15 * rss;
        p = next;
        rss = next_rss;
        if moved || gained {
            break;
        }
    }
    (p, iterations)
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting; `None` if singular.
fn solve<const P: usize>(mut a: [[f64; P]; P], mut b: [f64; P]) -> Option<[f64; P]> {
    for col in 0..P {
        let pivot = (col..P).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-300 || !a[pivot][col].is_finite() {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..P {
            let factor = a[row][col] / a[col][col];
            let pivot_row = a[col];
            for (x, p) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= factor * p;
            }
            b[row] -= factor * b[col];
        }
    }
    let mut x = [0.0; P];
    for row in (0..P).rev() {
        let tail: f64 = (row + 1..P).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - tail) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

fn quality<M: Copy>(
    points: &[Point],
    model: M,
    predict: impl Fn(&M, f64) -> f64,
    iterations: usize,
) -> Fit<M> {
    let mean = points.iter().map(|p| p.x).sum::<f64>() / points.len() as f64;
    let abs_rss: f64 = points
        .iter()
        .map(|p| (p.x - predict(&model, p.n)).powi(2))
        .sum();
    let tss: f64 = points.iter().map(|p| (p.x - mean).powi(2)).sum();
    let rss: f64 = points
        .iter()
        .map(|p| ((p.x - predict(&model, p.n)) / p.x).powi(2))
        .sum::<f64>();
    Fit {
        model,
        rss,
        r_squared: if tss > 0.0 {
            1.0 - abs_rss / tss
        } else {
            f64::NAN
        },
        rms_rel_error: (rss / points.len() as f64).sqrt(),
        points: points.len(),
        iterations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_small_system() {
        let x = solve([[2.0, 1.0], [1.0, 3.0]], [3.0, 5.0]).unwrap();
        assert!((x[0] - 0.8).abs() < 1e-12 && (x[1] - 1.4).abs() < 1e-12);
        assert!(solve([[1.0, 2.0], [2.0, 4.0]], [1.0, 2.0]).is_none());
    }

    #[test]
    fn rejects_what_it_cannot_fit() {
        assert_eq!(
            fit_usl(&[Point::new(1, 1.0), Point::new(2, 1.5), Point::new(2, 1.6)]),
            Err(FitError::TooFewPoints { need: 3, got: 2 })
        );
        assert!(matches!(
            fit_amdahl(&[Point::new(0, 1.0), Point::new(2, 1.5)]),
            Err(FitError::BadPoint(_))
        ));
        assert!(matches!(
            fit_amdahl(&[Point::new(1, f64::NAN), Point::new(2, 1.5)]),
            Err(FitError::BadPoint(_))
        ));
    }
}
