//! The products of untracked linear layers on the host: the frozen layers' outputs and their
//! input gradients, rows split across the rayon pool, one `gemm` per block of rows.
//!
//! candle's matmul zero-fills its output before the product and adds a bias in a second pass
//! (with its own thread hand-off); here the output starts as the bias rows (or is written
//! whole by the product), so each is one pass.

use rayon::prelude::*;

use crate::layers::gemm::{View, ViewMut, gemm};

/// `dst[rows, cols] = lhs_rows · rhs (+ bias per row)`, where `lhs(r0, n)` is the view of rows
/// `r0..r0 + n` of the left operand.
fn by_rows<'a>(
    rows: usize,
    cols: usize,
    bias: Option<&[f32]>,
    lhs: impl Fn(usize, usize) -> View<'a> + Sync,
    rhs: View<'_>,
) -> Vec<f32> {
    let mut dst = vec![0f32; rows * cols];
    if rows == 0 || cols == 0 {
        return dst;
    }
    let blocks = rayon::current_num_threads();
    let per = rows.div_ceil(blocks.max(1)).max(1);
    dst.par_chunks_mut(per * cols)
        .enumerate()
        .for_each(|(i, chunk)| {
            let n = chunk.len() / cols;
            if let Some(bias) = bias {
                for row in chunk.chunks_mut(cols) {
                    row.copy_from_slice(bias);
                }
            }
            gemm(
                &mut ViewMut::dense(chunk, n, cols),
                lhs(i * per, n),
                rhs,
                bias.is_some(),
                1.0,
                1,
            );
        });
    dst
}

/// `x · wᵀ (+ b)` for `x` `[rows, inp]`, `w` `[out, inp]`, `b` `[out]`: `[rows, out]`.
pub(crate) fn forward(x: &[f32], w: &[f32], b: Option<&[f32]>, inp: usize, out: usize) -> Vec<f32> {
    let rows = x.len() / inp.max(1);
    let lhs = |r0: usize, n: usize| View {
        data: x,
        offset: r0 * inp,
        rows: n,
        cols: inp,
        rs: inp,
        cs: 1,
    };
    by_rows(rows, out, b, lhs, View::dense(w, out, inp).t())
}

/// `dy · w` for `dy` `[rows, out]`, `w` `[out, inp]`: `[rows, inp]`, the input gradient of
/// [`forward`].
pub(crate) fn input_grad(dy: &[f32], w: &[f32], out: usize, inp: usize) -> Vec<f32> {
    let rows = dy.len() / out.max(1);
    let lhs = |r0: usize, n: usize| View {
        data: dy,
        offset: r0 * out,
        rows: n,
        cols: out,
        rs: out,
        cs: 1,
    };
    by_rows(rows, inp, None, lhs, View::dense(w, out, inp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_in_blocks_give_the_whole_product_with_the_bias() {
        // 13 rows: blocks of unequal size on any pool.
        let (rows, inp, out) = (13, 5, 3);
        let x: Vec<f32> = (0..rows * inp).map(|i| (i as f32 * 0.7).cos()).collect();
        let w: Vec<f32> = (0..out * inp).map(|i| (i as f32 * 0.3).sin()).collect();
        let b = [0.5f32, -1.0, 2.0];
        let y = forward(&x, &w, Some(&b), inp, out);
        let plain = forward(&x, &w, None, inp, out);
        for r in 0..rows {
            for o in 0..out {
                let want: f32 = (0..inp).map(|i| x[r * inp + i] * w[o * inp + i]).sum();
                assert!((plain[r * out + o] - want).abs() < 1e-5);
                assert!((y[r * out + o] - want - b[o]).abs() < 1e-5);
            }
        }
        let dx = input_grad(&y, &w, out, inp);
        for r in 0..rows {
            for i in 0..inp {
                let want: f32 = (0..out).map(|o| y[r * out + o] * w[o * inp + i]).sum();
                assert!((dx[r * inp + i] - want).abs() < 1e-5);
            }
        }
    }
}
