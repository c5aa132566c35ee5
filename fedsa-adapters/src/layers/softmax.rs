//! Attention softmax with an additive mask: candle's fused `softmax_last_dim` forward (which has
//! no backward of its own) plus the analytic gradient `y ⊙ (dy - Σ dy ⊙ y)`. On the host both
//! are one pass per row (`kernels::softmax`); the candle forms here are the fallback.

use candle_core::{D, Tensor};

use fedsa_core::Result;

use crate::backend::Context;
use crate::kernels;
use crate::kernels::route::{Grads, on_host, pair_kernel, with_values};
use crate::layers::grad::with_input_grad;

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

/// `softmax(scores + bias)` over the last dimension (no gradient), for `scores` `[b, ..., s]`
/// and a key mask `bias` of `s` values per batch row (`[b or 1, 1, 1, s]`): in one pass per row
/// on all cores on the host; other shapes and devices use candle's ops.
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
    if !on_host([scores].into_iter().chain(bias), Grads::Attached) || !key_mask || row == 0 {
        let s = match bias {
            Some(b) => scores.broadcast_add(b)?,
            None => scores.clone(),
        };
        return candle_nn::ops::softmax_last_dim(&s.contiguous()?);
    }
    let zeros = vec![0f32; row];
    let out = with_values(scores, |xs| {
        let masked = |mask: &[f32]| Ok(kernels::softmax::masked_softmax(xs, row, per_batch, mask));
        match bias {
            Some(b) => with_values(b, masked),
            None => masked(&zeros),
        }
    })?;
    Tensor::from_vec(out, dims, scores.device())
}

/// Softmax's input gradient from its output: `y ⊙ (dy - Σ dy ⊙ y)` over the last dimension.
pub(crate) fn softmax_grad(y: &Tensor, dy: &Tensor) -> candle_core::Result<Tensor> {
    if !on_host([y, dy], Grads::Attached) {
        let dot = (dy * y)?.sum_keepdim(D::Minus1)?;
        return dy.broadcast_sub(&dot)? * y;
    }
    let row = *y.dims().last().unwrap_or(&1);
    pair_kernel(y, dy, |ys, gs| kernels::softmax::softmax_grad(ys, gs, row))
}
