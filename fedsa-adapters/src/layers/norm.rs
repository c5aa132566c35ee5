//! LayerNorm with frozen scale and shift: candle's fused forward, and the analytic input
//! gradient (the fused `candle_nn::LayerNorm` has no backward and cuts training silently), one
//! pass per row on the host (`kernels::norm`) with the candle form here as the fallback.

use candle_core::{D, Tensor};

use fedsa_core::Result;

use crate::backend::Context;
use crate::kernels;
use crate::kernels::route::{Grads, on_host, pair_kernel, with_values};
use crate::layers::grad::{with_input_grad, with_pair_grad, with_sum_grad};
use crate::layers::linear::{FrozenLinear, input_grad, linear_plus};

/// A pretrained LayerNorm over the last dimension.
#[derive(Clone)]
pub struct FrozenLayerNorm {
    gamma: Tensor,
    beta: Tensor,
    eps: f64,
}

impl FrozenLayerNorm {
    pub fn new(gamma: Tensor, beta: Tensor, eps: f64) -> Self {
        Self { gamma, beta, eps }
    }

    pub fn gamma(&self) -> &Tensor {
        &self.gamma
    }

    pub fn beta(&self) -> &Tensor {
        &self.beta
    }

    /// `gamma ⊙ (x - mean) / sqrt(var + eps) + beta`; only `x` receives a gradient.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let xd = x.detach();
        let xd = if xd.is_contiguous() {
            xd
        } else {
            xd.contiguous().ctx("layer norm")?
        };
        let y = self.normalize(&xd)?;
        let (gamma, eps) = (self.gamma.clone(), self.eps);
        with_input_grad("frozen-layer-norm", x, y, move |x, _y, dy| {
            layer_norm_grad(x, dy, &gamma, eps)
        })
    }

    /// `LayerNorm(a + residual)`, the sum and the norm as one graph node: both summands get
    /// the norm's input gradient.
    pub fn forward_residual(&self, a: &Tensor, residual: &Tensor) -> Result<Tensor> {
        let sum = (a.detach() + residual.detach()).ctx("residual")?;
        let y = self.normalize(&sum)?;
        let (gamma, eps) = (self.gamma.clone(), self.eps);
        with_sum_grad(
            "residual-layer-norm",
            a,
            residual,
            sum,
            y,
            move |sum, dy| layer_norm_grad(sum, dy, &gamma, eps),
        )
    }

    /// `LayerNorm(linear(input) + residual)`: a frozen linear layer, the residual sum and the
    /// norm as one graph node (`input` gets the gradient through the linear layer, `residual`
    /// the norm's), the product added onto the residual in place on the host.
    pub fn forward_linear_residual(
        &self,
        input: &Tensor,
        linear: &FrozenLinear,
        residual: &Tensor,
    ) -> Result<Tensor> {
        let (w, b) = (linear.weight().clone(), linear.bias());
        let sum = linear_plus(&input.detach(), &w, b, &residual.detach()).ctx("residual")?;
        let y = self.normalize(&sum)?;
        let (gamma, eps) = (self.gamma.clone(), self.eps);
        with_pair_grad(
            "linear-residual-layer-norm",
            input,
            residual,
            y,
            move |dy, [for_input, for_residual]| {
                let g = layer_norm_grad(&sum, dy, &gamma, eps)?;
                let di = for_input.then(|| input_grad(&g, &w)).transpose()?;
                Ok((di, for_residual.then_some(g)))
            },
        )
    }

    /// The norm of a detached, contiguous `x` (no gradient).
    pub(crate) fn normalize(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::layer_norm(x, &self.gamma, &self.beta, self.eps as f32).ctx("layer norm")
    }

    /// The norm's input gradient at `x` from `dy`.
    pub(crate) fn input_grad(&self, x: &Tensor, dy: &Tensor) -> candle_core::Result<Tensor> {
        layer_norm_grad(x, dy, &self.gamma, self.eps)
    }
}

/// LayerNorm's input gradient: `(g - mean(g) - x̂ · mean(g ⊙ x̂)) / σ` with `g = dy ⊙ γ`.
pub(crate) fn layer_norm_grad(
    x: &Tensor,
    dy: &Tensor,
    gamma: &Tensor,
    eps: f64,
) -> candle_core::Result<Tensor> {
    if !on_host([x, dy, gamma], Grads::Attached) {
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
        pair_kernel(x, dy, |xs, gs| {
            kernels::norm::layer_norm_grad(xs, gs, gamma, eps)
        })
    })
}
