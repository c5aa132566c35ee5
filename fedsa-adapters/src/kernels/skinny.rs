//! `init + x · wᵀ` for a few rows of `x`: a decoding step, one row per sequence of a generation
//! batch, against weights of thousands of rows.
//!
//! `gemm` packs the weight into panels on every call, and [`super::linear`] splits the rows of
//! `x` across the pool, so each thread packed the whole weight again: with 8 rows, the packing
//! took about half of a SmolLM2-shaped decoding step. Here each thread takes a block of the
//! weight's rows and reads it once, straight from memory, computing every row's dot product
//! with each weight row while that row is in cache.
//!
//! Each dot product is summed the same way whatever the number of rows (eight lanes over the
//! input, then the lanes pairwise), so a row's result does not depend on its batch.

// `inline(always)` is the point here: the kernels must be inlined into the AVX2 + FMA entry
// point `simd_kernel!` makes, to be compiled (and vectorised) for those features.
#![allow(clippy::inline_always)]

use crate::kernels::elementwise::simd_kernel;
use crate::kernels::fast_math::MulAdd;
use crate::kernels::init::Init;
use crate::kernels::par_init::par_init;

/// The most rows of `x` this kernel takes; more go to `gemm`, whose packing then pays off.
pub(crate) const MAX_ROWS: usize = 8;
const LANES: usize = 8;
/// Weight rows per task: enough work to amortise a hand-off, small enough to balance.
const BLOCK: usize = 64;

/// `init + x · wᵀ` for `x` `[rows, inp]` (`rows <= MAX_ROWS`), `w` `[out, inp]`: `[rows, out]`.
pub(crate) fn forward(x: &[f32], w: &[f32], init: Init<'_>, inp: usize, out: usize) -> Vec<f32> {
    let rows = x.len() / inp.max(1);
    debug_assert!(rows <= MAX_ROWS);
    // Transposed, `[out, rows]`: each task writes the rows of its block of weight rows.
    let yt = par_init(out * rows, BLOCK * rows, |i, chunk| {
        let o0 = i * BLOCK;
        let n = chunk.len() / rows.max(1);
        dots(x, &w[o0 * inp..(o0 + n) * inp], inp, chunk);
    });
    let mut y = vec![0f32; rows * out];
    init.fill(&mut y, 0, out);
    for (o, products) in yt.chunks(rows.max(1)).enumerate() {
        for (r, p) in products.iter().enumerate() {
            y[r * out + o] += p;
        }
    }
    y
}

simd_kernel! {
    /// `dst[j * rows + r] = x_r · w_j` for every row `w_j` of `w` (`[n, inp]`) and row `x_r` of
    /// `x` (`[rows, inp]`).
    fn dots = dots_kernel(x: &[f32], w: &[f32], inp: usize, dst: &mut [f32])
}

#[inline(always)]
fn dots_kernel<M: MulAdd>(x: &[f32], w: &[f32], inp: usize, dst: &mut [f32]) {
    let rows = x.len() / inp.max(1);
    // One instance per row count, so the accumulators live in registers.
    macro_rules! by_rows {
        ($($r:literal)*) => {
            match rows {
                $($r => for (wrow, d) in w.chunks_exact(inp).zip(dst.chunks_exact_mut($r)) {
                    row_dots::<M, $r>(x, inp, wrow, d);
                },)*
                _ => unreachable!("at most MAX_ROWS rows"),
            }
        };
    }
    if rows == 0 || inp == 0 {
        return;
    }
    by_rows!(1 2 3 4 5 6 7 8);
}

#[inline(always)]
fn row_dots<M: MulAdd, const R: usize>(x: &[f32], inp: usize, wrow: &[f32], dst: &mut [f32]) {
    let xs: [&[f32]; R] = std::array::from_fn(|r| &x[r * inp..(r + 1) * inp]);
    let mut acc = [[0f32; LANES]; R];
    let full = inp / LANES * LANES;
    for k in (0..full).step_by(LANES) {
        let wv: &[f32; LANES] = wrow[k..k + LANES].try_into().expect("a full lane group");
        for r in 0..R {
            let xv: &[f32; LANES] = xs[r][k..k + LANES].try_into().expect("a full lane group");
            for l in 0..LANES {
                acc[r][l] = M::mad(xv[l], wv[l], acc[r][l]);
            }
        }
    }
    for r in 0..R {
        let a = &acc[r];
        let mut s = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
        for k in full..inp {
            s = M::mad(xs[r][k], wrow[k], s);
        }
        dst[r] = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_rows_give_the_product_and_each_row_its_own_bits() {
        // 203 weight rows (blocks of unequal size), 21 inputs (a lane tail of 5).
        let (inp, out) = (21, 203);
        let x: Vec<f32> = (0..MAX_ROWS * inp)
            .map(|i| (i as f32 * 0.7).cos())
            .collect();
        let w: Vec<f32> = (0..out * inp).map(|i| (i as f32 * 0.3).sin()).collect();
        let b: Vec<f32> = (0..out).map(|o| o as f32 * 0.01).collect();
        let all = forward(&x, &w, Init::Bias(&b), inp, out);
        for r in 0..MAX_ROWS {
            for o in 0..out {
                let want: f32 = (0..inp).map(|i| x[r * inp + i] * w[o * inp + i]).sum();
                assert!((all[r * out + o] - want - b[o]).abs() < 1e-4, "{r} {o}");
            }
        }
        // A row alone, or among fewer rows, gives exactly the bits it gives among eight.
        for rows in 1..MAX_ROWS {
            let part = forward(&x[..rows * inp], &w, Init::Bias(&b), inp, out);
            assert_eq!(part[..], all[..rows * out], "{rows} rows");
        }
        let onto = forward(
            &x[..2 * inp],
            &w,
            Init::Rows(&all[..2 * out], None),
            inp,
            out,
        );
        for (i, (v, a)) in onto.iter().zip(&all).enumerate() {
            assert!((v - (2.0 * a - b[i % out])).abs() < 1e-4, "{i}");
        }
    }
}
