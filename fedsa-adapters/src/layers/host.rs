//! One-pass CPU kernels for the input gradients of the frozen layers. Composed from candle ops,
//! each of these gradients is a dozen full-size temporaries of single-threaded elementwise
//! work (exact GELU's alone cost more than the layer's matmuls); here each is one pass over the
//! rows, split across the available cores. Other devices use the composed form.

use candle_core::{D, DType, Device, Tensor};

/// Whether the one-pass kernels apply to `t`.
fn host(t: &Tensor) -> bool {
    matches!(t.device(), Device::Cpu) && t.dtype() == DType::F32
}

fn values(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// Runs `f(row_index, out_row)` over rows of length `row`, on all cores.
fn par_rows(out: &mut [f32], row: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if out.is_empty() || row == 0 {
        return;
    }
    let rows = out.len() / row.max(1);
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(rows.max(1));
    let per = rows.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        for (chunk_index, chunk) in out.chunks_mut(per * row).enumerate() {
            let f = &f;
            s.spawn(move || {
                for (i, r) in chunk.chunks_mut(row).enumerate() {
                    f(chunk_index * per + i, r);
                }
            });
        }
    });
}

/// `dy ⊙ gelu'(x)` with `gelu'(x) = Φ(x) + x φ(x)` (exact, erf-based GELU); on the host `Φ(x)`
/// is read off the forward output `y = x Φ(x)` instead of evaluating erf again.
pub(crate) fn gelu_erf_grad(x: &Tensor, y: &Tensor, dy: &Tensor) -> candle_core::Result<Tensor> {
    if !host(x) {
        let pdf = (x.sqr()? * -0.5)?.exp()?
            * (0.5 * std::f64::consts::FRAC_2_SQRT_PI / std::f64::consts::SQRT_2);
        let cdf = (((x / std::f64::consts::SQRT_2)?.erf()? + 1.0)? * 0.5)?;
        return dy * (cdf + (pdf? * x)?)?;
    }
    let (xs, ys, gs) = (values(x)?, values(y)?, values(dy)?);
    let row = *x.dims().last().unwrap_or(&1);
    let mut out = vec![0f32; xs.len()];
    par_rows(&mut out, row, |r, o| {
        let base = r * row;
        for (j, v) in o.iter_mut().enumerate() {
            let xv = xs[base + j];
            // Φ(x) = y / x away from 0; near 0 its first-order expansion is exact to f32.
            let cdf = if xv.abs() > 1e-3 {
                ys[base + j] / xv
            } else {
                0.5 + 0.398_942_3 * xv
            };
            let pdf = (-0.5 * xv * xv).exp() * 0.398_942_3;
            *v = gs[base + j] * (cdf + xv * pdf);
        }
    });
    Tensor::from_vec(out, x.dims(), x.device())
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
    let (xs, gs, gamma) = (values(x)?, values(dy)?, values(gamma)?);
    let row = gamma.len();
    let mut out = vec![0f32; xs.len()];
    par_rows(&mut out, row, |r, o| {
        let xr = &xs[r * row..(r + 1) * row];
        let gr = &gs[r * row..(r + 1) * row];
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
    });
    Tensor::from_vec(out, x.dims(), x.device())
}

/// Softmax's input gradient from its output: `y ⊙ (dy - Σ dy ⊙ y)` over the last dimension.
pub(crate) fn softmax_grad(y: &Tensor, dy: &Tensor) -> candle_core::Result<Tensor> {
    if !host(y) {
        let dot = (dy * y)?.sum_keepdim(D::Minus1)?;
        return dy.broadcast_sub(&dot)? * y;
    }
    let (ys, gs) = (values(y)?, values(dy)?);
    let row = *y.dims().last().unwrap_or(&1);
    let mut out = vec![0f32; ys.len()];
    par_rows(&mut out, row, |r, o| {
        let yr = &ys[r * row..(r + 1) * row];
        let gr = &gs[r * row..(r + 1) * row];
        let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
        for j in 0..row {
            o[j] = yr[j] * (gr[j] - dot);
        }
    });
    Tensor::from_vec(out, y.dims(), y.device())
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
    let (xs, gs, w) = (values(x)?, values(dy)?, values(weight)?);
    let row = w.len();
    let mut out = vec![0f32; xs.len()];
    par_rows(&mut out, row, |i, o| {
        let xr = &xs[i * row..(i + 1) * row];
        let gr = &gs[i * row..(i + 1) * row];
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
    });
    Tensor::from_vec(out, x.dims(), x.device())
}
