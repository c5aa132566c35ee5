//! The rank-`r` truncated SVD of a weighted sum of low-rank products, without ever forming the
//! `out × in` matrix. With the clients' scaled columns of `B` stacked as `L` (`out × m`) and
//! the rows of `A` as `R` (`in × m`), `m = K·r`, the mean product is `M = L Rᵀ`. Thin QR of both
//! (`L = Q_L R_L`, `R = Q_R R_R`, modified Gram–Schmidt run twice) leaves the small core
//! `C = R_L R_Rᵀ`, whose SVD (one-sided Jacobi) gives `M`'s: `U = Q_L U_C`, `V = Q_R V_C`. All
//! arithmetic is `f64` on plain vectors; the cost is `O((out + in)·m² + m³)` per module.

/// Relative size below which a column is taken as dependent on the ones before it.
const DEPENDENT: f64 = 1e-10;
/// Jacobi rotates a pair of columns while their cosine exceeds this.
const ORTHOGONAL: f64 = 1e-15;
/// Jacobi sweeps before giving up on further accuracy (it converges in far fewer).
const MAX_SWEEPS: usize = 100;

/// One client's factors of a module: `a` is `[rank, in]`, `b` is `[out, rank]`, row-major, and
/// `weight` its share of the mean.
#[derive(Debug, Clone, Copy)]
pub struct Factors<'a> {
    pub weight: f64,
    pub a: &'a [f32],
    pub b: &'a [f32],
}

fn dot(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| a * b).sum()
}

fn norm(x: &[f64]) -> f64 {
    dot(x, x).sqrt()
}

/// `y -= c · x`.
fn sub_scaled(y: &mut [f64], c: f64, x: &[f64]) {
    for (a, b) in y.iter_mut().zip(x) {
        *a -= c * b;
    }
}

/// Thin QR of the columns `cols` (each of one length): orthonormal `q` and the rows of `r`
/// (`q.len() × cols.len()`) with `cols[j] = Σ_i r[i][j] q[i]`. Columns that depend on earlier
/// ones add no `q`.
fn thin_qr(cols: &[Vec<f64>]) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let m = cols.len();
    let mut q: Vec<Vec<f64>> = Vec::new();
    let mut r: Vec<Vec<f64>> = Vec::new();
    for (j, col) in cols.iter().enumerate() {
        let size = norm(col);
        let mut w = col.clone();
        // Twice is enough: the second pass removes what rounding left of the first.
        for _ in 0..2 {
            for (i, qi) in q.iter().enumerate() {
                let c = dot(qi, &w);
                r[i][j] += c;
                sub_scaled(&mut w, c, qi);
            }
        }
        let rest = norm(&w);
        if rest > DEPENDENT * size {
            for v in &mut w {
                *v /= rest;
            }
            q.push(w);
            let mut row = vec![0.0; m];
            row[j] = rest;
            r.push(row);
        }
    }
    (q, r)
}

/// The SVD of the matrix `C` whose columns are `w`, by one-sided Jacobi: returns the singular
/// values (one per column, unsorted), the columns of `W = C·V` (`σ_j u_j`), and the columns of
/// the orthogonal `V`.
fn jacobi(mut w: Vec<Vec<f64>>) -> (Vec<f64>, Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let n = w.len();
    let mut v: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    for _ in 0..MAX_SWEEPS {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let alpha = dot(&w[p], &w[p]);
                let beta = dot(&w[q], &w[q]);
                let gamma = dot(&w[p], &w[q]);
                if gamma == 0.0 || gamma.abs() <= ORTHOGONAL * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                for m in [&mut w, &mut v] {
                    let (left, right) = m.split_at_mut(q);
                    for (x, y) in left[p].iter_mut().zip(right[0].iter_mut()) {
                        let (xp, yq) = (*x, *y);
                        *x = c * xp - s * yq;
                        *y = s * xp + c * yq;
                    }
                }
            }
        }
        if !rotated {
            break;
        }
    }
    let sigma = w.iter().map(|col| norm(col)).collect();
    (sigma, w, v)
}

/// `Σ_i coeffs[i] · basis[i]`, a vector of `len` values.
fn combine(basis: &[Vec<f64>], coeffs: &[f64], len: usize) -> Vec<f64> {
    let mut out = vec![0.0; len];
    for (b, c) in basis.iter().zip(coeffs) {
        for (o, x) in out.iter_mut().zip(b) {
            *o += c * x;
        }
    }
    out
}

/// A unit vector of length `len` orthogonal to every one of `taken` (themselves orthonormal),
/// from the standard basis; `None` when they already span the space.
fn completion(taken: &[Vec<f64>], len: usize) -> Option<Vec<f64>> {
    (0..len).find_map(|k| {
        let mut e = vec![0.0; len];
        e[k] = 1.0;
        for _ in 0..2 {
            for t in taken {
                let c = dot(t, &e);
                sub_scaled(&mut e, c, t);
            }
        }
        let n = norm(&e);
        (n > 0.5).then(|| e.iter().map(|x| x / n).collect())
    })
}

/// The best rank-`rank` approximation of `M = Σ_k w_k B_k A_k` as factors `(A, B)`, `A`
/// `[rank, in]` with orthonormal rows (`V_rᵀ`) and `B` `[out, rank]` (`U_r Σ_r`), both
/// row-major `f32`, components in decreasing order of singular value. Each row of `A` has its
/// largest entry positive (the sign of a singular pair is otherwise arbitrary). When `M` has
/// rank below `rank`, the missing rows of `A` complete it to orthonormal and the matching
/// columns of `B` are zero (a fresh LoRA component: `B = 0`, `A ≠ 0`).
pub fn product_mean(
    rank: usize,
    in_features: usize,
    out_features: usize,
    clients: &[Factors<'_>],
) -> (Vec<f32>, Vec<f32>) {
    assert!(
        clients
            .iter()
            .all(|c| c.a.len() == rank * in_features && c.b.len() == out_features * rank),
        "factors shaped [rank, in] and [out, rank]"
    );
    let mut left = Vec::with_capacity(clients.len() * rank);
    let mut right = Vec::with_capacity(clients.len() * rank);
    for c in clients {
        for j in 0..rank {
            left.push(
                (0..out_features)
                    .map(|i| c.weight * f64::from(c.b[i * rank + j]))
                    .collect::<Vec<f64>>(),
            );
            right.push(
                c.a[j * in_features..(j + 1) * in_features]
                    .iter()
                    .map(|v| f64::from(*v))
                    .collect::<Vec<f64>>(),
            );
        }
    }
    let (q_left, r_left) = thin_qr(&left);
    let (q_right, r_right) = thin_qr(&right);
    // The core `C = R_L R_Rᵀ`, `p × q`, stored by columns.
    let core: Vec<Vec<f64>> = r_right
        .iter()
        .map(|rr| r_left.iter().map(|rl| dot(rl, rr)).collect())
        .collect();
    let (sigma, w, v) = jacobi(core);
    let mut order: Vec<usize> = (0..sigma.len()).collect();
    order.sort_by(|&i, &j| sigma[j].total_cmp(&sigma[i]).then(i.cmp(&j)));

    let mut rows_a: Vec<Vec<f64>> = Vec::with_capacity(rank);
    let mut cols_b: Vec<Vec<f64>> = Vec::with_capacity(rank);
    for &j in order.iter().take(rank) {
        // `σ_j u_j` in the left basis, and `v_j` in the right one.
        let mut b = combine(&q_left, &w[j], out_features);
        let mut a = combine(&q_right, &v[j], in_features);
        let peak = a
            .iter()
            .copied()
            .fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        if peak < 0.0 {
            for x in a.iter_mut().chain(b.iter_mut()) {
                *x = -*x;
            }
        }
        rows_a.push(a);
        cols_b.push(b);
    }
    while rows_a.len() < rank {
        let a = completion(&rows_a, in_features).unwrap_or_else(|| vec![0.0; in_features]);
        rows_a.push(a);
        cols_b.push(vec![0.0; out_features]);
    }
    let a: Vec<f32> = rows_a.iter().flatten().map(|x| *x as f32).collect();
    let mut b = vec![0.0f32; out_features * rank];
    for (j, col) in cols_b.iter().enumerate() {
        for (i, x) in col.iter().enumerate() {
            b[i * rank + j] = *x as f32;
        }
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `B·A` (`[out, in]`) of row-major factors.
    fn product(rank: usize, inp: usize, out: usize, a: &[f32], b: &[f32]) -> Vec<f64> {
        let mut m = vec![0.0; out * inp];
        for i in 0..out {
            for t in 0..inp {
                m[i * inp + t] = (0..rank)
                    .map(|j| f64::from(b[i * rank + j]) * f64::from(a[j * inp + t]))
                    .sum();
            }
        }
        m
    }

    fn assert_close(got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tol,
                "entry {i}: {g} vs {w}\n{got:?}\n{want:?}"
            );
        }
    }

    /// Rows of `A` orthonormal.
    fn assert_orthonormal_rows(rank: usize, inp: usize, a: &[f32]) {
        for i in 0..rank {
            for j in 0..rank {
                let d: f64 = (0..inp)
                    .map(|t| f64::from(a[i * inp + t]) * f64::from(a[j * inp + t]))
                    .sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((d - want).abs() < 1e-6, "A Aᵀ[{i}][{j}] = {d}");
            }
        }
    }

    #[test]
    fn rank_one_by_hand() {
        // M = 0.75 e1 e1ᵀ + 0.25 e2 e2ᵀ: the best rank-1 approximation keeps 0.75 e1 e1ᵀ.
        let (a, b) = product_mean(
            1,
            2,
            2,
            &[
                Factors {
                    weight: 0.75,
                    a: &[1.0, 0.0],
                    b: &[1.0, 0.0],
                },
                Factors {
                    weight: 0.25,
                    a: &[0.0, 1.0],
                    b: &[0.0, 1.0],
                },
            ],
        );
        assert_eq!(a, [1.0, 0.0]);
        assert_eq!(b, [0.75, 0.0]);
    }

    #[test]
    fn negative_directions_get_a_positive_peak_in_a() {
        // M = [[0, -2], [0, 0]]·0.5 = -e1 e2ᵀ: A = e2ᵀ, B = -e1.
        let (a, b) = product_mean(
            1,
            2,
            2,
            &[Factors {
                weight: 0.5,
                a: &[0.0, -4.0],
                b: &[0.5, 0.0],
            }],
        );
        assert_eq!(a, [0.0, 1.0]);
        assert_eq!(b, [-1.0, 0.0]);
    }

    #[test]
    fn one_client_is_refactorised_exactly() {
        let (r, inp, out) = (2, 5, 3);
        let a: Vec<f32> = (0..r * inp)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0)
            .collect();
        let b: Vec<f32> = (0..out * r)
            .map(|i| ((i * 5 % 7) as f32 - 3.0) / 2.0)
            .collect();
        let (na, nb) = product_mean(
            r,
            inp,
            out,
            &[Factors {
                weight: 1.0,
                a: &a,
                b: &b,
            }],
        );
        assert_close(
            &product(r, inp, out, &na, &nb),
            &product(r, inp, out, &a, &b),
            1e-5,
        );
        assert_orthonormal_rows(r, inp, &na);
    }

    #[test]
    fn rotated_diagonal_keeps_the_two_largest_directions() {
        // M = P diag(1.5, 1, 0.5) Qᵀ with rotations P (out side) and Q (in side), split over
        // two clients of rank 2; the best rank-2 approximation is P diag(1.5, 1, 0) Qᵀ.
        let rot = |t: f64| -> [[f64; 3]; 3] {
            let (s, c) = t.sin_cos();
            // A rotation about (1, 1, 1)/√3 by angle t (Rodrigues).
            let k = 1.0 / 3.0f64.sqrt();
            let kx = [[0.0, -k, k], [k, 0.0, -k], [-k, k, 0.0]];
            let mut m = [[0.0; 3]; 3];
            for i in 0..3 {
                for j in 0..3 {
                    let k2: f64 = (0..3).map(|l| kx[i][l] * kx[l][j]).sum();
                    m[i][j] = f64::from(u8::from(i == j)) + s * kx[i][j] + (1.0 - c) * k2;
                }
            }
            m
        };
        let p = rot(0.7);
        let q = rot(-1.3);
        let col = |m: &[[f64; 3]; 3], j: usize| [m[0][j], m[1][j], m[2][j]];
        // Client 1 (weight 1/2): 3 p0 q0ᵀ, as B = [3 p0, 0], A = [q0; q1].
        // Client 2 (weight 1/2): 2 p1 q1ᵀ + p2 q2ᵀ, as B = [2 p1, p2], A = [q1; q2].
        let make = |bcols: [[f64; 3]; 2], arows: [[f64; 3]; 2]| -> (Vec<f32>, Vec<f32>) {
            let a = arows.iter().flatten().map(|x| *x as f32).collect();
            let b = (0..3)
                .flat_map(|i| [bcols[0][i] as f32, bcols[1][i] as f32])
                .collect();
            (a, b)
        };
        let scale = |v: [f64; 3], s: f64| v.map(|x| x * s);
        let (a1, b1) = make([scale(col(&p, 0), 3.0), [0.0; 3]], [col(&q, 0), col(&q, 1)]);
        let (a2, b2) = make(
            [scale(col(&p, 1), 2.0), col(&p, 2)],
            [col(&q, 1), col(&q, 2)],
        );
        let (na, nb) = product_mean(
            2,
            3,
            3,
            &[
                Factors {
                    weight: 0.5,
                    a: &a1,
                    b: &b1,
                },
                Factors {
                    weight: 0.5,
                    a: &a2,
                    b: &b2,
                },
            ],
        );
        let mut want = vec![0.0; 9];
        for (s, j) in [(1.5, 0), (1.0, 1)] {
            for i in 0..3 {
                for t in 0..3 {
                    want[i * 3 + t] += s * p[i][j] * q[t][j];
                }
            }
        }
        assert_close(&product(2, 3, 3, &na, &nb), &want, 1e-6);
        assert_orthonormal_rows(2, 3, &na);
        // B = U Σ: its columns have the singular values as norms, largest first.
        let col_norm = |j: usize| {
            (0..3)
                .map(|i| f64::from(nb[i * 2 + j]).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        assert!((col_norm(0) - 1.5).abs() < 1e-6 && (col_norm(1) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn a_rank_deficient_mean_completes_a_and_zeroes_b() {
        // Every B is zero (LoRA's init): M = 0, so B stays zero and A becomes orthonormal.
        let (a, b) = product_mean(
            2,
            3,
            4,
            &[
                Factors {
                    weight: 0.5,
                    a: &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                    b: &[0.0; 8],
                },
                Factors {
                    weight: 0.5,
                    a: &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
                    b: &[0.0; 8],
                },
            ],
        );
        assert_eq!(b, [0.0; 8]);
        assert_orthonormal_rows(2, 3, &a);
    }

    #[test]
    fn more_client_directions_than_dimensions() {
        // Five clients of rank 2 in a 3-dimensional input space (K·r = 10 > in = 3), sharing
        // their A: M = (Σ w_k B_k) A has rank 2 and is reproduced exactly.
        let a: Vec<f32> = vec![0.2, -0.4, 0.9, 0.5, 0.1, -0.3];
        let bs: Vec<Vec<f32>> = (0..5)
            .map(|k| {
                (0..8)
                    .map(|i| ((k * 3 + i) % 5) as f32 * 0.25 - 0.5)
                    .collect()
            })
            .collect();
        let weights = [0.1, 0.15, 0.2, 0.25, 0.3];
        let clients: Vec<Factors<'_>> = bs
            .iter()
            .zip(weights)
            .map(|(b, w)| Factors {
                weight: w,
                a: &a,
                b,
            })
            .collect();
        let (na, nb) = product_mean(2, 3, 4, &clients);
        let mut want = vec![0.0; 12];
        for (b, w) in bs.iter().zip(weights) {
            for (x, y) in want.iter_mut().zip(product(2, 3, 4, &a, b)) {
                *x += w * y;
            }
        }
        assert_close(&product(2, 3, 4, &na, &nb), &want, 1e-6);
        assert_orthonormal_rows(2, 3, &na);
    }
}
