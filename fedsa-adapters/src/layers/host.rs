//! One-pass CPU kernels for the input gradients of the frozen layers, and for the two forwards
//! candle evaluates element by element through the C library (exact GELU, the attention
//! softmax). Composed from candle ops, each of these gradients is a dozen full-size temporaries
//! of single-threaded elementwise work (exact GELU's alone cost more than the layer's matmuls);
//! here each is one pass over the rows on the rayon pool, vectorised (`simd_kernel!`). Other
//! devices use the composed form.

// The kernels are `inline(always)` so `simd_kernel!`'s AVX2 + FMA entry points compile them for
// those features (a call into a function compiled without them would not be vectorised so).
#![allow(clippy::inline_always)]

use candle_core::{D, DType, Device, Storage, Tensor};

use crate::layers::fast_math::{self, Fused, MulAdd, Split};
use crate::layers::par_init::par_init;

/// Whether the one-pass kernels apply to `t`.
pub(crate) fn host(t: &Tensor) -> bool {
    matches!(t.device(), Device::Cpu) && t.dtype() == DType::F32
}

/// Runs `f` on the values of a host `f32` tensor, borrowed from its storage (copied only when
/// `t` is not contiguous).
pub(crate) fn with_values<R>(
    t: &Tensor,
    f: impl FnOnce(&[f32]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let t = if t.is_contiguous() {
        t.clone()
    } else {
        t.contiguous()?
    };
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("host kernel called on a device tensor")
    };
    let start = layout.start_offset();
    f(&cpu.as_slice::<f32>()?[start..start + layout.shape().elem_count()])
}

/// [`with_values`] for an optional tensor.
pub(crate) fn with_opt_values<R>(
    t: Option<&Tensor>,
    f: impl FnOnce(Option<&[f32]>) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    match t {
        Some(t) => with_values(t, |v| f(Some(v))),
        None => f(None),
    }
}

/// `xs` folded with `f` in eight independent lanes (which the compiler keeps in one vector
/// register), then across the lanes: a reduction that vectorises, unlike a running one.
fn lanes(xs: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
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
const CHUNK: usize = 16 * 1024;

/// A fresh buffer of `len` values whose rows of length `row` (the last may be shorter) are
/// written by `f(row_index, out_row)`, on the rayon pool in blocks of rows of about `CHUNK`
/// elements.
fn par_rows(len: usize, row: usize, f: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    let per = (CHUNK / row.max(1)).max(1);
    par_init(len, per * row.max(1), |block, chunk| {
        for (i, r) in chunk.chunks_mut(row.max(1)).enumerate() {
            f(block * per + i, r);
        }
    })
}

/// A host tensor shaped like `x` whose rows of `row` elements (the last may be shorter) are
/// `f(x_row, dy_row, out_row)`: the gradient kernels' frame, inputs read in place, rows on the
/// rayon pool.
fn grad_rows(
    x: &Tensor,
    dy: &Tensor,
    row: usize,
    f: impl Fn(&[f32], &[f32], &mut [f32]) + Sync,
) -> candle_core::Result<Tensor> {
    let out = with_values(x, |xs| {
        with_values(dy, |gs| {
            Ok(par_rows(xs.len(), row, |r, o| {
                let at = r * row..r * row + o.len();
                f(&xs[at.clone()], &gs[at], o);
            }))
        })
    })?;
    Tensor::from_vec(out, x.dims(), x.device())
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
                    $kernel::<Fused>($($arg),*);
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features `fast` is compiled for.
                    unsafe { fast($($arg),*) };
                    return;
                }
            }
            $kernel::<Split>($($arg),*);
        }
    };
}

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

/// Softmax of `x + mask` for consecutive rows of length `mask.len()` of `xs` into `out`; one
/// pass per step without a running float reduction, so each step vectorises.
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
    /// `out = gelu(xs)`.
    fn gelu_into = gelu_kernel(xs: &[f32], out: &mut [f32])
);
simd_kernel!(
    /// `out = gs ⊙ gelu'(xs)`.
    fn gelu_grad_into = gelu_grad_kernel(xs: &[f32], gs: &[f32], out: &mut [f32])
);
simd_kernel!(
    /// Row-wise `softmax(xs + mask)`.
    pub(crate) fn masked_softmax_into = masked_softmax_kernel(xs: &[f32], mask: &[f32], out: &mut [f32])
);

/// Exact (erf) GELU, `x Φ(x)`, on the host in one vectorised pass; elsewhere candle's.
pub(crate) fn gelu_erf(x: &Tensor) -> candle_core::Result<Tensor> {
    if !host(x) {
        return x.gelu_erf();
    }
    let out = with_values(x, |xs| {
        Ok(par_rows(xs.len(), CHUNK, |c, o| {
            gelu_into(&xs[c * CHUNK..], o);
        }))
    })?;
    Tensor::from_vec(out, x.dims(), x.device())
}

/// `dy ⊙ gelu'(x)` with `gelu'(x) = Φ(x) + x φ(x)` (exact, erf-based GELU).
pub(crate) fn gelu_erf_grad(x: &Tensor, dy: &Tensor) -> candle_core::Result<Tensor> {
    if !host(x) {
        let pdf = (x.sqr()? * -0.5)?.exp()?
            * (0.5 * std::f64::consts::FRAC_2_SQRT_PI / std::f64::consts::SQRT_2);
        let cdf = (((x / std::f64::consts::SQRT_2)?.erf()? + 1.0)? * 0.5)?;
        return dy * (cdf + (pdf? * x)?)?;
    }
    grad_rows(x, dy, CHUNK, gelu_grad_into)
}

/// LayerNorm's input gradient: `(g - mean(g) - x̂ · mean(g ⊙ x̂)) / σ` with `g = dy ⊙ γ`.
pub(crate) fn layer_norm_grad(
    x: &Tensor,
    dy: &Tensor,
    gamma: &Tensor,
    eps: f64,
) -> candle_core::Result<Tensor> {
    if !host(x) {
        let n = x.dim(D::Minus1)? as f64;
        let mean = (x.sum_keepdim(D::Minus1)? / n)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = (xc.sqr()?.sum_keepdim(D::Minus1)? / n)?;
        let inv_std = (var + eps)?.sqrt()?.recip()?;
        let xhat = xc.broadcast_mul(&inv_std)?;
        let g = dy.broadcast_mul(gamma)?;
        let g_mean = (g.sum_keepdim(D::Minus1)? / n)?;
        let gx_mean = ((&g * &xhat)?.sum_keepdim(D::Minus1)? / n)?;
        return g
            .broadcast_sub(&g_mean)?
            .sub(&xhat.broadcast_mul(&gx_mean)?)?
            .broadcast_mul(&inv_std);
    }
    with_values(gamma, |gamma| {
        let row = gamma.len();
        grad_rows(x, dy, row, |xr, gr, o| {
            let n = row as f64;
            let mean = xr.iter().map(|v| f64::from(*v)).sum::<f64>() / n;
            let var = xr
                .iter()
                .map(|v| (f64::from(*v) - mean).powi(2))
                .sum::<f64>()
                / n;
            let inv_std = 1.0 / (var + eps).sqrt();
            let (mut g_sum, mut gx_sum) = (0.0f64, 0.0f64);
            for j in 0..row {
                let g = f64::from(gr[j]) * f64::from(gamma[j]);
                g_sum += g;
                gx_sum += g * (f64::from(xr[j]) - mean) * inv_std;
            }
            let (g_mean, gx_mean) = (g_sum / n, gx_sum / n);
            for j in 0..row {
                let g = f64::from(gr[j]) * f64::from(gamma[j]);
                let xhat = (f64::from(xr[j]) - mean) * inv_std;
                o[j] = ((g - g_mean - xhat * gx_mean) * inv_std) as f32;
            }
        })
    })
}

/// `softmax(scores + bias)` over the last dimension, for `scores` `[b, ..., s]` and a key mask
/// `bias` of `s` values per batch row (`[b or 1, 1, 1, s]`), in one pass per row on all cores;
/// other shapes and devices use candle's ops.
pub(crate) fn masked_softmax_fwd(
    scores: &Tensor,
    bias: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let dims = scores.dims();
    let row = *dims.last().unwrap_or(&1);
    let batch = dims.first().copied().unwrap_or(1);
    let per_batch = scores.elem_count() / batch.max(1);
    let key_mask = bias.is_none_or(|b| {
        b.elem_count() == row && b.dim(0).is_ok_and(|d| d == 1)
            || b.elem_count() == batch * row && b.dim(0).is_ok_and(|d| d == batch)
    });
    if !host(scores) || !key_mask || row == 0 {
        let s = match bias {
            Some(b) => scores.broadcast_add(b)?,
            None => scores.clone(),
        };
        return candle_nn::ops::softmax_last_dim(&s.contiguous()?);
    }
    let zeros = vec![0f32; row];
    let out = with_values(scores, |xs| {
        let masked = |bs: &[f32]| {
            Ok(par_rows(xs.len(), row, |r, o| {
                let b = (r * row) / per_batch.max(1);
                let mask = if bs.len() == row {
                    bs
                } else {
                    &bs[b * row..(b + 1) * row]
                };
                masked_softmax_into(&xs[r * row..(r + 1) * row], mask, o);
            }))
        };
        match bias {
            Some(b) => with_values(b, masked),
            None => masked(&zeros),
        }
    })?;
    Tensor::from_vec(out, dims, scores.device())
}

/// Softmax's input gradient from its output: `y ⊙ (dy - Σ dy ⊙ y)` over the last dimension.
pub(crate) fn softmax_grad(y: &Tensor, dy: &Tensor) -> candle_core::Result<Tensor> {
    if !host(y) {
        let dot = (dy * y)?.sum_keepdim(D::Minus1)?;
        return dy.broadcast_sub(&dot)? * y;
    }
    let row = *y.dims().last().unwrap_or(&1);
    grad_rows(y, dy, row, |yr, gr, o| {
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

/// RMSNorm's input gradient: `r (g - x r² mean(g ⊙ x))` with `g = dy ⊙ w`, `r = 1/rms(x)`.
pub(crate) fn rms_norm_grad(
    x: &Tensor,
    dy: &Tensor,
    weight: &Tensor,
    eps: f64,
) -> candle_core::Result<Tensor> {
    if !host(x) {
        let n = x.dim(D::Minus1)? as f64;
        let ms = (x.sqr()?.sum_keepdim(D::Minus1)? / n)?;
        let r = (ms + eps)?.sqrt()?.recip()?;
        let g = dy.broadcast_mul(weight)?;
        let gx_mean = ((&g * x)?.sum_keepdim(D::Minus1)? / n)?;
        let coef = (gx_mean * r.sqr()?)?;
        return g.sub(&x.broadcast_mul(&coef)?)?.broadcast_mul(&r);
    }
    with_values(weight, |w| {
        let row = w.len();
        grad_rows(x, dy, row, |xr, gr, o| {
            let n = row as f64;
            let ms = xr.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / n;
            let r = 1.0 / (ms + eps).sqrt();
            let gx: f64 = (0..row)
                .map(|j| f64::from(gr[j]) * f64::from(w[j]) * f64::from(xr[j]))
                .sum();
            let coef = gx / n * r * r;
            for j in 0..row {
                let g = f64::from(gr[j]) * f64::from(w[j]);
                o[j] = ((g - f64::from(xr[j]) * coef) * r) as f32;
            }
        })
    })
}
