//! The little dense linear algebra the server rules need, in f64 on row-major buffers: products
//! of factors, a thin QR by modified Gram–Schmidt (run twice, which keeps the columns
//! orthonormal to rounding), and the SVD of a small square matrix by one-sided Jacobi. The
//! matrices are rank-sized (`r × r`) or factor-sized (`out × r`, `r × in`); nothing here is
//! on a hot path, so clarity wins over speed.

/// A row-major `rows × cols` matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Mat {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Mat {
    pub fn zeros(rows: usize, cols: usize) -> Mat {
        Mat {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    pub fn from_f32(rows: usize, cols: usize, values: &[f32]) -> Mat {
        debug_assert_eq!(values.len(), rows * cols);
        Mat {
            rows,
            cols,
            data: values.iter().map(|v| f64::from(*v)).collect(),
        }
    }

    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }

    pub fn set(&mut self, i: usize, j: usize, v: f64) {
        self.data[i * self.cols + j] = v;
    }

    #[must_use]
    pub fn transpose(&self) -> Mat {
        let mut t = Mat::zeros(self.cols, self.rows);
        for i in 0..self.rows {
            for j in 0..self.cols {
                t.set(j, i, self.at(i, j));
            }
        }
        t
    }

    /// `self · other`.
    #[must_use]
    pub fn matmul(&self, other: &Mat) -> Mat {
        assert_eq!(self.cols, other.rows, "inner dimensions");
        let mut out = Mat::zeros(self.rows, other.cols);
        for i in 0..self.rows {
            for k in 0..self.cols {
                let a = self.at(i, k);
                if a == 0.0 {
                    continue;
                }
                let row = &other.data[k * other.cols..(k + 1) * other.cols];
                let dst = &mut out.data[i * other.cols..(i + 1) * other.cols];
                for (d, b) in dst.iter_mut().zip(row) {
                    *d += a * b;
                }
            }
        }
        out
    }

    /// `self += w · other`.
    pub fn add_scaled(&mut self, w: f64, other: &Mat) {
        for (a, b) in self.data.iter_mut().zip(&other.data) {
            *a += w * b;
        }
    }

    pub fn to_f32(&self) -> Vec<f32> {
        self.data.iter().map(|v| *v as f32).collect()
    }

    fn column(&self, j: usize) -> Vec<f64> {
        (0..self.rows).map(|i| self.at(i, j)).collect()
    }

    fn set_column(&mut self, j: usize, v: &[f64]) {
        for (i, x) in v.iter().enumerate() {
            self.set(i, j, *x);
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Thin QR of `m` (`rows ≥ cols`): `Q` `rows × cols` with orthonormal columns (a column of
/// zeros where `m`'s column depends on the earlier ones) and upper-triangular `R`, `m = Q·R`.
pub fn thin_qr(m: &Mat) -> (Mat, Mat) {
    let (rows, cols) = (m.rows, m.cols);
    let mut q = Mat::zeros(rows, cols);
    let mut r = Mat::zeros(cols, cols);
    let scale = m
        .data
        .iter()
        .fold(0.0f64, |s, v| s.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    for j in 0..cols {
        let mut v = m.column(j);
        // Two passes of Gram–Schmidt: the second removes what rounding left of the first.
        for _ in 0..2 {
            for i in 0..j {
                let qi = q.column(i);
                let c = dot(&qi, &v);
                r.set(i, j, r.at(i, j) + c);
                for (x, y) in v.iter_mut().zip(&qi) {
                    *x -= c * y;
                }
            }
        }
        let norm = dot(&v, &v).sqrt();
        if norm > 1e-12 * scale {
            r.set(j, j, norm);
            for x in &mut v {
                *x /= norm;
            }
            q.set_column(j, &v);
        }
    }
    (q, r)
}

/// SVD of a square `n × n` matrix by one-sided Jacobi: `(U, σ, V)` with `m = U·diag(σ)·Vᵀ`,
/// `σ` descending and non-negative, `V` orthogonal. Where `σ_j` is zero, `U`'s column `j` is
/// zero (it multiplies nothing).
pub fn square_svd(m: &Mat) -> (Mat, Vec<f64>, Mat) {
    let n = m.rows;
    assert_eq!(n, m.cols, "square_svd needs a square matrix");
    let mut w = m.clone();
    let mut v = Mat::zeros(n, n);
    for i in 0..n {
        v.set(i, i, 1.0);
    }
    for _sweep in 0..60 {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let (wp, wq) = (w.column(p), w.column(q));
                let (alpha, beta, gamma) = (dot(&wp, &wp), dot(&wq, &wq), dot(&wp, &wq));
                if gamma.abs() <= 1e-15 * (alpha * beta).sqrt() || gamma == 0.0 {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let t = if zeta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                for mat in [&mut w, &mut v] {
                    for i in 0..n {
                        let (x, y) = (mat.at(i, p), mat.at(i, q));
                        mat.set(i, p, c * x - s * y);
                        mat.set(i, q, s * x + c * y);
                    }
                }
            }
        }
        if !rotated {
            break;
        }
    }
    let mut order: Vec<(f64, usize)> = (0..n)
        .map(|j| {
            let c = w.column(j);
            (dot(&c, &c).sqrt(), j)
        })
        .collect();
    order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let top = order.first().map_or(0.0, |o| o.0);
    let (mut u, mut vs) = (Mat::zeros(n, n), Mat::zeros(n, n));
    let mut sigma = Vec::with_capacity(n);
    for (k, (s, j)) in order.into_iter().enumerate() {
        let s = if s > 1e-13 * top { s } else { 0.0 };
        sigma.push(s);
        vs.set_column(k, &v.column(j));
        if s > 0.0 {
            let col: Vec<f64> = w.column(j).iter().map(|x| x / s).collect();
            u.set_column(k, &col);
        }
    }
    (u, sigma, vs)
}

/// The SVD of a product `b·a` (`b` `out × R`, `a` `R × in`) without forming it: with thin QRs
/// `b = Q_bR_b` and `aᵀ = Q_aR_a`, `b·a = Q_b(R_bR_aᵀ)Q_aᵀ`, and the SVD of the `R × R` middle
/// gives `(U, σ, V)` with `b·a = U·diag(σ)·Vᵀ`, `U` `out × R`, `V` `in × R`, `σ` descending.
/// Where `R` exceeds `out` or `in`, the dependent directions carry `σ = 0`.
pub fn product_svd(b: &Mat, a: &Mat) -> (Mat, Vec<f64>, Mat) {
    let (qb, rb) = thin_qr(b);
    let (qa, ra) = thin_qr(&a.transpose());
    let (u, sigma, v) = square_svd(&rb.matmul(&ra.transpose()));
    (qb.matmul(&u), sigma, qa.matmul(&v))
}

/// `m · diag(d)`: column `j` of `m` times `d[j]`.
#[must_use]
pub fn scale_columns(m: &Mat, d: &[f64]) -> Mat {
    let mut out = m.clone();
    for i in 0..out.rows {
        for (j, s) in d.iter().enumerate().take(out.cols) {
            out.set(i, j, out.at(i, j) * s);
        }
    }
    out
}

/// The squared Frobenius norm of `b·a` from the factors alone:
/// `‖BA‖² = tr((BᵀB)(AAᵀ))`, two `r × r` Gram matrices instead of an `out × in` product.
pub fn product_norm_sq(b: &Mat, a: &Mat) -> f64 {
    let gb = b.transpose().matmul(b);
    let ga = a.matmul(&a.transpose());
    gb.data.iter().zip(&ga.data).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mat(rows: usize, cols: usize, seed: u64) -> Mat {
        let mut rng = fedsa_core::SeededRng::new(seed);
        Mat {
            rows,
            cols,
            data: (0..rows * cols).map(|_| rng.next_f64() - 0.5).collect(),
        }
    }

    /// `u · diag(s)`.
    fn columns_scaled(u: &Mat, s: &[f64]) -> Mat {
        let mut out = u.clone();
        for (k, v) in out.data.iter_mut().enumerate() {
            *v *= s[k % u.cols];
        }
        out
    }

    fn close(a: &Mat, b: &Mat, tol: f64) {
        assert_eq!((a.rows, a.cols), (b.rows, b.cols));
        for (x, y) in a.data.iter().zip(&b.data) {
            assert!((x - y).abs() < tol, "{x} vs {y}");
        }
    }

    #[test]
    fn qr_reconstructs_with_orthonormal_columns() {
        let m = mat(7, 3, 1);
        let (q, r) = thin_qr(&m);
        close(&q.matmul(&r), &m, 1e-12);
        let mut eye = Mat::zeros(3, 3);
        (0..3).for_each(|i| eye.set(i, i, 1.0));
        close(&q.transpose().matmul(&q), &eye, 1e-12);
    }

    #[test]
    fn svd_of_a_hand_made_matrix() {
        // [[3, 0], [4, 5]] has singular values √45 and √5.
        let m = Mat {
            rows: 2,
            cols: 2,
            data: vec![3.0, 0.0, 4.0, 5.0],
        };
        let (u, s, v) = square_svd(&m);
        assert!((s[0] - 45f64.sqrt()).abs() < 1e-12 && (s[1] - 5f64.sqrt()).abs() < 1e-12);
        close(&columns_scaled(&u, &s).matmul(&v.transpose()), &m, 1e-12);
    }

    #[test]
    fn svd_of_a_rank_deficient_matrix_is_exact() {
        let b = mat(4, 1, 3);
        let a = mat(1, 4, 4);
        let m = b.matmul(&a);
        let (u, s, v) = square_svd(&m);
        assert!(s[1..].iter().all(|x| *x == 0.0), "{s:?}");
        close(&columns_scaled(&u, &s).matmul(&v.transpose()), &m, 1e-12);
    }
}
