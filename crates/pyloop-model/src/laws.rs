//! The two scalability laws, as formulas.
//!
//! Both describe the throughput `X(N)` of a system given `N` workers (here:
//! producer threads pushing into one loop's ready queue).
//!
//! - **Amdahl's law.** A fraction `S` of the work is serial; the rest spreads
//!   over the `N` workers. Speed-up `1 / (S + (1 − S) / N)`, which is the same
//!   as `N / (1 + S (N − 1))`. It rises with `N` towards `1 / S` and never falls.
//! - **The Universal Scalability Law** (Neil Gunther). Adds a *coherency* term
//!   `κ N (N − 1)`: the cost of every worker having to agree with every other
//!   one (cache lines bouncing, a lock handed around, threads woken for
//!   nothing). `X(N) = λ N / (1 + σ (N − 1) + κ N (N − 1))`. With `κ = 0` it is
//!   Amdahl's law with `σ = S`; with `κ > 0` throughput peaks at
//!   `N* = √((1 − σ) / κ)` and then *falls*, which Amdahl cannot express.
//!
//! `N` is a real number here so that curves can be drawn between the measured
//! producer counts.

/// Amdahl's speed-up of `n` workers when a fraction `serial` (0..=1) of the
/// work is serial: `1 / (serial + (1 − serial) / n)`.
///
/// The summary's two figures, for ten threads:
///
/// ```
/// use pyloop_model::amdahl_speedup;
/// assert!((amdahl_speedup(0.5, 10.0) - 1.818).abs() < 1e-3); // "3.1.3"
/// assert!((amdahl_speedup(0.1, 10.0) - 5.263).abs() < 1e-3); // "3.1.4"
/// ```
pub fn amdahl_speedup(serial: f64, n: f64) -> f64 {
    1.0 / (serial + (1.0 - serial) / n)
}

/// The USL's relative capacity `C(N) = X(N) / X(1)`:
/// `N / (1 + σ (N − 1) + κ N (N − 1))`.
pub fn usl_speedup(sigma: f64, kappa: f64, n: f64) -> f64 {
    n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
}

/// Amdahl's law with a throughput scale: `X(N) = x1 · N / (1 + S (N − 1))`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Amdahl {
    /// Throughput of one worker (the model's `X(1)`), in the data's unit.
    pub x1: f64,
    /// The serial fraction `S`, 0..=1.
    pub serial: f64,
}

impl Amdahl {
    /// Speed-up over one worker at `n` workers.
    pub fn speedup(&self, n: f64) -> f64 {
        amdahl_speedup(self.serial, n)
    }

    /// Predicted throughput at `n` workers.
    pub fn throughput(&self, n: f64) -> f64 {
        self.x1 * self.speedup(n)
    }

    /// The speed-up that no number of workers can pass: `1 / S` (infinite if `S = 0`).
    pub fn speedup_limit(&self) -> f64 {
        1.0 / self.serial
    }

    /// The same curve as a USL with `κ = 0`.
    pub fn as_usl(&self) -> Usl {
        Usl {
            lambda: self.x1,
            sigma: self.serial,
            kappa: 0.0,
        }
    }
}

/// The Universal Scalability Law: `X(N) = λ N / (1 + σ (N − 1) + κ N (N − 1))`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Usl {
    /// Throughput of one worker, `λ` (equal to `X(1)`), in the data's unit.
    pub lambda: f64,
    /// Contention `σ`: the share of the work that queues for a shared resource.
    pub sigma: f64,
    /// Coherency `κ`: the cost per pair of workers of keeping shared state agreed.
    pub kappa: f64,
}

impl Usl {
    /// Relative capacity at `n` workers, `X(n) / X(1)`.
    pub fn speedup(&self, n: f64) -> f64 {
        usl_speedup(self.sigma, self.kappa, n)
    }

    /// Predicted throughput at `n` workers.
    pub fn throughput(&self, n: f64) -> f64 {
        self.lambda * self.speedup(n)
    }

    /// The worker count (at least 1) of the highest throughput,
    /// `√((1 − σ) / κ)`; infinite when `κ = 0` (throughput then only rises, as
    /// with Amdahl), and 1 when `σ ≥ 1` or the formula gives less than 1
    /// (throughput falls from the first worker added).
    pub fn peak_n(&self) -> f64 {
        if self.sigma >= 1.0 {
            1.0
        } else if self.kappa <= 0.0 {
            f64::INFINITY
        } else {
            ((1.0 - self.sigma) / self.kappa).sqrt().max(1.0)
        }
    }

    /// The highest throughput the model predicts, at [`peak_n`](Self::peak_n)
    /// (its limit `λ / σ` when the peak is at infinity).
    pub fn peak_throughput(&self) -> f64 {
        let n = self.peak_n();
        if n.is_finite() {
            self.throughput(n.max(1.0))
        } else {
            self.lambda / self.sigma
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn the_summarys_amdahl_figures() {
        // Hand-computed: 1 / (0.5 + 0.5/10) = 1 / 0.55 = 1.8181...
        assert!(close(amdahl_speedup(0.5, 10.0), 1.0 / 0.55, 1e-12));
        assert!(close(amdahl_speedup(0.5, 10.0), 1.818_181_818, 1e-9));
        // 1 / (0.1 + 0.9/10) = 1 / 0.19 = 5.2631...
        assert!(close(amdahl_speedup(0.1, 10.0), 1.0 / 0.19, 1e-12));
        assert!(close(amdahl_speedup(0.1, 10.0), 5.263_157_894, 1e-9));
        // and the ratio it then claimed was measured as "2.5-3x"
        let ratio = amdahl_speedup(0.1, 10.0) / amdahl_speedup(0.5, 10.0);
        assert!(close(ratio, 2.894_736_842, 1e-9));
    }

    #[test]
    fn amdahl_edges() {
        assert_eq!(amdahl_speedup(0.0, 16.0), 16.0);
        assert_eq!(amdahl_speedup(1.0, 16.0), 1.0);
        assert_eq!(amdahl_speedup(0.3, 1.0), 1.0);
        let a = Amdahl {
            x1: 2.0,
            serial: 0.25,
        };
        assert!(close(a.speedup_limit(), 4.0, 1e-12));
        // 2 * 1/(0.25 + 0.75/4) = 2 / 0.4375
        assert!(close(a.throughput(4.0), 2.0 / 0.4375, 1e-12));
    }

    #[test]
    fn amdahl_is_usl_without_coherency() {
        let a = Amdahl {
            x1: 1e6,
            serial: 0.2,
        };
        for n in [1.0, 2.0, 3.5, 10.0, 16.0] {
            assert!(close(a.throughput(n), a.as_usl().throughput(n), 1e-6));
        }
    }

    #[test]
    fn usl_hand_computed() {
        let u = Usl {
            lambda: 1000.0,
            sigma: 0.1,
            kappa: 0.01,
        };
        // N = 4: 4000 / (1 + 0.3 + 0.12) = 4000 / 1.42
        assert!(close(u.throughput(4.0), 4000.0 / 1.42, 1e-9));
        assert_eq!(u.throughput(1.0), 1000.0);
        // peak at sqrt(0.9 / 0.01) = sqrt(90)
        assert!(close(u.peak_n(), 90f64.sqrt(), 1e-12));
        // throughput falls past the peak
        assert!(u.throughput(16.0) < u.throughput(9.0));
        let falling = Usl {
            lambda: 1.0,
            sigma: 0.9,
            kappa: 0.5,
        };
        assert_eq!(falling.peak_n(), 1.0);
        let flat = Usl { kappa: 0.0, ..u };
        assert!(flat.peak_n().is_infinite());
        assert!(close(flat.peak_throughput(), 10_000.0, 1e-9));
    }
}
