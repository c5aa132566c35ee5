//! Multi-head attention on the host: one rayon task per sequence, each running its heads'
//! small products in place on the `[batch, seq, hidden]` layout (`gemm::View` strides pick a
//! head's columns), so no head is copied out or merged back and both cores stay busy.
//!
//! Through candle the same work is a head split copy per input, batched products that run the
//! `batch x heads` small matrices one after another on one thread, and a merge copy.

use rayon::prelude::*;

use crate::layers::gemm::{View, ViewMut, gemm};
use crate::layers::host::masked_softmax_into;

/// The sizes of one attention call: `batch` sequences of `seq` tokens, `heads` heads of `dim`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub batch: usize,
    pub seq: usize,
    pub heads: usize,
    pub dim: usize,
}

impl Dims {
    fn hidden(&self) -> usize {
        self.heads * self.dim
    }

    /// Elements of one `[seq, hidden]` sequence.
    fn per_seq(&self) -> usize {
        self.seq * self.hidden()
    }

    /// Head `n` of sequence `b` of a `[batch, seq, hidden]` buffer, as a `seq x dim` view.
    fn head<'a>(&self, data: &'a [f32], b: usize, n: usize) -> View<'a> {
        View {
            data,
            offset: b * self.per_seq() + n * self.dim,
            rows: self.seq,
            cols: self.dim,
            rs: self.hidden(),
            cs: 1,
        }
    }

    /// Head `n` of one sequence's `[seq, hidden]` output chunk, writable.
    fn head_mut<'a>(&self, chunk: &'a mut [f32], n: usize) -> ViewMut<'a> {
        ViewMut {
            data: chunk,
            offset: n * self.dim,
            rows: self.seq,
            cols: self.dim,
            rs: self.hidden(),
            cs: 1,
        }
    }
}

/// `softmax(scale · q kᵀ + mask) v` per head for `q`, `k`, `v` `[batch, seq, hidden]`;
/// `mask` holds `seq` additive key biases per sequence (`seq` values: the same for all).
/// Returns the context `[batch, seq, hidden]` and the probabilities `[batch, heads, seq, seq]`.
pub(crate) fn forward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[f32]>,
    d: Dims,
    scale: f32,
) -> (Vec<f32>, Vec<f32>) {
    let s = d.seq;
    let zeros = vec![0f32; s];
    let mut out = vec![0f32; d.batch * d.per_seq()];
    let mut probs = vec![0f32; d.batch * d.heads * s * s];
    out.par_chunks_mut(d.per_seq().max(1))
        .zip(probs.par_chunks_mut((d.heads * s * s).max(1)))
        .enumerate()
        .for_each(|(b, (out, probs))| {
            let mask = match mask {
                Some(m) if m.len() == s => m,
                Some(m) => &m[b * s..(b + 1) * s],
                None => &zeros,
            };
            let mut scores = vec![0f32; s * s];
            for (n, p) in probs.chunks_mut(s * s).enumerate() {
                let kh = d.head(k, b, n);
                gemm(
                    &mut ViewMut::dense(&mut scores, s, s),
                    d.head(q, b, n),
                    kh.t(),
                    false,
                    scale,
                    1,
                );
                for (row, prow) in scores.chunks(s).zip(p.chunks_mut(s)) {
                    masked_softmax_into(row, mask, prow);
                }
                gemm(
                    &mut d.head_mut(out, n),
                    View::dense(p, s, s),
                    d.head(v, b, n),
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
    let s = d.seq;
    let total = d.batch * d.per_seq();
    let mut bufs: [Option<Vec<f32>>; 3] = want.map(|w| w.then(|| vec![0f32; total]));
    {
        // One task per sequence, each with its own chunk of every wanted gradient.
        let mut per_seq: Vec<[Option<&mut [f32]>; 3]> =
            (0..d.batch).map(|_| [None, None, None]).collect();
        for (slot, buf) in bufs.iter_mut().enumerate() {
            if let Some(buf) = buf {
                for (task, chunk) in per_seq.iter_mut().zip(buf.chunks_mut(d.per_seq().max(1))) {
                    task[slot] = Some(chunk);
                }
            }
        }
        per_seq
            .into_par_iter()
            .enumerate()
            .for_each(|(b, [dq, dk, dv])| {
                let mut dscores = vec![0f32; s * s];
                let (mut dq, mut dk, mut dv) = (dq, dk, dv);
                for n in 0..d.heads {
                    let p = &probs[(b * d.heads + n) * s * s..][..s * s];
                    let gh = d.head(g, b, n);
                    if let Some(dv) = dv.as_deref_mut() {
                        gemm(
                            &mut d.head_mut(dv, n),
                            View::dense(p, s, s).t(),
                            gh,
                            false,
                            1.0,
                            1,
                        );
                    }
                    if dq.is_none() && dk.is_none() {
                        continue;
                    }
                    // d(probs) = g vᵀ, then through the softmax: p ⊙ (dp - Σ dp ⊙ p) per row.
                    gemm(
                        &mut ViewMut::dense(&mut dscores, s, s),
                        gh,
                        d.head(v, b, n).t(),
                        false,
                        1.0,
                        1,
                    );
                    for (dr, pr) in dscores.chunks_mut(s).zip(p.chunks(s)) {
                        let dot: f32 = dr.iter().zip(pr).map(|(a, b)| a * b).sum();
                        for (x, &y) in dr.iter_mut().zip(pr) {
                            *x = y * (*x - dot);
                        }
                    }
                    let ds = View::dense(&dscores, s, s);
                    if let Some(dq) = dq.as_deref_mut() {
                        gemm(&mut d.head_mut(dq, n), ds, d.head(k, b, n), false, scale, 1);
                    }
                    if let Some(dk) = dk.as_deref_mut() {
                        gemm(
                            &mut d.head_mut(dk, n),
                            ds.t(),
                            d.head(q, b, n),
                            false,
                            scale,
                            1,
                        );
                    }
                }
            });
    }
    let [q, k, v] = bufs;
    Grads { q, k, v }
}
