//! The products of untracked linear layers on the host: the frozen layers' outputs and their
//! input gradients, rows split across the rayon pool, one `gemm` per block of rows (outputs of
//! a few rows go to [`super::skinny`] instead).
//!
//! candle's matmul zero-fills its output before the product and adds a bias in a second pass
//! (with its own thread hand-off); here the output starts as the bias rows (or is written
//! whole by the product), so each is one pass.

use crate::kernels::gemm::{View, ViewMut, gemm};
use crate::kernels::init::Init;
use crate::kernels::par_init::par_init;
use crate::kernels::skinny;

/// `dst[rows, cols] = init + lhs_rows · rhs`, where `lhs(r0, n)` is the view of rows
/// `r0..r0 + n` of the left operand.
fn by_rows<'a>(
    rows: usize,
    cols: usize,
    init: Init<'_>,
    lhs: impl Fn(usize, usize) -> View<'a> + Sync,
    rhs: View<'_>,
) -> Vec<f32> {
    if rows == 0 || cols == 0 {
        return vec![0f32; rows * cols];
    }
    let blocks = rayon::current_num_threads();
    let per = rows.div_ceil(blocks.max(1)).max(1);
    par_init(rows * cols, per * cols, |i, chunk| {
        let n = chunk.len() / cols;
        init.fill(chunk, i * per * cols, cols);
        let keep = init.keeps();
        gemm(
            &mut ViewMut::dense(chunk, n, cols),
            lhs(i * per, n),
            rhs,
            keep,
            1.0,
            1,
        );
    })
}

/// `init + x · wᵀ` for `x` `[rows, inp]`, `w` `[out, inp]`: `[rows, out]`.
pub(crate) fn forward(x: &[f32], w: &[f32], init: Init<'_>, inp: usize, out: usize) -> Vec<f32> {
    let rows = x.len() / inp.max(1);
    if rows <= skinny::MAX_ROWS {
        return skinny::forward(x, w, init, inp, out);
    }
    let lhs = |r0: usize, n: usize| View::row_block(x, inp, r0, n);
    by_rows(rows, out, init, lhs, View::dense(w, out, inp).t())
}

/// `init + dy · w` for `dy` `[rows, out]`, `w` `[out, inp]`: `[rows, inp]`, the input gradient
/// of [`forward`] (plus `init`).
pub(crate) fn input_grad(
    dy: &[f32],
    w: &[f32],
    init: Init<'_>,
    out: usize,
    inp: usize,
) -> Vec<f32> {
    let rows = dy.len() / out.max(1);
    let lhs = |r0: usize, n: usize| View::row_block(dy, out, r0, n);
    by_rows(rows, inp, init, lhs, View::dense(w, out, inp))
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
        let y = forward(&x, &w, Init::Bias(&b), inp, out);
        let plain = forward(&x, &w, Init::Zero, inp, out);
        let onto = forward(&x, &w, Init::Rows(&plain, Some(&b)), inp, out);
        for r in 0..rows {
            for o in 0..out {
                let want: f32 = (0..inp).map(|i| x[r * inp + i] * w[o * inp + i]).sum();
                assert!((plain[r * out + o] - want).abs() < 1e-5);
                assert!((y[r * out + o] - want - b[o]).abs() < 1e-5);
                assert!((onto[r * out + o] - 2.0 * want - b[o]).abs() < 1e-5);
            }
        }
        let dx = input_grad(&y, &w, Init::Zero, out, inp);
        let dx_onto = input_grad(&y, &w, Init::Rows(&dx, None), out, inp);
        for r in 0..rows {
            for i in 0..inp {
                let want: f32 = (0..out).map(|o| y[r * out + o] * w[o * inp + i]).sum();
                assert!((dx[r * inp + i] - want).abs() < 1e-5);
                assert!((dx_onto[r * inp + i] - 2.0 * want).abs() < 1e-5);
            }
        }
    }
}
