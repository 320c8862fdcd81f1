//! The fits recover known parameters from synthetic data: exact data first,
//! then with multiplicative noise of a few percent (a deterministic generator,
//! so the test always sees the same noise).

use pyloop_model::{fit_amdahl, fit_usl, Amdahl, Point, Usl};

/// xorshift64*: a tiny deterministic generator, uniform in [-1, 1).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        bits as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

const SWEEP: [u32; 5] = [1, 2, 4, 8, 16];

fn points(f: impl Fn(f64) -> f64, ns: &[u32], noise: Option<(&mut Noise, f64)>) -> Vec<Point> {
    let mut out = Vec::new();
    let mut noise = noise;
    for &n in ns {
        let mut x = f(n as f64);
        if let Some((gen, amp)) = noise.as_mut() {
            x *= 1.0 + *amp * gen.next();
        }
        out.push(Point::new(n, x));
    }
    out
}

fn rel(a: f64, b: f64) -> f64 {
    ((a - b) / b).abs()
}

#[test]
fn amdahl_exact_data() {
    for serial in [0.0, 0.05, 0.1, 0.3, 0.5, 0.9, 1.0] {
        let truth = Amdahl { x1: 2.5e6, serial };
        let fit = fit_amdahl(&points(|n| truth.throughput(n), &SWEEP, None)).unwrap();
        assert!(
            (fit.model.serial - serial).abs() < 1e-6,
            "S={serial}: {fit:?}"
        );
        assert!(rel(fit.model.x1, truth.x1) < 1e-6, "S={serial}: {fit:?}");
        assert!(fit.rms_rel_error < 1e-6);
    }
}

#[test]
fn usl_exact_data() {
    for (sigma, kappa) in [
        (0.0, 0.0),
        (0.1, 0.0),
        (0.05, 0.002),
        (0.3, 0.01),
        (0.02, 0.05),
    ] {
        let truth = Usl {
            lambda: 8.0e5,
            sigma,
            kappa,
        };
        let ns: Vec<u32> = (1..=16).collect();
        for grid in [&SWEEP[..], &ns[..]] {
            let fit = fit_usl(&points(|n| truth.throughput(n), grid, None)).unwrap();
            assert!((fit.model.sigma - sigma).abs() < 1e-6, "{truth:?}: {fit:?}");
            assert!((fit.model.kappa - kappa).abs() < 1e-7, "{truth:?}: {fit:?}");
            assert!(
                rel(fit.model.lambda, truth.lambda) < 1e-6,
                "{truth:?}: {fit:?}"
            );
            assert!(fit.r_squared > 1.0 - 1e-9 || fit.r_squared.is_nan());
        }
    }
}

#[test]
fn amdahl_noisy_data() {
    let mut gen = Noise(0x9E37_79B9_7F4A_7C15);
    for serial in [0.1, 0.3, 0.6] {
        let truth = Amdahl { x1: 1.0e6, serial };
        // three repetitions per count, 3 % noise each
        let ns: Vec<u32> = SWEEP.iter().flat_map(|&n| [n, n, n]).collect();
        let fit = fit_amdahl(&points(
            |n| truth.throughput(n),
            &ns,
            Some((&mut gen, 0.03)),
        ))
        .unwrap();
        assert!(
            (fit.model.serial - serial).abs() < 0.03,
            "S={serial}: {fit:?}"
        );
        assert!(rel(fit.model.x1, truth.x1) < 0.04, "S={serial}: {fit:?}");
        assert!(fit.rms_rel_error < 0.03);
    }
}

#[test]
fn usl_noisy_data() {
    let mut gen = Noise(42);
    for (sigma, kappa) in [(0.05, 0.002), (0.2, 0.01), (0.1, 0.0)] {
        let truth = Usl {
            lambda: 1.0e6,
            sigma,
            kappa,
        };
        let ns: Vec<u32> = (1..=16).flat_map(|n| [n, n]).collect();
        let fit = fit_usl(&points(
            |n| truth.throughput(n),
            &ns,
            Some((&mut gen, 0.02)),
        ))
        .unwrap();
        assert!((fit.model.sigma - sigma).abs() < 0.03, "{truth:?}: {fit:?}");
        assert!(
            (fit.model.kappa - kappa).abs() < 0.002,
            "{truth:?}: {fit:?}"
        );
        assert!(
            rel(fit.model.lambda, truth.lambda) < 0.03,
            "{truth:?}: {fit:?}"
        );
        // the fitted peak is near the true one when there is a peak in range
        if kappa > 0.0 && truth.peak_n() < 16.0 {
            assert!(
                rel(fit.model.peak_n(), truth.peak_n()) < 0.2,
                "{truth:?}: {fit:?}"
            );
        }
    }
}

#[test]
fn usl_beats_amdahl_on_retrograde_data() {
    // Throughput that falls past a peak: Amdahl can only flatten out.
    let truth = Usl {
        lambda: 1.0e6,
        sigma: 0.1,
        kappa: 0.02,
    };
    let data = points(|n| truth.throughput(n), &SWEEP, None);
    let usl = fit_usl(&data).unwrap();
    let amdahl = fit_amdahl(&data).unwrap();
    assert!(usl.rss < 1e-6 * amdahl.rss, "usl {usl:?} amdahl {amdahl:?}");
    assert!(amdahl.rms_rel_error > 0.05);
}

#[test]
fn flat_data_is_fully_serial() {
    // One producer at a time, as under the GIL: no speed-up at all.
    let data = points(|_| 3.0e5, &SWEEP, None);
    let fit = fit_amdahl(&data).unwrap();
    assert!((fit.model.serial - 1.0).abs() < 1e-9, "{fit:?}");
    let usl = fit_usl(&data).unwrap();
    assert!(
        (usl.model.sigma - 1.0).abs() < 1e-6 && usl.model.kappa < 1e-9,
        "{usl:?}"
    );
}
