//! Elementwise and row-wise kernels on `f32` slices: the frame they share (rows on the rayon
//! pool, lane-wise reductions, the AVX2 + FMA dispatch of `simd_kernel!`) and exact GELU with
//! its gradient. Through candle, GELU's forward calls the C library's scalar `erff` per element
//! and its gradient is a dozen full-size temporaries of single-threaded elementwise work (more
//! than the layer's matmuls); here each is one vectorised pass.

// The kernels are `inline(always)` so `simd_kernel!`'s AVX2 + FMA entry points compile them for
// those features (a call into a function compiled without them would not be vectorised so).
#![allow(clippy::inline_always)]

use crate::kernels::fast_math::{self, MulAdd};
use crate::kernels::par_init::par_init;

/// `xs` folded with `f` in eight independent lanes (which the compiler keeps in one vector
/// register), then across the lanes: a reduction that vectorises, unlike a running one.
#[inline(always)]
pub(crate) fn lanes(xs: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; 8];
    let chunks = xs.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = f(*a, x);
        }
    }
    let mut total = acc.into_iter().fold(init, &f);
    for &x in rest {
        total = f(total, x);
    }
    total
}

/// Elements per unit of work in elementwise kernels (the last unit may be shorter).
pub(crate) const CHUNK: usize = 16 * 1024;

/// A fresh buffer of `len` values whose rows of length `row` (the last may be shorter) are
/// written by `f(row_index, out_row)`, on the rayon pool in blocks of rows of about `CHUNK`
/// elements.
pub(crate) fn par_rows(len: usize, row: usize, f: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    let per = (CHUNK / row.max(1)).max(1);
    par_init(len, per * row.max(1), |block, chunk| {
        for (i, r) in chunk.chunks_mut(row.max(1)).enumerate() {
            f(block * per + i, r);
        }
    })
}

/// A buffer shaped like `xs` whose rows of `row` elements (the last may be shorter) are
/// `f(x_row, g_row, out_row)`: the gradient kernels' frame, for an input `xs` and a gradient
/// `gs` of the same shape, rows on the rayon pool.
pub(crate) fn pair_rows(
    xs: &[f32],
    gs: &[f32],
    row: usize,
    f: impl Fn(&[f32], &[f32], &mut [f32]) + Sync,
) -> Vec<f32> {
    par_rows(xs.len(), row, |r, o| {
        let at = r * row..r * row + o.len();
        f(&xs[at.clone()], &gs[at], o);
    })
}

/// Defines `$name(args)`, which runs `$kernel::<Fused>` compiled for AVX2 and FMA where the CPU
/// has them (eight lanes, one instruction per multiply-add) and `$kernel::<Split>` elsewhere.
/// The build targets baseline x86-64, so without this the kernels would get four lanes and no FMA.
macro_rules! simd_kernel {
    ($(#[$doc:meta])* $vis:vis fn $name:ident = $kernel:ident($($arg:ident: $ty:ty),*)) => {
        $(#[$doc])*
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn fast($($arg: $ty),*) {
                    $kernel::<$crate::kernels::fast_math::Fused>($($arg),*);
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features `fast` is compiled for.
                    unsafe { fast($($arg),*) };
                    return;
                }
            }
            $kernel::<$crate::kernels::fast_math::Split>($($arg),*);
        }
    };
}
pub(crate) use simd_kernel;

#[inline(always)]
fn gelu_kernel<M: MulAdd>(xs: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = fast_math::gelu::<M>(x);
    }
}

#[inline(always)]
fn gelu_grad_kernel<M: MulAdd>(xs: &[f32], gs: &[f32], out: &mut [f32]) {
    for ((o, &x), &g) in out.iter_mut().zip(xs).zip(gs) {
        *o = g * fast_math::gelu_grad::<M>(x);
    }
}

simd_kernel!(
    /// `out = gelu(xs)`.
    fn gelu_into = gelu_kernel(xs: &[f32], out: &mut [f32])
);
simd_kernel!(
    /// `out = gs ⊙ gelu'(xs)`.
    fn gelu_grad_into = gelu_grad_kernel(xs: &[f32], gs: &[f32], out: &mut [f32])
);

/// Exact (erf) GELU, `x Φ(x)`, of every value.
pub(crate) fn gelu(xs: &[f32]) -> Vec<f32> {
    par_rows(xs.len(), CHUNK, |c, o| {
        gelu_into(&xs[c * CHUNK..], o);
    })
}

/// `gs ⊙ gelu'(xs)` with `gelu'(x) = Φ(x) + x φ(x)` (exact, erf-based GELU).
pub(crate) fn gelu_grad(xs: &[f32], gs: &[f32]) -> Vec<f32> {
    pair_rows(xs, gs, CHUNK, gelu_grad_into)
}
