//! Branch-free `f32` erf, exp and GELU for the host kernels. The C library's `erff`/`expf` are
//! opaque scalar calls, so a loop over them cannot be vectorised: exact GELU and its gradient
//! took about a third of a MiniLM training step's non-matmul time. These are plain arithmetic
//! (inlined, vectorised by the compiler) and accurate to a few units in the last place.
//!
//! Each is generic over how `a·b + c` is computed: [`Fused`] (one FMA instruction, for code
//! compiled with the `fma` target feature; elsewhere a slow library call) or [`Split`] (a product
//! and a sum, for every other target). See `elementwise::simd_kernel!` for the dispatch.

// `inline(always)` is the point here: these must be inlined into the AVX2 + FMA entry points of
// `elementwise::simd_kernel!` to be compiled (and vectorised) for those features.
#![allow(clippy::inline_always)]

use std::f32::consts::{FRAC_1_SQRT_2, LOG2_E};

/// How a kernel computes `a·b + c`.
pub(crate) trait MulAdd {
    fn mad(a: f32, b: f32, c: f32) -> f32;
}

/// `a.mul_add(b, c)`: one rounding, one instruction where FMA is enabled.
pub(crate) struct Fused;

/// `a * b + c`: two roundings, available everywhere.
pub(crate) struct Split;

impl MulAdd for Fused {
    #[inline(always)]
    fn mad(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl MulAdd for Split {
    #[inline(always)]
    fn mad(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// `erf(x)`, absolute error below 5e-7 evaluated in `f32` (the approximation itself: 7e-8): the
/// odd/even rational minimax approximation on
/// [-4, 4] that Eigen and XLA use for `f32` (outside, `erf` is ±1 to `f32` precision).
#[inline(always)]
pub(crate) fn erf<M: MulAdd>(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = M::mad(x2, -2.726_142_3e-10, 2.770_681_4e-8);
    p = M::mad(x2, p, -2.101_024e-6);
    p = M::mad(x2, p, -5.692_506_4e-5);
    p = M::mad(x2, p, -7.349_906_3e-4);
    p = M::mad(x2, p, -2.954_6e-3);
    p = M::mad(x2, p, -1.609_603_3e-2);
    let mut q = M::mad(x2, -1.456_607_2e-5, -2.133_740_6e-4);
    q = M::mad(x2, q, -1.682_827e-3);
    q = M::mad(x2, q, -7.373_329e-3);
    q = M::mad(x2, q, -1.426_474e-2);
    x * p / q
}

/// `e^x`, relative error below 2e-7: `2^n · e^r` with `n = round(x / ln 2)` and a degree-7
/// Taylor polynomial for `e^r`, `|r| <= ln 2 / 2`. Exactly 0 below -87 (so masked attention
/// keys get no weight at all) and clamped at e^88 above.
#[inline(always)]
pub(crate) fn exp<M: MulAdd>(x: f32) -> f32 {
    // 1.5 · 2^23: adding and subtracting it rounds to the nearest integer without a libm call.
    const ROUND: f32 = 12_582_912.0;
    // ln 2 split so that `n · LN2_HI` is exact (Cody and Waite).
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let underflow = x < -87.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = M::mad(r, 1.0 / 5040.0, 1.0 / 720.0);
    p = M::mad(r, p, 1.0 / 120.0);
    p = M::mad(r, p, 1.0 / 24.0);
    p = M::mad(r, p, 1.0 / 6.0);
    p = M::mad(r, p, 0.5);
    p = M::mad(r, p, 1.0);
    p = M::mad(r, p, 1.0);
    // 2^n from the bits of n + 127 + 2^23 (an integer-valued float whose low mantissa bits are
    // n + 127, in [1, 254] after the clamp): float-to-int casts do not vectorise here.
    let biased = (n + (127.0 + 8_388_608.0))
        .to_bits()
        .wrapping_sub(0x4B00_0000);
    let y = p * f32::from_bits(biased << 23);
    if underflow { 0.0 } else { y }
}

/// Exact (erf) GELU: `x Φ(x)`.
#[inline(always)]
pub(crate) fn gelu<M: MulAdd>(x: f32) -> f32 {
    0.5 * x * (1.0 + erf::<M>(x * FRAC_1_SQRT_2))
}

/// GELU's derivative: `Φ(x) + x φ(x)`.
#[inline(always)]
pub(crate) fn gelu_grad<M: MulAdd>(x: f32) -> f32 {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    let cdf = 0.5 * (1.0 + erf::<M>(x * FRAC_1_SQRT_2));
    M::mad(x * exp::<M>(-0.5 * x * x), INV_SQRT_2PI, cdf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf in f64 from its Taylor series: cancellation keeps it within 1e-9 on [-4, 4] only.
    fn erf_reference(x: f64) -> f64 {
        let (mut term, mut sum) = (x, x);
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    fn grid() -> impl Iterator<Item = f32> {
        (-4000..=4000).map(|i| i as f32 / 1000.0)
    }

    fn erf_matches_the_series<M: MulAdd>() {
        let worst = grid()
            .map(|x| (f64::from(erf::<M>(x)) - erf_reference(f64::from(x))).abs())
            .fold(0.0, f64::max);
        assert!(worst < 5e-7, "max |erf error| {worst}");
        assert_eq!(erf::<M>(0.0), 0.0);
        // Beyond ±4, erf is ±1 to within 2e-8.
        for x in (4000..=10_000).map(|i| i as f32 / 1000.0) {
            assert!((erf::<M>(x) - 1.0).abs() < 1e-6 && (erf::<M>(-x) + 1.0).abs() < 1e-6);
        }
        assert_eq!(erf::<M>(-10.0), -erf::<M>(10.0));
    }

    fn exp_matches_std_in_relative_terms<M: MulAdd>() {
        let worst = (-8700..=8800)
            .map(|i| i as f32 / 100.0)
            .map(|x| ((f64::from(exp::<M>(x)) - f64::from(x).exp()) / f64::from(x).exp()).abs())
            .fold(0.0, f64::max);
        assert!(worst < 3e-7, "max relative exp error {worst}");
        assert_eq!(exp::<M>(0.0), 1.0);
        assert_eq!(exp::<M>(-1e9), 0.0);
    }

    fn gelu_and_its_derivative_match_the_definitions<M: MulAdd>() {
        for x in grid() {
            let xd = f64::from(x);
            let cdf = 0.5 * (1.0 + erf_reference(xd / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * xd * xd).exp() / (2.0 * std::f64::consts::PI).sqrt();
            assert!(
                (f64::from(gelu::<M>(x)) - xd * cdf).abs() < 2e-6,
                "gelu({x})"
            );
            assert!(
                (f64::from(gelu_grad::<M>(x)) - (cdf + xd * pdf)).abs() < 1e-6,
                "gelu'({x})"
            );
        }
    }

    #[test]
    fn fused_and_split_forms_are_both_accurate() {
        erf_matches_the_series::<Fused>();
        erf_matches_the_series::<Split>();
        exp_matches_std_in_relative_terms::<Fused>();
        exp_matches_std_in_relative_terms::<Split>();
        gelu_and_its_derivative_match_the_definitions::<Fused>();
        gelu_and_its_derivative_match_the_definitions::<Split>();
    }
}
