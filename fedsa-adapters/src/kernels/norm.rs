//! The input gradients of LayerNorm and RMSNorm on `f32` rows, in one pass per row (statistics
//! in `f64`). Composed from candle ops each is a dozen full-size temporaries.

use crate::kernels::elementwise::pair_rows;

/// LayerNorm's input gradient over rows of `gamma.len()`: `(g - mean(g) - x̂ · mean(g ⊙ x̂)) / σ`
/// with `g = dy ⊙ γ`.
pub(crate) fn layer_norm_grad(xs: &[f32], gs: &[f32], gamma: &[f32], eps: f64) -> Vec<f32> {
    let row = gamma.len();
    pair_rows(xs, gs, row, |xr, gr, o| {
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
}

/// RMSNorm's input gradient over rows of `w.len()`: `r (g - x r² mean(g ⊙ x))` with
/// `g = dy ⊙ w`, `r = 1/rms(x)`.
pub(crate) fn rms_norm_grad(xs: &[f32], gs: &[f32], w: &[f32], eps: f64) -> Vec<f32> {
    let row = w.len();
    pair_rows(xs, gs, row, |xr, gr, o| {
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
}
