//! Multi-head attention on the host: one rayon task per sequence, each running its heads'
//! small products in place on the `[batch, seq, hidden]` layout (`gemm::View` strides pick a
//! head's columns), so no head is copied out or merged back and both cores stay busy.
//!
//! Through candle the same work is a head split copy per input, batched products that run the
//! `batch x heads` small matrices one after another on one thread, and a merge copy.

use rayon::prelude::*;

use crate::kernels::gemm::{View, ViewMut, gemm};
use crate::kernels::softmax::{masked_softmax_into, softmax_grad_row};

/// The sizes of one attention call: `batch` sequences, `queries` query and `keys` key/value
/// positions each, `heads` heads of `dim`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub batch: usize,
    pub queries: usize,
    pub keys: usize,
    pub heads: usize,
    pub dim: usize,
}

impl Dims {
    fn hidden(&self) -> usize {
        self.heads * self.dim
    }

    /// Head `n` of sequence `b` of a `[batch, len, hidden]` buffer, as a `len x dim` view.
    fn head<'a>(&self, data: &'a [f32], len: usize, b: usize, n: usize) -> View<'a> {
        View {
            data,
            offset: b * len * self.hidden() + n * self.dim,
            rows: len,
            cols: self.dim,
            rs: self.hidden(),
            cs: 1,
        }
    }

    /// Head `n` of one sequence's `[len, hidden]` chunk, writable.
    fn head_mut<'a>(&self, chunk: &'a mut [f32], len: usize, n: usize) -> ViewMut<'a> {
        ViewMut {
            data: chunk,
            offset: n * self.dim,
            rows: len,
            cols: self.dim,
            rs: self.hidden(),
            cs: 1,
        }
    }
}

/// `softmax(scale · q kᵀ + mask) v` per head for `q` `[batch, queries, hidden]` and `k`, `v`
/// `[batch, keys, hidden]`; `mask` holds `keys` additive key biases per sequence (or `keys`
/// values for all). Returns the context `[batch, queries, hidden]` and the probabilities
/// `[batch, heads, queries, keys]`.
pub(crate) fn forward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[f32]>,
    d: Dims,
    scale: f32,
) -> (Vec<f32>, Vec<f32>) {
    let (sq, sk) = (d.queries, d.keys);
    let zeros = vec![0f32; sk];
    let mut out = vec![0f32; d.batch * sq * d.hidden()];
    let mut probs = vec![0f32; d.batch * d.heads * sq * sk];
    out.par_chunks_mut((sq * d.hidden()).max(1))
        .zip(probs.par_chunks_mut((d.heads * sq * sk).max(1)))
        .enumerate()
        .for_each(|(b, (out, probs))| {
            let mask = match mask {
                Some(m) if m.len() == sk => m,
                Some(m) => &m[b * sk..(b + 1) * sk],
                None => &zeros,
            };
            let mut scores = vec![0f32; sq * sk];
            for (n, p) in probs.chunks_mut(sq * sk).enumerate() {
                let (qh, kh) = (d.head(q, sq, b, n), d.head(k, sk, b, n));
                gemm(
                    &mut ViewMut::dense(&mut scores, sq, sk),
                    qh,
                    kh.t(),
                    false,
                    scale,
                    1,
                );
                for (row, prow) in scores.chunks(sk).zip(p.chunks_mut(sk)) {
                    masked_softmax_into(row, mask, prow);
                }
                let vh = d.head(v, sk, b, n);
                gemm(
                    &mut d.head_mut(out, sq, n),
                    View::dense(p, sq, sk),
                    vh,
                    false,
                    1.0,
                    1,
                );
            }
        });
    (out, probs)
}

/// The gradients of [`forward`]'s inputs from its output's `g`, each only where `want`
/// (query, key, value) asks for it.
pub(crate) struct Grads {
    pub q: Option<Vec<f32>>,
    pub k: Option<Vec<f32>>,
    pub v: Option<Vec<f32>>,
}

/// The input gradients of [`forward`], from the saved probabilities.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    probs: &[f32],
    g: &[f32],
    d: Dims,
    scale: f32,
    want: [bool; 3],
) -> Grads {
    let (sq, sk) = (d.queries, d.keys);
    let lens = [sq, sk, sk];
    let mut bufs: [Option<Vec<f32>>; 3] =
        [0, 1, 2].map(|i| want[i].then(|| vec![0f32; d.batch * lens[i] * d.hidden()]));
    {
        // One task per sequence, each with its own chunk of every wanted gradient.
        let mut per_seq: Vec<[Option<&mut [f32]>; 3]> =
            (0..d.batch).map(|_| [None, None, None]).collect();
        for (slot, buf) in bufs.iter_mut().enumerate() {
            if let Some(buf) = buf {
                let chunk = (lens[slot] * d.hidden()).max(1);
                for (task, c) in per_seq.iter_mut().zip(buf.chunks_mut(chunk)) {
                    task[slot] = Some(c);
                }
            }
        }
        per_seq
            .into_par_iter()
            .enumerate()
            .for_each(|(b, [mut dq, mut dk, mut dv])| {
                let mut dscores = vec![0f32; sq * sk];
                for n in 0..d.heads {
                    let p = &probs[(b * d.heads + n) * sq * sk..][..sq * sk];
                    let gh = d.head(g, sq, b, n);
                    if let Some(dv) = dv.as_deref_mut() {
                        let pt = View::dense(p, sq, sk).t();
                        gemm(&mut d.head_mut(dv, sk, n), pt, gh, false, 1.0, 1);
                    }
                    if dq.is_none() && dk.is_none() {
                        continue;
                    }
                    // d(probs) = g vᵀ, then through the softmax: p ⊙ (dp - Σ dp ⊙ p) per row.
                    let vt = d.head(v, sk, b, n).t();
                    gemm(
                        &mut ViewMut::dense(&mut dscores, sq, sk),
                        gh,
                        vt,
                        false,
                        1.0,
                        1,
                    );
                    for (dr, pr) in dscores.chunks_mut(sk).zip(p.chunks(sk)) {
                        softmax_grad_row(dr, pr);
                    }
                    let ds = View::dense(&dscores, sq, sk);
                    if let Some(dq) = dq.as_deref_mut() {
                        let kh = d.head(k, sk, b, n);
                        gemm(&mut d.head_mut(dq, sq, n), ds, kh, false, scale, 1);
                    }
                    if let Some(dk) = dk.as_deref_mut() {
                        let qh = d.head(q, sq, b, n);
                        gemm(&mut d.head_mut(dk, sk, n), ds.t(), qh, false, scale, 1);
                    }
                }
            });
    }
    let [q, k, v] = bufs;
    Grads { q, k, v }
}
