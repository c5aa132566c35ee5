//! A frozen feed-forward block (`intermediate` linear, exact GELU, `output` linear) as one node
//! of the autograd graph, for layers where neither linear carries an adapter.
//!
//! Built from the three frozen layers, the block is three nodes whose inputs include two
//! `[tokens, intermediate]` tensors (four times the hidden width): candle's backward allocates a
//! zero tensor and adds into it for each, and the forward copies both for the hand-written
//! gradients. As one node only the block's input is tracked, and the backward keeps just the
//! pre-activation for GELU's derivative.

use candle_core::Tensor;

use fedsa_core::Result;

use crate::backend::Context;
use crate::layers::grad::with_input_grad;
use crate::layers::host;
use crate::layers::linear::{FrozenLinear, input_grad, linear};

/// `output(gelu(intermediate(x)))`; only `x` receives a gradient.
pub fn frozen_feed_forward(
    x: &Tensor,
    intermediate: &FrozenLinear,
    output: &FrozenLinear,
) -> Result<Tensor> {
    let pre = linear(&x.detach(), intermediate.weight(), intermediate.bias())
        .ctx("frozen feed-forward")?;
    let act = host::gelu_erf(&pre).ctx("gelu")?;
    let y = linear(&act, output.weight(), output.bias()).ctx("frozen feed-forward")?;
    drop(act);
    let (w_in, w_out) = (intermediate.weight().clone(), output.weight().clone());
    with_input_grad("frozen-feed-forward", x, y, move |_x, _y, dy| {
        let d_act = input_grad(dy, &w_out)?;
        let d_pre = host::gelu_erf_grad(&pre, &d_act)?;
        input_grad(&d_pre, &w_in)
    })
}
