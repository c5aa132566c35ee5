//! A low-rank adapted layer, `base + scale · (dropout(x) · Aᵀ) · Bᵀ`, as one node of the
//! autograd graph.
//!
//! Run op by op, a LoRA-shaped program (dropout, two `linear`s, `scale`, the add onto the frozen
//! output) is about ten graph nodes, most of them over `[tokens, hidden]` tensors, and candle's
//! backward allocates a zero tensor and adds into it for the input of every node. Programs of
//! that shape (the built-in LoRA and rsLoRA, and any plugin spec that computes the same update)
//! run here instead: the same values, the same dropout draws, and hand-written gradients for
//! `x` (the frozen layer's included), `A` and `B`. Which programs have that shape is decided
//! once, when the program is compiled (`plan::low_rank`).

use candle_core::Tensor;

use crate::layers::linear;
use crate::layers::linear::{input_grad_plus, linear_plus};
use crate::layers::precomputed::{Attached, Grads3, Precomputed};

/// What the backward needs: the dropped-out input, its scaled projection on `A`, the mask and
/// the frozen weight.
struct LowRank {
    out: Tensor,
    dropped: Tensor,
    projected: Tensor,
    mask: Option<Tensor>,
    w0: Tensor,
    scale: f64,
}

/// `base + scale · ((x ⊙ mask) · aᵀ) · bᵀ` for `x` `[..., in]`, `a` `[r, in]`, `b` `[out, r]`,
/// where `base` is the frozen layer's output `x · w0ᵀ (+ bias)`: the adapted layer as one node.
/// `x` receives the frozen layer's input gradient (`dy · w0`) with the update's, so `base`'s
/// own node is left out of the backward. `mask` (the dropout mask, already scaled by
/// `1 / (1 - p)`) has `x`'s shape.
pub(crate) fn low_rank_update(
    x: &Tensor,
    base: &Tensor,
    w0: &Tensor,
    [a, b]: [&Tensor; 2],
    mask: Option<Tensor>,
    scale: f64,
) -> candle_core::Result<Tensor> {
    let xd = x.detach();
    let dropped = match &mask {
        Some(m) => xd.mul(m)?,
        None => xd,
    };
    // The scale goes on the rank-sized projection, not on the layer-sized product.
    let projected = linear(&dropped, &a.detach(), None)?.affine(scale, 0.0)?;
    // On the host the update is added onto the frozen output inside the product.
    let out = linear_plus(&projected, &b.detach(), None, &base.detach())?;
    if !(x.track_op() || a.track_op() || b.track_op()) {
        return Ok(out);
    }
    let op = LowRank {
        out,
        dropped,
        projected,
        mask,
        w0: w0.clone(),
        scale,
    };
    x.apply_op3(a, b, Attached(op))
}

/// `t` `[..., n]` as a matrix `[rows, n]`.
fn rows(t: &Tensor) -> candle_core::Result<Tensor> {
    let n = *t.dims().last().unwrap_or(&1);
    t.contiguous()?.reshape(((), n))
}

impl Precomputed for LowRank {
    const NAME: &'static str = "low-rank";

    fn out(&self) -> &Tensor {
        &self.out
    }

    fn grads(
        &self,
        x: &Tensor,
        a: &Tensor,
        b: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Grads3> {
        let g = rows(grad)?;
        let projected = rows(&self.projected)?;
        // d(projected) = g · b (scaled), then everything upstream of the projection.
        let dp = g.matmul(&b.detach())?.affine(self.scale, 0.0)?;
        let db = b
            .track_op()
            .then(|| g.t()?.matmul(&projected))
            .transpose()?;
        let da = a
            .track_op()
            .then(|| dp.t()?.matmul(&rows(&self.dropped)?))
            .transpose()?;
        let dx = x
            .track_op()
            .then(|| {
                let d = dp.matmul(&a.detach())?.reshape(x.dims())?;
                let d = match &self.mask {
                    Some(m) => d.mul(m)?,
                    None => d,
                };
                input_grad_plus(grad, &self.w0, &d)
            })
            .transpose()?;
        Ok((dx, da, db))
    }
}
