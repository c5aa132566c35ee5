//! Multi-head scaled dot-product attention as one node of the autograd graph.
//!
//! Built from differentiable ops, the core of an encoder block (head split, scaling, scores,
//! mask, softmax, context, head merge) is about fourteen graph nodes, and candle's backward
//! allocates a zero tensor and adds into it for the input of every node. Here the forward runs
//! detached and one custom op carries the hand-written gradients of the query, key and value
//! projections back: two batched products for the scores' gradient, two for the inputs', and the
//! softmax gradient in one pass (`host::softmax_grad`). On the host the mask and the softmax are
//! one vectorised pass as well (`host::masked_softmax_fwd`).

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use fedsa_core::Result;

use crate::backend::Context;
use crate::layers::grad::{device_result, host_result};
use crate::layers::host::{masked_softmax_fwd, softmax_grad};

/// What the backward needs: the heads as the forward used them (query already scaled) and the
/// attention probabilities.
struct Attention {
    out: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    probs: Tensor,
    scale: f64,
    heads: usize,
}

/// `[b, s, h]` -> `[b, heads, s, h / heads]`, contiguous.
fn split(t: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (b, s, h) = t.dims3()?;
    t.reshape((b, s, heads, h / heads))?
        .transpose(1, 2)?
        .contiguous()
}

/// `[b, heads, s, d]` -> `[b, s, heads * d]`, contiguous.
fn merge(t: &Tensor) -> candle_core::Result<Tensor> {
    let (b, n, s, d) = t.dims4()?;
    t.transpose(1, 2)?.contiguous()?.reshape((b, s, n * d))
}

/// `softmax(q kᵀ / sqrt(d) + mask) v` over `heads` heads, for `q`, `k`, `v` of shape
/// `[batch, seq, hidden]`; `mask_bias` (e.g. `[b, 1, 1, s]`, large negative on padded keys) is
/// broadcast over the scores and gets no gradient. Returns `[batch, seq, hidden]`.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask_bias: Option<&Tensor>,
    heads: usize,
) -> Result<Tensor> {
    let (_, _, h) = q.dims3().ctx("attention query")?;
    if heads == 0 || h % heads != 0 {
        return Err(fedsa_core::Error::backend(
            "attention",
            format!("hidden size {h} is not a multiple of {heads} heads"),
        ));
    }
    let scale = 1.0 / ((h / heads) as f64).sqrt();
    let qh = split(&q.detach(), heads)
        .and_then(|t| t.affine(scale, 0.0))
        .ctx("attention heads")?;
    let kh = split(&k.detach(), heads).ctx("attention heads")?;
    let vh = split(&v.detach(), heads).ctx("attention heads")?;
    let scores = qh.matmul(&kh.t().ctx("keys")?).ctx("attention scores")?;
    let probs = masked_softmax_fwd(&scores, mask_bias).ctx("softmax")?;
    let out = probs
        .matmul(&vh)
        .and_then(|c| merge(&c))
        .ctx("attention context")?;
    if !(q.track_op() || k.track_op() || v.track_op()) {
        return Ok(out);
    }
    let op = Attention {
        out,
        q: qh,
        k: kh,
        v: vh,
        probs,
        scale,
        heads,
    };
    q.apply_op3(k, v, op).ctx("attention")
}

impl Attention {
    /// Gradients of the three inputs from the output's, each only where its input is tracked.
    fn grads(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = split(grad, self.heads)?;
        let dv = if v.track_op() {
            Some(merge(&self.probs.t()?.matmul(&g)?)?)
        } else {
            None
        };
        if !(q.track_op() || k.track_op()) {
            return Ok((None, None, dv));
        }
        let dprobs = g.matmul(&self.v.t()?)?;
        let dscores = softmax_grad(&self.probs, &dprobs)?;
        let dq = if q.track_op() {
            Some(merge(&dscores.matmul(&self.k)?.affine(self.scale, 0.0)?)?)
        } else {
            None
        };
        // The query heads were stored scaled, so this is already d(scores)ᵀ q / sqrt(d).
        let dk = if k.track_op() {
            Some(merge(&dscores.t()?.matmul(&self.q)?)?)
        } else {
            None
        };
        Ok((dq, dk, dv))
    }
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        host_result(self.name(), &self.out)
    }

    fn cuda_fwd(
        &self,
        _: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        device_result(self.name(), &self.out)
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.grads(q, k, v, grad_res)
    }
}
