//! Arithmetic on logarithms for the accountant: sums and differences of numbers held as their
//! logs (0 is `-inf`), and `ln(erfc(x))` accurate where `erfc(x)` underflows.

/// `ln(e^x + e^y)`.
pub(crate) fn log_add(x: f64, y: f64) -> f64 {
    let (a, b) = (x.min(y), x.max(y));
    if a == f64::NEG_INFINITY {
        return b;
    }
    (a - b).exp().ln_1p() + b
}

/// `ln(e^x - e^y)` for `x >= y`; NaN when `x < y` (the result would be negative), which the
/// conversion to ε then skips as it skips every NaN order.
pub(crate) fn log_sub(x: f64, y: f64) -> f64 {
    if x < y {
        return f64::NAN;
    }
    if y == f64::NEG_INFINITY {
        return x;
    }
    if x == y {
        return f64::NEG_INFINITY;
    }
    let d = (x - y).exp_m1();
    // Past f64's range `e^x - e^y` is `e^x` to every digit kept.
    if d.is_infinite() { x } else { d.ln() + y }
}

/// Beyond this, `erfc` underflows toward subnormals and its log is taken from the asymptotic
/// series instead.
const ERFC_SERIES_FROM: f64 = 26.0;

/// `ln(erfc(x))`, to double precision for every finite `x`.
pub(crate) fn log_erfc(x: f64) -> f64 {
    if x < ERFC_SERIES_FROM {
        libm::erfc(x).ln()
    } else {
        log_erfc_series(x)
    }
}

/// `ln(erfc(x))` from the asymptotic series, for large `x`.
fn log_erfc_series(x: f64) -> f64 {
    // erfc(x) = e^{-x²} / (x √π) · Σ_n (-1)^n (2n-1)!! / (2x²)^n; at x >= 26 each term is
    // below 1/1352 of the one before, so eight terms reach the last digit.
    let inv = 1.0 / (2.0 * x * x);
    let (mut sum, mut term) = (1.0, 1.0);
    for n in 1..8 {
        term *= -f64::from(2 * n - 1) * inv;
        sum += term;
    }
    -x * x - (x * std::f64::consts::PI.sqrt()).ln() + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_differences_in_log_space() {
        let (a, b) = (3f64.ln(), 5f64.ln());
        assert!((log_add(a, b) - 8f64.ln()).abs() < 1e-15);
        assert!((log_sub(b, a) - 2f64.ln()).abs() < 1e-15);
        assert_eq!(log_add(f64::NEG_INFINITY, a), a);
        assert_eq!(log_sub(a, f64::NEG_INFINITY), a);
        assert_eq!(log_sub(a, a), f64::NEG_INFINITY);
        assert!(log_sub(a, b).is_nan());
        assert_eq!(log_sub(1000.0, 1.0), 1000.0);
    }

    #[test]
    fn log_erfc_is_continuous_where_the_series_takes_over() {
        // erfc(1) and erfc(-1) from their defining integral (tables: 0.157299207050285...).
        assert!((log_erfc(1.0) - 0.157_299_207_050_285_13f64.ln()).abs() < 1e-14);
        assert!((log_erfc(-1.0) - 1.842_700_792_949_715_f64.ln()).abs() < 1e-14);
        for x in [20.0, 24.0, ERFC_SERIES_FROM] {
            let direct = libm::erfc(x).ln();
            let series = log_erfc_series(x);
            assert!(
                (direct - series).abs() < 1e-13 * direct.abs(),
                "{x}: {direct} {series}"
            );
        }
        // Far out, where erfc itself is 0: ln erfc(x) ≈ -x² - ln(x √π).
        let x = 100.0;
        let approx = -x * x - (x * std::f64::consts::PI.sqrt()).ln();
        assert!((log_erfc(x) - approx).abs() < 1e-4, "{}", log_erfc(x));
    }
}
