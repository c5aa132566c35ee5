//! A frozen feed-forward block (`intermediate` linear, exact GELU, `output` linear), its
//! residual sum and the LayerNorm after it as one node of the autograd graph, for layers where
//! neither linear carries an adapter.
//!
//! Built from the frozen layers, the block is five nodes whose inputs include two
//! `[tokens, intermediate]` tensors (four times the hidden width): candle's backward allocates a
//! zero tensor and adds into it for each, and the forward copies every output for the
//! hand-written gradients. As one node only the block's input is tracked, and the backward keeps
//! just the pre-activation for GELU's derivative and the sum for the norm's.

use candle_core::Tensor;

use fedsa_core::Result;

use crate::backend::Context;
use crate::layers::activation::{gelu_erf_grad, gelu_erf_value};
use crate::layers::grad::with_input_grad;
use crate::layers::linear::{FrozenLinear, input_grad, input_grad_plus, linear, linear_plus};
use crate::layers::norm::FrozenLayerNorm;

/// `norm(output(gelu(intermediate(x))) + x)`: the frozen feed-forward block, its residual and
/// the norm after it as one node; only `x` receives a gradient (the norm's, plus the block's
/// backward of it). The output product is added onto `x` and the last input-gradient product
/// onto the norm's gradient in place on the host.
pub fn frozen_feed_forward_norm(
    x: &Tensor,
    intermediate: &FrozenLinear,
    output: &FrozenLinear,
    norm: &FrozenLayerNorm,
) -> Result<Tensor> {
    let xd = x.detach();
    let pre = linear(&xd, intermediate.weight(), intermediate.bias()).ctx("frozen feed-forward")?;
    let act = gelu_erf_value(&pre).ctx("gelu")?;
    let sum = linear_plus(&act, output.weight(), output.bias(), &xd).ctx("frozen feed-forward")?;
    drop(act);
    let y = norm.normalize(&sum)?;
    let (w_in, w_out, norm) = (
        intermediate.weight().clone(),
        output.weight().clone(),
        norm.clone(),
    );
    with_input_grad("frozen-feed-forward-norm", x, y, move |_x, _y, dy| {
        let g = norm.input_grad(&sum, dy)?;
        let d_act = input_grad(&g, &w_out)?;
        let d_pre = gelu_erf_grad(&pre, &d_act)?;
        input_grad_plus(&d_pre, &w_in, &g)
    })
}
