//! Multi-head scaled dot-product attention as one node of the autograd graph.
//!
//! Built from differentiable ops, the core of an encoder block (head split, scaling, scores,
//! mask, softmax, context, head merge) is about fourteen graph nodes, and candle's backward
//! allocates a zero tensor and adds into it for the input of every node. Here the forward runs
//! detached and one custom op carries the hand-written gradients of the query, key and value
//! projections back. On the host (`f32`, no mask or a key mask) forward and backward are the
//! per-sequence kernels of `kernels::attention`, reading heads in place; elsewhere candle's
//! ops: two batched products for the scores' gradient, two for the inputs', and the softmax
//! gradient ([`crate::layers::softmax`]).

use candle_core::Tensor;

use fedsa_core::Result;

use crate::backend::Context;
use crate::kernels::attention::{Dims, backward, forward};
use crate::kernels::route::{Grads, on_host, with_values};
use crate::layers::precomputed::{Attached, Grads3, Precomputed};
use crate::layers::softmax::{masked_softmax_fwd, softmax_grad};

/// What the backward needs: the heads as the forward used them (query already scaled) and the
/// attention probabilities.
struct Attention {
    out: Tensor,
    saved: Saved,
    scale: f64,
    heads: usize,
}

/// The forward's state, by where it ran.
enum Saved {
    /// Through candle's ops: the split heads (query scaled) and the probabilities.
    Ops {
        q: Tensor,
        k: Tensor,
        v: Tensor,
        probs: Tensor,
    },
    /// On the host kernels (`kernels::attention`): the inputs as given and the probabilities
    /// `[batch, heads, seq, seq]`.
    Host {
        q: Tensor,
        k: Tensor,
        v: Tensor,
        probs: Vec<f32>,
    },
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
    let (out, saved) = match route(q, k, v, mask_bias) {
        Route::Host(mask) => host_forward(q, k, v, mask, heads, scale).ctx("attention")?,
        Route::Ops => ops_forward(q, k, v, mask_bias, heads, scale)?,
    };
    if !(q.track_op() || k.track_op() || v.track_op()) {
        return Ok(out);
    }
    let op = Attention {
        out,
        saved,
        scale,
        heads,
    };
    q.apply_op3(k, v, Attached(op)).ctx("attention")
}

/// Where an attention call runs.
enum Route<'m> {
    /// On the host kernels, with the key mask (`seq` biases per sequence, or one row for all).
    Host(Option<&'m Tensor>),
    /// Through candle's ops (other devices, other mask shapes).
    Ops,
}

/// The host kernels apply where the routing rule sends the inputs and the mask (the op
/// attaches its own gradients), to inputs of one shape with no mask or a key mask
/// `[batch or 1, 1, 1, seq]`.
fn route<'m>(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&'m Tensor>) -> Route<'m> {
    let (Ok((b, _, h)), Ok((kb, s, kh))) = (q.dims3(), k.dims3()) else {
        return Route::Ops;
    };
    let fits = k.dims() == v.dims() && kb == b && kh == h;
    if !(fits && on_host([q, k, v].into_iter().chain(mask), Grads::Attached)) {
        return Route::Ops;
    }
    match mask {
        None => Route::Host(None),
        Some(m) if matches!(m.dims(), [mb, 1, 1, ms] if (*mb == 1 || *mb == b) && *ms == s) => {
            Route::Host(Some(m))
        }
        Some(_) => Route::Ops,
    }
}

/// The host kernels' sizes for queries `q` `[b, queries, h]` and keys `k` `[b, keys, h]`.
fn host_dims(q: &Tensor, k: &Tensor, heads: usize) -> candle_core::Result<Dims> {
    let (batch, queries, h) = q.dims3()?;
    Ok(Dims {
        batch,
        queries,
        keys: k.dim(1)?,
        heads,
        dim: h / heads,
    })
}

fn host_forward(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    heads: usize,
    scale: f64,
) -> candle_core::Result<(Tensor, Saved)> {
    let dims = host_dims(q, k, heads)?;
    let (batch, seq, h) = q.dims3()?;
    let (q, k, v) = (q.detach(), k.detach(), v.detach());
    let (out, probs) = with_values(&q, |qs| {
        with_values(&k, |ks| {
            with_values(&v, |vs| match mask {
                Some(m) => with_values(m, |ms| {
                    Ok(forward(qs, ks, vs, Some(ms), dims, scale as f32))
                }),
                None => Ok(forward(qs, ks, vs, None, dims, scale as f32)),
            })
        })
    })?;
    let out = Tensor::from_vec(out, (batch, seq, h), q.device())?;
    Ok((out, Saved::Host { q, k, v, probs }))
}

fn ops_forward(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask_bias: Option<&Tensor>,
    heads: usize,
    scale: f64,
) -> Result<(Tensor, Saved)> {
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
    let saved = Saved::Ops {
        q: qh,
        k: kh,
        v: vh,
        probs,
    };
    Ok((out, saved))
}

impl Attention {
    /// Gradients of the three inputs from the output's, each only where its input is tracked.
    fn input_grads(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Grads3> {
        match &self.saved {
            Saved::Ops {
                q: qh,
                k: kh,
                v: vh,
                probs,
            } => self.ops_grads([q, k, v], [qh, kh, vh], probs, grad),
            Saved::Host {
                q: qs,
                k: ks,
                v: vs,
                probs,
            } => {
                let want = [q.track_op(), k.track_op(), v.track_op()];
                let dims = host_dims(qs, ks, self.heads)?;
                let g = with_values(qs, |q| {
                    with_values(ks, |k| {
                        with_values(vs, |v| {
                            with_values(grad, |g| {
                                Ok(backward(q, k, v, probs, g, dims, self.scale as f32, want))
                            })
                        })
                    })
                })?;
                let tensor = |t: Option<Vec<f32>>, like: &Tensor| {
                    t.map(|t| Tensor::from_vec(t, like.dims(), like.device()))
                        .transpose()
                };
                Ok((tensor(g.q, qs)?, tensor(g.k, ks)?, tensor(g.v, vs)?))
            }
        }
    }

    /// [`Attention::input_grads`] through candle's ops, from the split heads.
    fn ops_grads(
        &self,
        [q, k, v]: [&Tensor; 3],
        [qh, kh, vh]: [&Tensor; 3],
        probs: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Grads3> {
        let g = split(grad, self.heads)?;
        let dv = if v.track_op() {
            Some(merge(&probs.t()?.matmul(&g)?)?)
        } else {
            None
        };
        if !(q.track_op() || k.track_op()) {
            return Ok((None, None, dv));
        }
        let dprobs = g.matmul(&vh.t()?)?;
        let dscores = softmax_grad(probs, &dprobs)?;
        let dq = if q.track_op() {
            Some(merge(&dscores.matmul(kh)?.affine(self.scale, 0.0)?)?)
        } else {
            None
        };
        // The query heads were stored scaled, so this is already d(scores)ᵀ q / sqrt(d).
        let dk = if k.track_op() {
            Some(merge(&dscores.t()?.matmul(qh)?)?)
        } else {
            None
        };
        Ok((dq, dk, dv))
    }
}

impl Precomputed for Attention {
    const NAME: &'static str = "attention";

    fn out(&self) -> &Tensor {
        &self.out
    }

    fn grads(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Grads3> {
        self.input_grads(q, k, v, grad)
    }
}
