//! The decoder's attention on the host: causal, grouped-query (several query heads share a
//! key/value head) and with the rotary position embedding applied inside, forward and
//! backward, one rayon task per sequence reading heads in place on the `[batch, seq, heads *
//! dim]` layout of the projections.
//!
//! Composed from candle ops the same block is a head split copy per projection, the rotation
//! of queries and keys (each with its own backward node), the scaling, batched products that
//! run one small matrix after another on one thread, the additive causal mask, the softmax and
//! a merge copy: about a dozen graph nodes per layer, each with its full-size temporaries.

use rayon::prelude::*;

use crate::kernels::gemm::{View, ViewMut, gemm};
use crate::kernels::softmax::softmax_grad_row;

/// The sizes of one call: `batch` sequences of `seq` tokens, `heads` query heads sharing
/// `kv_heads` key/value heads (`heads` a multiple of it), each of `dim` values.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub batch: usize,
    pub seq: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub dim: usize,
}

impl Dims {
    fn q_width(&self) -> usize {
        self.heads * self.dim
    }

    fn kv_width(&self) -> usize {
        self.kv_heads * self.dim
    }

    /// The key/value head query head `n` reads (Hugging Face's `repeat_kv` order).
    fn kv_of(&self, n: usize) -> usize {
        n / (self.heads / self.kv_heads)
    }
}

/// Head `n` of one sequence's `[seq, width]` chunk, as a `seq x dim` view.
fn head(chunk: &[f32], seq: usize, width: usize, dim: usize, n: usize) -> View<'_> {
    View {
        data: chunk,
        offset: n * dim,
        rows: seq,
        cols: dim,
        rs: width,
        cs: 1,
    }
}

/// [`head`], writable.
fn head_mut(chunk: &mut [f32], seq: usize, width: usize, dim: usize, n: usize) -> ViewMut<'_> {
    ViewMut {
        data: chunk,
        offset: n * dim,
        rows: seq,
        cols: dim,
        rs: width,
        cs: 1,
    }
}

/// Cosine and sine tables `[seq, dim / 2]`, row `p` for position `p`.
#[derive(Clone, Copy)]
pub(crate) struct Rotary<'a> {
    pub cos: &'a [f32],
    pub sin: &'a [f32],
}

impl Rotary<'_> {
    /// Rotates every head of every token of one sequence's `[seq, width]` chunk in place, in
    /// the "rotate half" layout (value `i` paired with `i + dim / 2`); `inverse` turns by the
    /// opposite angle, which is the rotation's input gradient.
    fn rotate(&self, chunk: &mut [f32], width: usize, dim: usize, inverse: bool) {
        let half = dim / 2;
        for (p, token) in chunk.chunks_mut(width).enumerate() {
            let cos = &self.cos[p * half..(p + 1) * half];
            let sin = &self.sin[p * half..(p + 1) * half];
            for h in token.chunks_mut(dim) {
                let (a, b) = h.split_at_mut(half);
                for i in 0..half {
                    let (x1, x2) = (a[i], b[i]);
                    let s = if inverse { -sin[i] } else { sin[i] };
                    a[i] = x1 * cos[i] - x2 * s;
                    b[i] = x1 * s + x2 * cos[i];
                }
            }
        }
    }
}

/// Additive bias on a hidden key: large enough to zero it after the softmax, finite so that a
/// row with every key hidden stays a number (as the op-by-op path's mask).
const MASKED: f32 = -1e9;

/// What [`forward`] keeps for [`backward`]: queries and keys after the rotation, and the
/// probabilities `[batch, heads, seq, seq]` (zero above the diagonal).
pub(crate) struct Saved {
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub probs: Vec<f32>,
}

/// `softmax(scale · rot(q) rot(k)ᵀ + causal mask + key mask) v` for `q` `[batch, seq, heads *
/// dim]` and `k`, `v` `[batch, seq, kv_heads * dim]`, the tokens at positions `0..seq`.
/// `keys` (1 real, 0 padding, `[batch, seq]`) hides padded keys. Returns the context
/// `[batch, seq, heads * dim]` and what the backward needs.
pub(crate) fn forward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    keys: Option<&[u32]>,
    rotary: Rotary<'_>,
    d: Dims,
    scale: f32,
) -> (Vec<f32>, Saved) {
    let s = d.seq;
    let (qw, kw) = (d.q_width(), d.kv_width());
    let mut qr = q.to_vec();
    let mut kr = k.to_vec();
    let mut out = vec![0f32; d.batch * s * qw];
    let mut probs = vec![0f32; d.batch * d.heads * s * s];
    out.par_chunks_mut((s * qw).max(1))
        .zip(probs.par_chunks_mut((d.heads * s * s).max(1)))
        .zip(qr.par_chunks_mut((s * qw).max(1)))
        .zip(kr.par_chunks_mut((s * kw).max(1)))
        .enumerate()
        .for_each(|(b, (((out, probs), qr), kr))| {
            rotary.rotate(qr, qw, d.dim, false);
            rotary.rotate(kr, kw, d.dim, false);
            let vb = &v[b * s * kw..(b + 1) * s * kw];
            let bias: Vec<f32> = (0..s)
                .map(|j| match keys {
                    Some(m) if m[b * s + j] == 0 => MASKED,
                    _ => 0.0,
                })
                .collect();
            for (n, p) in probs.chunks_mut(s * s).enumerate() {
                let kv = d.kv_of(n);
                let (qh, kh) = (head(qr, s, qw, d.dim, n), head(kr, s, kw, d.dim, kv));
                gemm(&mut ViewMut::dense(p, s, s), qh, kh.t(), false, scale, 1);
                for (i, row) in p.chunks_mut(s).enumerate() {
                    causal_softmax_row(row, i, &bias);
                }
                let vh = head(vb, s, kw, d.dim, kv);
                let mut dst = head_mut(out, s, qw, d.dim, n);
                gemm(&mut dst, View::dense(p, s, s), vh, false, 1.0, 1);
            }
        });
    let saved = Saved {
        q: qr,
        k: kr,
        probs,
    };
    (out, saved)
}

/// The softmax of query `i`'s scores over keys `0..=i` plus their bias; the keys after it get
/// probability zero.
fn causal_softmax_row(row: &mut [f32], i: usize, bias: &[f32]) {
    let (seen, after) = row.split_at_mut(i + 1);
    let mut max = f32::NEG_INFINITY;
    for (x, b) in seen.iter_mut().zip(bias) {
        *x += b;
        max = max.max(*x);
    }
    let mut sum = 0f32;
    for x in seen.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    let inv = 1.0 / sum;
    for x in seen.iter_mut() {
        *x *= inv;
    }
    after.fill(0.0);
}

/// The gradients of [`forward`]'s inputs, each only where `want` (query, key, value) asks.
pub(crate) struct Grads {
    pub q: Option<Vec<f32>>,
    pub k: Option<Vec<f32>>,
    pub v: Option<Vec<f32>>,
}

/// The input gradients of [`forward`] from its output's `g`, the values `v` and what the
/// forward saved; the query and key gradients are turned back through the rotation.
pub(crate) fn backward(
    v: &[f32],
    saved: &Saved,
    g: &[f32],
    rotary: Rotary<'_>,
    d: Dims,
    scale: f32,
    want: [bool; 3],
) -> Grads {
    let s = d.seq;
    let widths = [d.q_width(), d.kv_width(), d.kv_width()];
    let mut bufs: [Option<Vec<f32>>; 3] =
        [0, 1, 2].map(|i| want[i].then(|| vec![0f32; d.batch * s * widths[i]]));
    {
        // One task per sequence, each with its own chunk of every wanted gradient.
        let mut per_seq: Vec<[Option<&mut [f32]>; 3]> =
            (0..d.batch).map(|_| [None, None, None]).collect();
        for (slot, buf) in bufs.iter_mut().enumerate() {
            if let Some(buf) = buf {
                for (task, c) in per_seq
                    .iter_mut()
                    .zip(buf.chunks_mut((s * widths[slot]).max(1)))
                {
                    task[slot] = Some(c);
                }
            }
        }
        let (qw, kw) = (widths[0], widths[1]);
        per_seq
            .into_par_iter()
            .enumerate()
            .for_each(|(b, [mut dq, mut dk, mut dv])| {
                let at = |w: usize| b * s * w..(b + 1) * s * w;
                let (qb, kb) = (&saved.q[at(qw)], &saved.k[at(kw)]);
                let (vb, gb) = (&v[at(kw)], &g[at(qw)]);
                let mut ds = vec![0f32; s * s];
                // Query heads sharing a key/value head add into its gradients: the first of
                // them writes, the others keep what is there.
                let first = |n: usize| n.is_multiple_of(d.heads / d.kv_heads);
                for n in 0..d.heads {
                    let kv = d.kv_of(n);
                    let p = &saved.probs[(b * d.heads + n) * s * s..][..s * s];
                    let gh = head(gb, s, qw, d.dim, n);
                    if let Some(dv) = dv.as_deref_mut() {
                        let pt = View::dense(p, s, s).t();
                        let mut dst = head_mut(dv, s, kw, d.dim, kv);
                        gemm(&mut dst, pt, gh, !first(n), 1.0, 1);
                    }
                    if dq.is_none() && dk.is_none() {
                        continue;
                    }
                    // d(probs) = g vᵀ, then through the softmax row by row.
                    let vt = head(vb, s, kw, d.dim, kv).t();
                    gemm(&mut ViewMut::dense(&mut ds, s, s), gh, vt, false, 1.0, 1);
                    for (dr, pr) in ds.chunks_mut(s).zip(p.chunks(s)) {
                        softmax_grad_row(dr, pr);
                    }
                    let dsv = View::dense(&ds, s, s);
                    if let Some(dq) = dq.as_deref_mut() {
                        let kh = head(kb, s, kw, d.dim, kv);
                        gemm(&mut head_mut(dq, s, qw, d.dim, n), dsv, kh, false, scale, 1);
                    }
                    if let Some(dk) = dk.as_deref_mut() {
                        let qh = head(qb, s, qw, d.dim, n);
                        let mut dst = head_mut(dk, s, kw, d.dim, kv);
                        gemm(&mut dst, dsv.t(), qh, !first(n), scale, 1);
                    }
                }
                if let Some(dq) = dq {
                    rotary.rotate(dq, qw, d.dim, true);
                }
                if let Some(dk) = dk {
                    rotary.rotate(dk, kw, d.dim, true);
                }
            });
    }
    let [q, k, v] = bufs;
    Grads { q, k, v }
}
