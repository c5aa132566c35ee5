//! The softmax on `f32` rows: the attention softmax with an additive key mask, and its input
//! gradient from its output. Each step of a row is one pass without a running float
//! reduction, so each vectorises (`simd_kernel!`).

// As in `elementwise`: `inline(always)` lets the AVX2 + FMA entry point compile the kernel.
#![allow(clippy::inline_always)]

use crate::kernels::elementwise::{lanes, pair_rows, par_rows, simd_kernel};
use crate::kernels::fast_math::{self, MulAdd};

/// Softmax of `x + mask` for consecutive rows of length `mask.len()` of `xs` into `out`.
#[inline(always)]
fn masked_softmax_kernel<M: MulAdd>(xs: &[f32], mask: &[f32], out: &mut [f32]) {
    let row = mask.len();
    for (o, xr) in out.chunks_mut(row).zip(xs.chunks(row)) {
        for ((v, x), k) in o.iter_mut().zip(xr).zip(mask) {
            *v = x + k;
        }
        let max = lanes(o, f32::NEG_INFINITY, f32::max);
        for v in o.iter_mut() {
            *v = fast_math::exp::<M>(*v - max);
        }
        let inv = 1.0 / lanes(o, 0.0, |a, b| a + b);
        for v in o.iter_mut() {
            *v *= inv;
        }
    }
}

simd_kernel!(
    /// Row-wise `softmax(xs + mask)`.
    pub(crate) fn masked_softmax_into = masked_softmax_kernel(xs: &[f32], mask: &[f32], out: &mut [f32])
);

/// `softmax(xs + mask)` over rows of `row` values, where the rows come in batches of
/// `per_batch` values: `mask` is one row of key biases for every row, or one row per batch.
pub(crate) fn masked_softmax(xs: &[f32], row: usize, per_batch: usize, mask: &[f32]) -> Vec<f32> {
    par_rows(xs.len(), row, |r, o| {
        let b = (r * row) / per_batch.max(1);
        let mask = if mask.len() == row {
            mask
        } else {
            &mask[b * row..(b + 1) * row]
        };
        masked_softmax_into(&xs[r * row..(r + 1) * row], mask, o);
    })
}

/// Softmax's input gradient from its output `ys`: `y ⊙ (dy - Σ dy ⊙ y)` over rows of `row`.
pub(crate) fn softmax_grad(ys: &[f32], gs: &[f32], row: usize) -> Vec<f32> {
    pair_rows(ys, gs, row, |yr, gr, o| {
        o.copy_from_slice(gr);
        softmax_grad_row(o, yr);
    })
}

/// `dp ← p ⊙ (dp - Σ dp ⊙ p)` for one row: softmax's input gradient from its output `p`.
pub(crate) fn softmax_grad_row(dp: &mut [f32], p: &[f32]) {
    // Eight independent partial sums, which the compiler keeps in one vector register.
    let mut acc = [0f32; 8];
    let body = dp.len() / 8 * 8;
    for (a, b) in dp[..body].chunks_exact(8).zip(p[..body].chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += a[i] * b[i];
        }
    }
    let mut dot: f32 = acc.iter().sum();
    for (a, b) in dp[body..].iter().zip(&p[body..]) {
        dot += a * b;
    }
    for (x, &y) in dp.iter_mut().zip(p) {
        *x = y * (*x - dot);
    }
}
