//! Attention softmax with an additive mask: candle's fused `softmax_last_dim` forward (which has
//! no backward of its own) plus the analytic gradient `y ⊙ (dy - Σ dy ⊙ y)`.

use candle_core::Tensor;

use fedsa_core::Result;

use crate::backend::Context;
use crate::layers::grad::with_input_grad;
use crate::layers::host::softmax_grad;

/// `softmax(scores + bias)` over the last dimension; `bias` (e.g. `[b, 1, 1, s]`, large
/// negative on padded keys) is broadcast and receives no gradient.
pub fn masked_softmax(scores: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let s = scores.detach();
    let s = match bias {
        Some(b) => s.broadcast_add(b).ctx("attention mask")?,
        None => s,
    };
    let s = if s.is_contiguous() {
        s
    } else {
        s.contiguous().ctx("softmax")?
    };
    let y = candle_nn::ops::softmax_last_dim(&s).ctx("softmax")?;
    with_input_grad("masked-softmax", scores, y, |_x, y, dy| softmax_grad(y, dy))
}
