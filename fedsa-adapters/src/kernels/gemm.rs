//! Host matrix products on strided views of plain slices, for kernels that run many small
//! products themselves (one task per sequence in attention) or write into a buffer they own.
//!
//! candle's batched matmul runs the products of a batch one after another, each on the whole
//! pool, which for attention's 64 x 32 heads means one thread at a time; and it needs every
//! operand contiguous, so heads are first copied out of the `[batch, seq, hidden]` layout. The
//! `gemm` crate (the one candle's CPU backend calls) takes any strides, so here the heads are
//! read in place and the caller decides what runs in parallel.

use gemm::Parallelism;

/// A matrix inside a slice: element `(i, j)` is `data[offset + i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A row-major `rows x cols` matrix at the start of `data`.
    pub fn dense(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::row_block(data, cols, 0, rows)
    }

    /// Rows `first..first + rows` of a row-major matrix `cols` wide held in `data`.
    pub fn row_block(data: &'a [f32], cols: usize, first: usize, rows: usize) -> Self {
        View {
            data,
            offset: first * cols,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        View {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    fn check(&self, what: &str) {
        assert!(
            fits(
                self.data.len(),
                self.offset,
                self.rows,
                self.cols,
                self.rs,
                self.cs
            ),
            "{what}: a {}x{} view at {} (strides {}, {}) overruns {} elements",
            self.rows,
            self.cols,
            self.offset,
            self.rs,
            self.cs,
            self.data.len()
        );
    }
}

/// A writable matrix inside a slice, laid out as [`View`].
pub(crate) struct ViewMut<'a> {
    pub data: &'a mut [f32],
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> ViewMut<'a> {
    /// The same matrix, read-only.
    fn as_view(&self) -> View<'_> {
        View {
            data: self.data,
            offset: self.offset,
            rows: self.rows,
            cols: self.cols,
            rs: self.rs,
            cs: self.cs,
        }
    }

    /// A row-major `rows x cols` matrix at the start of `data`.
    pub fn dense(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        ViewMut {
            data,
            offset: 0,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
}

/// Whether every element of the view lies inside a slice of `len` elements.
fn fits(len: usize, offset: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    if rows == 0 || cols == 0 {
        return true;
    }
    let last = (rows - 1)
        .checked_mul(rs)
        .and_then(|r| (cols - 1).checked_mul(cs).and_then(|c| r.checked_add(c)))
        .and_then(|e| e.checked_add(offset));
    last.is_some_and(|l| l < len)
}

/// `dst = keep · dst + scale · a · b` (with `keep` either 0, dst not read, or 1), on this
/// thread when `threads` is 1, else on the rayon pool.
///
/// # Panics
/// When the shapes disagree or a view overruns its slice: callers build views from tensor
/// shapes they have checked, so either is a bug here, not bad input.
pub(crate) fn gemm(
    dst: &mut ViewMut<'_>,
    a: View<'_>,
    b: View<'_>,
    keep: bool,
    scale: f32,
    threads: usize,
) {
    assert!(
        a.rows == dst.rows && b.cols == dst.cols && a.cols == b.rows,
        "gemm: {}x{} · {}x{} into {}x{}",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        dst.rows,
        dst.cols
    );
    a.check("gemm lhs");
    b.check("gemm rhs");
    dst.as_view().check("gemm destination");
    if dst.rows == 0 || dst.cols == 0 {
        return;
    }
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    let signed = |s: usize| isize::try_from(s).expect("stride fits isize");
    // SAFETY: every element each view addresses lies inside its slice (checked above); `dst`
    // is borrowed mutably, so it aliases neither operand; with `keep` false `gemm` does not
    // read `dst`.
    unsafe {
        gemm::gemm(
            dst.rows,
            dst.cols,
            a.cols,
            dst.data.as_mut_ptr().add(dst.offset),
            signed(dst.cs),
            signed(dst.rs),
            keep,
            a.data.as_ptr().add(a.offset),
            signed(a.cs),
            signed(a.rs),
            b.data.as_ptr().add(b.offset),
            signed(b.cs),
            signed(b.rs),
            if keep { 1.0 } else { 0.0 },
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: View<'_>, b: View<'_>) -> Vec<f32> {
        let at = |v: &View<'_>, i: usize, j: usize| v.data[v.offset + i * v.rs + j * v.cs];
        let mut out = vec![0f32; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                out[i * b.cols + j] = (0..a.cols).map(|k| at(&a, i, k) * at(&b, k, j)).sum();
            }
        }
        out
    }

    #[test]
    fn strided_products_match_the_definition() {
        // A [2, 5, 6] buffer read as head 1 (columns 3..6) of each row: 5 x 3 views.
        let data: Vec<f32> = (0..60).map(|i| (i as f32 * 0.37).sin()).collect();
        let head = View {
            data: &data,
            offset: 30 + 3,
            rows: 5,
            cols: 3,
            rs: 6,
            cs: 1,
        };
        let want = naive(head, head.t());
        for threads in [1, 2] {
            let mut got = vec![7f32; 25];
            gemm(
                &mut ViewMut::dense(&mut got, 5, 5),
                head,
                head.t(),
                false,
                1.0,
                threads,
            );
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "{g} vs {w}");
            }
            // keep = true adds onto what is there, scaled products included.
            gemm(
                &mut ViewMut::dense(&mut got, 5, 5),
                head,
                head.t(),
                true,
                0.5,
                threads,
            );
            for (g, w) in got.iter().zip(&want) {
                assert!((g - 1.5 * w).abs() < 1e-5, "{g} vs {}", 1.5 * w);
            }
        }
        // Writing into a strided destination leaves the other columns alone.
        let mut dst = vec![9f32; 5 * 6];
        let small = View::dense(&data[..9], 3, 3);
        gemm(
            &mut ViewMut {
                data: &mut dst,
                offset: 3,
                rows: 5,
                cols: 3,
                rs: 6,
                cs: 1,
            },
            head,
            small,
            false,
            1.0,
            1,
        );
        let want = naive(head, small);
        for i in 0..5 {
            assert_eq!(&dst[i * 6..i * 6 + 3], &[9.0; 3]);
            for j in 0..3 {
                assert!((dst[i * 6 + 3 + j] - want[i * 3 + j]).abs() < 1e-5);
            }
        }
    }

    #[test]
    #[should_panic(expected = "overruns")]
    fn a_view_past_its_slice_is_refused() {
        let data = vec![0f32; 10];
        let v = View {
            data: &data,
            offset: 4,
            rows: 2,
            cols: 4,
            rs: 4,
            cs: 1,
        };
        let mut out = vec![0f32; 4];
        gemm(&mut ViewMut::dense(&mut out, 2, 2), v, v.t(), false, 1.0, 1);
    }
}
