//! SwiGLU, `silu(gate) ⊙ up`, and its two input gradients, each one vectorised pass on the
//! rayon pool. Through candle the forward is two full-size temporaries and the backward of
//! `silu` and of the product five more, single-threaded.

// As in `elementwise`: `inline(always)` lets the AVX2 + FMA entry point compile the kernel.
#![allow(clippy::inline_always)]

use crate::kernels::elementwise::{CHUNK, par_rows, simd_kernel};
use crate::kernels::fast_math::{self, MulAdd};

/// The logistic function `1 / (1 + e^-x)` (`fast_math::exp` clamps, so no overflow).
#[inline(always)]
fn sigmoid<M: MulAdd>(x: f32) -> f32 {
    1.0 / (1.0 + fast_math::exp::<M>(-x))
}

#[inline(always)]
fn swiglu_kernel<M: MulAdd>(gate: &[f32], up: &[f32], out: &mut [f32]) {
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = g * sigmoid::<M>(g) * u;
    }
}

#[inline(always)]
fn gate_grad_kernel<M: MulAdd>(gate: &[f32], up: &[f32], dy: &[f32], out: &mut [f32]) {
    for (((o, &g), &u), &d) in out.iter_mut().zip(gate).zip(up).zip(dy) {
        let s = sigmoid::<M>(g);
        *o = d * u * s * M::mad(g, 1.0 - s, 1.0);
    }
}

#[inline(always)]
fn up_grad_kernel<M: MulAdd>(gate: &[f32], dy: &[f32], out: &mut [f32]) {
    for ((o, &g), &d) in out.iter_mut().zip(gate).zip(dy) {
        *o = d * g * sigmoid::<M>(g);
    }
}

simd_kernel!(
    /// `out = silu(gate) ⊙ up`.
    fn swiglu_into = swiglu_kernel(gate: &[f32], up: &[f32], out: &mut [f32])
);
simd_kernel!(
    /// `out = dy ⊙ up ⊙ silu'(gate)`, `silu'(g) = σ(g) (1 + g (1 - σ(g)))`.
    fn gate_grad_into = gate_grad_kernel(gate: &[f32], up: &[f32], dy: &[f32], out: &mut [f32])
);
simd_kernel!(
    /// `out = dy ⊙ silu(gate)`.
    fn up_grad_into = up_grad_kernel(gate: &[f32], dy: &[f32], out: &mut [f32])
);

/// `silu(gate) ⊙ up` for slices of one length.
pub(crate) fn swiglu(gate: &[f32], up: &[f32]) -> Vec<f32> {
    par_rows(gate.len(), CHUNK, |c, o| {
        let at = c * CHUNK..c * CHUNK + o.len();
        swiglu_into(&gate[at.clone()], &up[at], o);
    })
}

/// The gradient of [`swiglu`] with respect to `gate`, from the output's `dy`.
pub(crate) fn swiglu_gate_grad(gate: &[f32], up: &[f32], dy: &[f32]) -> Vec<f32> {
    par_rows(gate.len(), CHUNK, |c, o| {
        let at = c * CHUNK..c * CHUNK + o.len();
        gate_grad_into(&gate[at.clone()], &up[at.clone()], &dy[at], o);
    })
}

/// The gradient of [`swiglu`] with respect to `up`, from the output's `dy`.
pub(crate) fn swiglu_up_grad(gate: &[f32], dy: &[f32]) -> Vec<f32> {
    par_rows(gate.len(), CHUNK, |c, o| {
        let at = c * CHUNK..c * CHUNK + o.len();
        up_grad_into(&gate[at.clone()], &dy[at], o);
    })
}
