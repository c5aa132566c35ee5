//! RMSNorm with a frozen scale (LLaMA's `input_layernorm`, `post_attention_layernorm`, final
//! norm): candle's fused forward, which has no backward, plus the analytic input gradient, one
//! pass per row on the host (`kernels::norm`) with the candle form here as the fallback.

use candle_core::{D, Tensor};

use fedsa_core::Result;

use crate::backend::Context;
use crate::kernels;
use crate::kernels::route::{Grads, on_host, pair_kernel, with_values};
use crate::layers::grad::with_input_grad;

/// A pretrained RMSNorm over the last dimension: `x / sqrt(mean(x²) + eps) ⊙ weight`.
#[derive(Clone)]
pub struct FrozenRmsNorm {
    weight: Tensor,
    eps: f64,
}

impl FrozenRmsNorm {
    pub fn new(weight: Tensor, eps: f64) -> Self {
        Self { weight, eps }
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The normalised input; only `x` receives a gradient.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let xd = x.detach();
        let xd = if xd.is_contiguous() {
            xd
        } else {
            xd.contiguous().ctx("rms norm")?
        };
        let y = candle_nn::ops::rms_norm(&xd, &self.weight, self.eps as f32).ctx("rms norm")?;
        let (weight, eps) = (self.weight.clone(), self.eps);
        with_input_grad("frozen-rms-norm", x, y, move |x, _y, dy| {
            rms_norm_grad(x, dy, &weight, eps)
        })
    }
}

/// The same norm from differentiable candle ops (a reference for tests).
pub fn rms_norm_composed(x: &Tensor, weight: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_div(&(ms + eps)?.sqrt()?)?.broadcast_mul(weight)
}

/// RMSNorm's input gradient: `r (g - x r² mean(g ⊙ x))` with `g = dy ⊙ w`, `r = 1/rms(x)`.
pub(crate) fn rms_norm_grad(
    x: &Tensor,
    dy: &Tensor,
    weight: &Tensor,
    eps: f64,
) -> candle_core::Result<Tensor> {
    if !on_host([x, dy, weight], Grads::Attached) {
        let n = x.dim(D::Minus1)? as f64;
        let ms = (x.sqr()?.sum_keepdim(D::Minus1)? / n)?;
        let r = (ms + eps)?.sqrt()?.recip()?;
        let g = dy.broadcast_mul(weight)?;
        let gx_mean = ((&g * x)?.sum_keepdim(D::Minus1)? / n)?;
        let coef = (gx_mean * r.sqr()?)?;
        return g.sub(&x.broadcast_mul(&coef)?)?.broadcast_mul(&r);
    }
    with_values(weight, |w| {
        pair_kernel(x, dy, |xs, gs| kernels::norm::rms_norm_grad(xs, gs, w, eps))
    })
}
