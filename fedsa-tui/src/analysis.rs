//! The paper's central measurement: how similar the clients' learned A matrices are to each
//! other, and how similar their B matrices are. Two measures per adapted module:
//! - mean pairwise cosine similarity of the flattened updates (learned minus initial values);
//! - mean pairwise subspace similarity: the overlap of the spaces the matrices span (A's row
//!   space, B's column space), `||Q1ᵀ Q2||²_F / r`, which ignores scale and any invertible
//!   mixing of the rank components — `B A = (B R)(R⁻¹ A)` — so it compares what a factor does,
//!   not how the optimiser happened to parameterise it.

use std::collections::BTreeMap;

use fedsa_core::{ParamSet, Role};
use serde::Serialize;

/// Cosine similarity of two equal-length vectors (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

/// Orthonormal basis (as rows) of the span of the given row vectors, by modified Gram-Schmidt;
/// directions with a norm below `1e-9` of the largest are dropped.
fn orthonormal_rows(rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let scale = rows
        .iter()
        .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt())
        .fold(0.0, f64::max);
    let mut basis: Vec<Vec<f64>> = Vec::new();
    for r in rows {
        let mut v = r.clone();
        for _ in 0..2 {
            // Two passes keep the basis orthogonal in floating point.
            for q in &basis {
                let d: f64 = v.iter().zip(q).map(|(a, b)| a * b).sum();
                for (x, y) in v.iter_mut().zip(q) {
                    *x -= d * y;
                }
            }
        }
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if n > 1e-9 * scale.max(f64::MIN_POSITIVE) {
            basis.push(v.into_iter().map(|x| x / n).collect());
        }
    }
    basis
}

/// Subspace similarity of two sets of spanning vectors: `||Q1ᵀ Q2||²_F / max(dim)`, in [0, 1];
/// 1 when they span the same space, 0 when the spaces are orthogonal.
pub fn subspace_similarity(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let qa = orthonormal_rows(a);
    let qb = orthonormal_rows(b);
    let dim = qa.len().max(qb.len());
    if dim == 0 {
        return 0.0;
    }
    let mut total = 0.0;
    for x in &qa {
        for y in &qb {
            let d: f64 = x.iter().zip(y).map(|(p, q)| p * q).sum();
            total += d * d;
        }
    }
    total / dim as f64
}

/// The vectors a factor's space is spanned by: rows for A (`r x in`: its row space), columns
/// for B (`out x r`: its column space). Vectors (VeRA's d and b) span themselves.
pub fn spanning_vectors(role: Role, shape: &[usize], data: &[f32]) -> Vec<Vec<f64>> {
    match (role, shape) {
        (Role::B, [rows, cols]) => (0..*cols)
            .map(|c| (0..*rows).map(|r| f64::from(data[r * cols + c])).collect())
            .collect(),
        (_, [_, cols]) => data
            .chunks(*cols)
            .map(|row| row.iter().map(|v| f64::from(*v)).collect())
            .collect(),
        _ => vec![data.iter().map(|v| f64::from(*v)).collect()],
    }
}

/// Similarity of one tensor across clients.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorSimilarity {
    pub module: String,
    pub tensor: String,
    pub role: Role,
    /// Mean pairwise cosine similarity of the clients' updates.
    pub cosine: f64,
    /// Mean pairwise subspace similarity of the learned factors.
    pub subspace: f64,
}

/// Per-tensor similarity across `clients` (each a client's parameters), relative to `init`.
/// Only tensors with a role of A or B are measured.
pub fn similarities(
    roles: &BTreeMap<String, Role>,
    init: &ParamSet,
    clients: &[ParamSet],
) -> fedsa_core::Result<Vec<TensorSimilarity>> {
    let mut out = Vec::new();
    for (name, role) in roles {
        if !matches!(role, Role::A | Role::B) || clients.len() < 2 {
            continue;
        }
        let start = init.require(name)?;
        let mut updates = Vec::with_capacity(clients.len());
        let mut spans = Vec::with_capacity(clients.len());
        for c in clients {
            let t = c.require(name)?;
            let upd: Vec<f32> = t
                .data()
                .iter()
                .zip(start.data())
                .map(|(v, s)| v - s)
                .collect();
            spans.push(spanning_vectors(*role, t.shape(), t.data()));
            updates.push(upd);
        }
        let (mut cos, mut sub, mut pairs) = (0.0, 0.0, 0usize);
        for i in 0..clients.len() {
            for j in i + 1..clients.len() {
                cos += cosine(&updates[i], &updates[j]);
                sub += subspace_similarity(&spans[i], &spans[j]);
                pairs += 1;
            }
        }
        let (module, tensor) = split_module(name);
        out.push(TensorSimilarity {
            module,
            tensor,
            role: *role,
            cosine: cos / pairs as f64,
            subspace: sub / pairs as f64,
        });
    }
    Ok(out)
}

/// `encoder.layer.3.attention.self.query.lora_A.weight` → (`encoder.layer.3.attention.self.query`,
/// `lora_A.weight`).
fn split_module(name: &str) -> (String, String) {
    for marker in [".lora_", ".vera_", ".dora_"] {
        if let Some(i) = name.find(marker) {
            return (name[..i].to_string(), name[i + 1..].to_string());
        }
    }
    match name.rsplit_once('.') {
        Some((m, t)) => (m.to_string(), t.to_string()),
        None => (String::new(), name.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_known_vectors() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-12);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-12);
        assert!((cosine(&[1.0, 1.0], &[-2.0, -2.0]) + 1.0).abs() < 1e-12);
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-12);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
    }

    #[test]
    fn subspace_similarity_ignores_scale_and_mixing() {
        // Two rows spanning the x-y plane of R^3, and a mixed, rescaled basis of the same plane.
        let a = vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0]];
        let mixed = vec![vec![3.0, 3.0, 0.0], vec![-0.5, 0.5, 0.0]];
        assert!((subspace_similarity(&a, &mixed) - 1.0).abs() < 1e-12);
        // The x-z plane shares one direction of two: similarity 1/2.
        let xz = vec![vec![2.0, 0.0, 0.0], vec![0.0, 0.0, 5.0]];
        assert!((subspace_similarity(&a, &xz) - 0.5).abs() < 1e-12);
        // Orthogonal lines.
        assert!(subspace_similarity(&[vec![1.0, 0.0, 0.0]], &[vec![0.0, 0.0, 1.0]]).abs() < 1e-12);
        // A line at 60 degrees: cos² = 1/4.
        let l60 = vec![vec![0.5, 3f64.sqrt() / 2.0]];
        assert!((subspace_similarity(&[vec![1.0, 0.0]], &l60) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn b_is_compared_by_columns_and_a_by_rows() {
        // B is 3x2: its columns are (1,0,0) and (0,1,0).
        let b = spanning_vectors(Role::B, &[3, 2], &[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        assert_eq!(b, vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0]]);
        let a = spanning_vectors(Role::A, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(a, vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]);
    }

    #[test]
    fn similarities_per_tensor_against_hand_computed_values() {
        let mut roles = BTreeMap::new();
        roles.insert("m.lora_A.weight".to_string(), Role::A);
        roles.insert("m.lora_B.weight".to_string(), Role::B);
        roles.insert("classifier.weight".to_string(), Role::Head);
        let mut init = ParamSet::new();
        init.insert("m.lora_A.weight", vec![1, 2], vec![1.0, 0.0])
            .unwrap();
        init.insert("m.lora_B.weight", vec![2, 1], vec![0.0, 0.0])
            .unwrap();
        init.insert("classifier.weight", vec![1], vec![0.0])
            .unwrap();
        let client = |a: [f32; 2], b: [f32; 2]| {
            let mut p = init.clone();
            p.insert("m.lora_A.weight", vec![1, 2], a.to_vec()).unwrap();
            p.insert("m.lora_B.weight", vec![2, 1], b.to_vec()).unwrap();
            p
        };
        // A updates (1,1) and (2,2): cosine 1. B updates (1,0) and (0,1): cosine 0.
        let clients = [
            client([2.0, 1.0], [1.0, 0.0]),
            client([3.0, 2.0], [0.0, 1.0]),
        ];
        let sims = similarities(&roles, &init, &clients).unwrap();
        assert_eq!(sims.len(), 2);
        let a = sims.iter().find(|s| s.role == Role::A).unwrap();
        let b = sims.iter().find(|s| s.role == Role::B).unwrap();
        assert_eq!(
            (a.module.as_str(), a.tensor.as_str()),
            ("m", "lora_A.weight")
        );
        assert!((a.cosine - 1.0).abs() < 1e-9);
        assert!(b.cosine.abs() < 1e-9);
        // Learned A rows (2,1) and (3,2): cos² of the angle between them.
        let c = (2.0 * 3.0 + 1.0 * 2.0) / (5f64.sqrt() * 13f64.sqrt());
        assert!((a.subspace - c * c).abs() < 1e-9);
        assert!(b.subspace.abs() < 1e-9);
    }
}
