//! The decoder's self-attention over a whole sequence (training, and evaluation's teacher-forced
//! pass): rotary positions, grouped-query heads, the causal mask and padded keys, as one node of
//! the autograd graph.
//!
//! On the host (`f32`) forward and backward are `kernels::causal`, reading the projections'
//! heads in place. Elsewhere the same math through candle's ops ([`grouped_attention`], also
//! the generation path's, which appends keys to a cache): heads split out, the rotation, the
//! scaled scores with the additive mask ([`causal_bias`]), the softmax and the context.

use candle_core::Tensor;

use fedsa_core::Result;

use crate::backend::Context;
use crate::kernels::causal::{Dims, Rotary, Saved, backward, forward};
use crate::kernels::route::{Grads, on_host, with_values};
use crate::layers::precomputed::{Attached, Grads3, Precomputed};
use crate::layers::rope::RotaryTables;
use crate::layers::softmax::masked_softmax;

/// Additive attention bias on hidden keys: large enough to zero them after the softmax.
pub(crate) const MASKED: f32 = -1e9;

/// The heads of one attention call.
#[derive(Clone, Copy, Debug)]
pub struct Heads {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads, each shared by `heads / kv_heads` query heads.
    pub kv_heads: usize,
    /// Values per head.
    pub dim: usize,
}

/// `softmax(rot(q) rot(k)ᵀ / sqrt(dim) + mask) v` for `q` `[batch, seq, heads * dim]` and `k`,
/// `v` `[batch, seq, kv_heads * dim]`, the tokens at positions `0..seq`: query `i` sees keys
/// `0..=i` that `keys` (1 real, 0 padding, row-major `[batch, seq]`; `None`: all real) does
/// not hide. Returns `[batch, seq, heads * dim]`.
pub fn causal_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    keys: Option<&[u32]>,
    rotary: &RotaryTables,
    h: Heads,
) -> Result<Tensor> {
    let (b, s, qw) = q.dims3().ctx("attention query")?;
    let (kb, ks, kw) = k.dims3().ctx("attention key")?;
    let fits = h.kv_heads > 0
        && h.heads.is_multiple_of(h.kv_heads)
        && qw == h.heads * h.dim
        && kw == h.kv_heads * h.dim
        && (kb, ks) == (b, s)
        && v.dims() == k.dims()
        && keys.is_none_or(|m| m.len() == b * s)
        && s <= rotary.len();
    if !fits {
        return Err(fedsa_core::Error::backend(
            "attention",
            format!(
                "query {:?}, key {:?}, value {:?} do not fit {h:?} at {} positions",
                q.dims(),
                k.dims(),
                v.dims(),
                rotary.len()
            ),
        ));
    }
    let scale = 1.0 / (h.dim as f64).sqrt();
    if !on_host([q, k, v], Grads::Attached) {
        let split = |t: &Tensor, n: usize| {
            t.reshape((b, s, n, h.dim))
                .and_then(|t| t.transpose(1, 2))
                .and_then(|t| t.contiguous())
                .ctx("attention heads")
        };
        let qh = rotary
            .apply(&split(q, h.heads)?, 0)?
            .affine(scale, 0.0)
            .ctx("query")?;
        let kh = rotary.apply(&split(k, h.kv_heads)?, 0)?;
        let bias = causal_bias(keys, b, s, 0, &[], q)?;
        return grouped_attention(&qh, &kh, &split(v, h.kv_heads)?, bias.as_ref());
    }
    let (cos, sin) = rotary.host_tables(s)?;
    let dims = Dims {
        batch: b,
        seq: s,
        heads: h.heads,
        kv_heads: h.kv_heads,
        dim: h.dim,
    };
    let (q, k, v) = (q.clone(), k.clone(), v.clone());
    let (qd, kd, vd) = (q.detach(), k.detach(), v.detach());
    let rot = Rotary {
        cos: &cos,
        sin: &sin,
    };
    let (out, saved) = with_values(&qd, |qs| {
        with_values(&kd, |ks| {
            with_values(&vd, |vs| {
                Ok(forward(qs, ks, vs, keys, rot, dims, scale as f32))
            })
        })
    })
    .ctx("attention")?;
    let out = Tensor::from_vec(out, (b, s, qw), q.device()).ctx("attention")?;
    if !(q.track_op() || k.track_op() || v.track_op()) {
        return Ok(out);
    }
    let op = Causal {
        out,
        saved,
        v: vd,
        cos,
        sin,
        dims,
        scale: scale as f32,
    };
    q.apply_op3(&k, &v, Attached(op)).ctx("attention")
}

/// `softmax(q kᵀ + bias) v` through candle's ops for the rotated, scaled query heads `q`
/// `[batch, heads, seq, dim]` and key/value heads `k`, `v` `[batch, kv_heads, keys, dim]`:
/// the query heads sharing a key/value head are folded into the rows, so keys and values are
/// never copied per query head. Returns `[batch, seq, heads * dim]`.
pub(crate) fn grouped_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let (b, nh, s, dh) = q.dims4().ctx("attention query")?;
    let (_, nkv, keys, _) = k.dims4().ctx("attention key")?;
    let rep = nh / nkv;
    let scores = q
        .reshape((b, nkv, rep * s, dh))
        .and_then(|q| q.matmul(&k.t()?))
        .and_then(|t| t.reshape((b, nh, s, keys)))
        .ctx("attention scores")?;
    let probs = masked_softmax(&scores, bias)?;
    probs
        .reshape((b, nkv, rep * s, keys))
        .and_then(|p| p.matmul(v))
        .and_then(|t| t.reshape((b, nh, s, dh)))
        .and_then(|t| t.transpose(1, 2))
        .and_then(|t| t.reshape((b, s, nh * dh)))
        .ctx("attention context")
}

/// The additive mask `[batch, 1, seq, offset + seq]` of `seq` new tokens after `offset` cached
/// ones: a query sees keys up to its own position, and no padded key (new ones by `keys`, the
/// first `pads[row]` of a row; `pads` empty: none). `None` when nothing is hidden (one new
/// token, no padding). In `like`'s dtype, on its device.
pub(crate) fn causal_bias(
    keys: Option<&[u32]>,
    b: usize,
    s: usize,
    offset: usize,
    pads: &[usize],
    like: &Tensor,
) -> Result<Option<Tensor>> {
    let pad = |row: usize| pads.get(row).copied().unwrap_or(0);
    if s == 1 && keys.is_none() && (0..b).all(|r| pad(r) == 0) {
        return Ok(None);
    }
    let width = offset + s;
    let mut bias = vec![0f32; b * s * width];
    for row in 0..b {
        for i in 0..s {
            for j in 0..width {
                let padded = j < pad(row)
                    || j >= offset && keys.is_some_and(|m| m[row * s + j - offset] == 0);
                if j > offset + i || padded {
                    bias[(row * s + i) * width + j] = MASKED;
                }
            }
        }
    }
    Tensor::from_vec(bias, (b, 1, s, width), like.device())
        .and_then(|t| t.to_dtype(like.dtype()))
        .map(Some)
        .ctx("attention mask")
}

/// What the host backward needs: the forward's saved state, the values and the rotary
/// tables of positions `0..seq`.
struct Causal {
    out: Tensor,
    saved: Saved,
    v: Tensor,
    cos: Vec<f32>,
    sin: Vec<f32>,
    dims: Dims,
    scale: f32,
}

impl Precomputed for Causal {
    const NAME: &'static str = "causal-attention";

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
        let want = [q.track_op(), k.track_op(), v.track_op()];
        let rot = Rotary {
            cos: &self.cos,
            sin: &self.sin,
        };
        let g = with_values(&self.v, |vs| {
            with_values(grad, |gs| {
                Ok(backward(
                    vs,
                    &self.saved,
                    gs,
                    rot,
                    self.dims,
                    self.scale,
                    want,
                ))
            })
        })?;
        let tensor = |t: Option<Vec<f32>>, like: &Tensor| {
            t.map(|t| Tensor::from_vec(t, like.dims(), like.device()))
                .transpose()
        };
        Ok((tensor(g.q, q)?, tensor(g.k, k)?, tensor(g.v, v)?))
    }
}
