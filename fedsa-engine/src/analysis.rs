//! The paper's central measurement: how similar the clients' learned A matrices are to each
//! other, and how similar their B matrices are. Two measures per adapted module:
//! - mean pairwise cosine similarity of the flattened updates (learned minus initial values);
//! - mean pairwise subspace similarity of the updates: the overlap of the spaces they span (A's
//!   row space, B's column space), `||Q1ᵀ Q2||²_F / r`, which ignores scale and any invertible
//!   mixing of the rank components — `B A = (B R)(R⁻¹ A)` — so it compares what a factor
//!   learned, not how the optimiser happened to parameterise it. Measured on updates, not the
//!   learned factors: every client's A starts from the same random init, which would otherwise
//!   dominate A's span and make A look shared whatever was learned.

use std::collections::BTreeMap;

use fedsa_core::{ParamSet, Role, TensorData};
use serde::{Deserialize, Serialize};

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
    overlap(&qa, &qb) / dim as f64
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorSimilarity {
    pub module: String,
    pub tensor: String,
    pub role: Role,
    /// Mean pairwise cosine similarity of the clients' updates.
    pub cosine: f64,
    /// Mean pairwise subspace similarity of the updates.
    pub subspace: f64,
}

/// Per-tensor similarity across `clients` (each a client's parameters), relative to `init`.
/// Only tensors with a role of A or B are measured.
pub fn similarities(
    roles: &BTreeMap<String, Role>,
    init: &ParamSet,
    clients: &[ParamSet],
) -> fedsa_core::Result<Vec<TensorSimilarity>> {
    let starts: Vec<&ParamSet> = clients.iter().map(|_| init).collect();
    similarities_from(roles, &starts, clients)
}

/// Per-tensor similarity across `clients`, each client's update measured from its own start
/// (`starts[k]`): after one more local round, clients of a strategy that keeps B personal start
/// that round from different B's. Clients whose update is zero (with sampling, never picked to
/// train) are left out; 0 when fewer than two moved.
pub fn similarities_from(
    roles: &BTreeMap<String, Role>,
    starts: &[&ParamSet],
    clients: &[ParamSet],
) -> fedsa_core::Result<Vec<TensorSimilarity>> {
    let mut out = Vec::new();
    for (name, role) in roles {
        if !matches!(role, Role::A | Role::B) || clients.len() < 2 {
            continue;
        }
        let mut updates = Vec::with_capacity(clients.len());
        let mut spans = Vec::with_capacity(clients.len());
        for (c, from) in clients.iter().zip(starts) {
            let t = c.require(name)?;
            let start = start_at_own_rank(name, *role, from.require(name)?, t.shape())?;
            let upd: Vec<f32> = t
                .data()
                .iter()
                .zip(start.data())
                .map(|(v, s)| v - s)
                .collect();
            spans.push(spanning_vectors(*role, t.shape(), &upd));
            updates.push(TensorData::new(t.shape().to_vec(), upd)?);
        }
        // A client whose tensor never moved (with sampling, one that was never picked to
        // train) has no update to compare: its pairs are left out rather than counted as 0.
        let moved: Vec<bool> = updates
            .iter()
            .map(|u| u.data().iter().any(|v| *v != 0.0))
            .collect();
        let (mut cos, mut sub, mut pairs) = (0.0, 0.0, 0usize);
        for i in 0..clients.len() {
            for j in i + 1..clients.len() {
                if !(moved[i] && moved[j]) {
                    continue;
                }
                let (c, s) = pair_similarity(
                    name,
                    *role,
                    (&updates[i], &spans[i]),
                    (&updates[j], &spans[j]),
                )?;
                cos += c;
                sub += s;
                pairs += 1;
            }
        }
        let (module, tensor) = split_module(name);
        out.push(TensorSimilarity {
            module,
            tensor,
            role: *role,
            cosine: cos / pairs.max(1) as f64,
            subspace: sub / pairs.max(1) as f64,
        });
    }
    Ok(out)
}

/// A client's start of tensor `name` at the client's own shape: a factor saved at a larger
/// rank (the run's `init.safetensors` is the largest client's) is cut to its leading rows of A
/// or columns of B, which is where a smaller client's seeded init lies (the draw is row-major
/// and B starts at zero).
fn start_at_own_rank(
    name: &str,
    role: Role,
    start: &TensorData,
    own: &[usize],
) -> fedsa_core::Result<TensorData> {
    let rank = match (role, own) {
        (Role::A, [r, _]) | (Role::B, [_, r]) => Some(*r),
        _ => None,
    };
    let cut = match rank {
        Some(r) if start.shape() != own => fedsa_core::slice_factor(name, role, start, r).ok(),
        _ => None,
    };
    let start = cut.unwrap_or_else(|| start.clone());
    if start.shape() != own {
        return Err(fedsa_core::Error::Param {
            name: name.to_string(),
            message: format!(
                "shape {own:?} in a client but {:?} at its start",
                start.shape()
            ),
        });
    }
    Ok(start)
}

/// `(cosine, subspace)` of two clients' updates of one factor. At equal shapes, the cosine of
/// the flattened updates and the subspace overlap `‖Q1ᵀQ2‖²_F / r`. Where the ranks differ,
/// the cosine compares the leading components both hold (the first `min(r)` rows of A or
/// columns of B: the ones a truncation keeps), and the overlap is divided by the smaller
/// dimension: the share of the smaller client's subspace that lies inside the larger's.
fn pair_similarity(
    name: &str,
    role: Role,
    (u1, s1): (&TensorData, &[Vec<f64>]),
    (u2, s2): (&TensorData, &[Vec<f64>]),
) -> fedsa_core::Result<(f64, f64)> {
    if u1.shape() == u2.shape() {
        return Ok((cosine(u1.data(), u2.data()), subspace_similarity(s1, s2)));
    }
    let rank = |u: &TensorData| match (role, u.shape()) {
        (Role::A, [r, _]) | (Role::B, [_, r]) => Some(*r),
        _ => None,
    };
    let (Some(r1), Some(r2)) = (rank(u1), rank(u2)) else {
        return Err(fedsa_core::Error::Param {
            name: name.to_string(),
            message: format!(
                "clients hold shapes {:?} and {:?}, which are not one factor at two ranks",
                u1.shape(),
                u2.shape()
            ),
        });
    };
    let r = r1.min(r2);
    let (a, b) = (
        fedsa_core::slice_factor(name, role, u1, r)?,
        fedsa_core::slice_factor(name, role, u2, r)?,
    );
    if a.shape() != b.shape() {
        return Err(fedsa_core::Error::Param {
            name: name.to_string(),
            message: format!(
                "clients hold shapes {:?} and {:?}: the layers differ, not only the ranks",
                u1.shape(),
                u2.shape()
            ),
        });
    }
    Ok((cosine(a.data(), b.data()), subspace_containment(s1, s2)))
}

/// `‖Q1ᵀQ2‖²_F / min(dim)`, in [0, 1]: 1 when the smaller space lies inside the larger.
pub fn subspace_containment(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let qa = orthonormal_rows(a);
    let qb = orthonormal_rows(b);
    let dim = qa.len().min(qb.len());
    if dim == 0 {
        return 0.0;
    }
    overlap(&qa, &qb) / dim as f64
}

/// `‖Q1ᵀQ2‖²_F` of two orthonormal bases given as rows.
fn overlap(qa: &[Vec<f64>], qb: &[Vec<f64>]) -> f64 {
    let mut total = 0.0;
    for x in qa {
        for y in qb {
            let d: f64 = x.iter().zip(y).map(|(p, q)| p * q).sum();
            total += d * d;
        }
    }
    total
}

/// The role a parameter plays, from its PEFT name's suffix: the fallback when a run's adapter
/// spec cannot be resolved (e.g. its plugin is gone). `None` for anything not an adapter factor.
pub fn role_from_name(name: &str) -> Option<Role> {
    const A: [&str; 2] = ["lora_A.weight", "vera_lambda_d"];
    const B: [&str; 3] = ["lora_B.weight", "vera_lambda_b", "lora_magnitude_vector"];
    if A.iter().any(|s| name.ends_with(s)) {
        Some(Role::A)
    } else if B.iter().any(|s| name.ends_with(s)) {
        Some(Role::B)
    } else {
        None
    }
}

/// The two measures of one factor of one module.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measures {
    pub cosine: f64,
    pub subspace: f64,
}

/// One adapted module (`encoder.layer.3.attention.self.query`): its A and B side by side. A
/// side is `None` when the adapter has no trainable tensor of that role there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleRow {
    pub module: String,
    /// The encoder layer, when the module's name holds one.
    pub layer: Option<usize>,
    /// The module's own name within its layer (`query`, `value`, `output.dense`).
    pub short: String,
    pub a: Option<Measures>,
    pub b: Option<Measures>,
}

/// Groups per-tensor similarities by module, in layer order. A module with several tensors of
/// one role (DoRA's B and magnitude) shows their mean.
pub fn by_module(tensors: &[TensorSimilarity]) -> Vec<ModuleRow> {
    let mut groups: BTreeMap<(usize, String), Vec<&TensorSimilarity>> = BTreeMap::new();
    for t in tensors {
        let layer = layer_of(&t.module).unwrap_or(usize::MAX);
        groups.entry((layer, t.module.clone())).or_default().push(t);
    }
    groups
        .into_iter()
        .map(|((layer, module), ts)| {
            let side = |role: Role| {
                let of: Vec<&&TensorSimilarity> = ts.iter().filter(|t| t.role == role).collect();
                (!of.is_empty()).then(|| Measures {
                    cosine: of.iter().map(|t| t.cosine).sum::<f64>() / of.len() as f64,
                    subspace: of.iter().map(|t| t.subspace).sum::<f64>() / of.len() as f64,
                })
            };
            ModuleRow {
                short: short_module(&module),
                layer: (layer != usize::MAX).then_some(layer),
                a: side(Role::A),
                b: side(Role::B),
                module,
            }
        })
        .collect()
}

/// The mean of each measure over the modules that have the role.
pub fn role_means(rows: &[ModuleRow], role: Role) -> Option<Measures> {
    let sides: Vec<Measures> = rows
        .iter()
        .filter_map(|r| if role == Role::A { r.a } else { r.b })
        .collect();
    (!sides.is_empty()).then(|| Measures {
        cosine: sides.iter().map(|m| m.cosine).sum::<f64>() / sides.len() as f64,
        subspace: sides.iter().map(|m| m.subspace).sum::<f64>() / sides.len() as f64,
    })
}

/// `encoder.layer.3.attention.self.query` → 3.
fn layer_of(module: &str) -> Option<usize> {
    let mut parts = module.split('.');
    while let Some(p) = parts.next() {
        if p == "layer" || p == "layers" {
            return parts.next()?.parse().ok();
        }
    }
    None
}

/// The module's name after its layer, without BERT's `attention.self.` plumbing:
/// `encoder.layer.3.attention.self.query` → `query`, `encoder.layer.3.output.dense` →
/// `output.dense`.
fn short_module(module: &str) -> String {
    let after_layer = match module.find(".layer.") {
        Some(i) => {
            let rest = &module[i + ".layer.".len()..];
            rest.split_once('.').map_or(rest, |(_, r)| r)
        }
        None => module,
    };
    after_layer
        .strip_prefix("attention.self.")
        .unwrap_or(after_layer)
        .to_string()
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
        // The A updates span the same line, the B updates orthogonal ones.
        assert!((a.subspace - 1.0).abs() < 1e-9);
        assert!(b.subspace.abs() < 1e-9);

        // A third client that never trained (update zero) is left out, not averaged in as 0.
        let idle = client([1.0, 0.0], [0.0, 0.0]);
        let with_idle = [clients[0].clone(), clients[1].clone(), idle];
        let sims = similarities(&roles, &init, &with_idle).unwrap();
        let a = sims.iter().find(|s| s.role == Role::A).unwrap();
        assert!((a.cosine - 1.0).abs() < 1e-9 && (a.subspace - 1.0).abs() < 1e-9);
        // Fewer than two clients moved: nothing to compare, 0.
        let sims = similarities(&roles, &init, &[clients[0].clone(), init.clone()]).unwrap();
        assert!(sims.iter().all(|s| s.cosine == 0.0 && s.subspace == 0.0));
    }

    /// A set of parameters with one A (`2 x 3`) and one B (`3 x 2`) for module `m`.
    fn factors(a: [f32; 6], b: [f32; 6]) -> ParamSet {
        let mut p = ParamSet::new();
        p.insert(
            "encoder.layer.0.attention.self.query.lora_A.weight",
            vec![2, 3],
            a.to_vec(),
        )
        .unwrap();
        p.insert(
            "encoder.layer.0.attention.self.query.lora_B.weight",
            vec![3, 2],
            b.to_vec(),
        )
        .unwrap();
        p
    }

    fn roles_of(p: &ParamSet) -> BTreeMap<String, Role> {
        p.names()
            .filter_map(|n| role_from_name(n).map(|r| (n.clone(), r)))
            .collect()
    }

    #[test]
    fn subspace_of_updates_ignores_scale_and_mixing_where_cosine_does_not() {
        let init = factors([0.0; 6], [0.0; 6]);
        // Client 2's A update mixes and rescales client 1's rows (same row space); its B update
        // is client 1's with the columns swapped and one negated (same column space).
        let one = factors(
            [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            [1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
        );
        let two = factors(
            [2.0, 2.0, 0.0, 1.0, -1.0, 0.0],
            [0.0, -1.0, 1.0, 0.0, 0.0, 0.0],
        );
        let sims = similarities(&roles_of(&init), &init, &[one, two]).unwrap();
        let a = sims.iter().find(|s| s.role == Role::A).unwrap();
        let b = sims.iter().find(|s| s.role == Role::B).unwrap();
        // A: flattened (1,0,0,0,1,0)·(2,2,0,1,-1,0) = 1, norms sqrt(2) and sqrt(10).
        assert!((a.cosine - 1.0 / 20f64.sqrt()).abs() < 1e-9, "{}", a.cosine);
        assert!((a.subspace - 1.0).abs() < 1e-9);
        // B: (1,0,0,1,0,0)·(0,-1,1,0,0,0) = 0.
        assert!(b.cosine.abs() < 1e-9);
        assert!((b.subspace - 1.0).abs() < 1e-9);
    }

    #[test]
    fn clients_of_different_ranks_compare_leading_components_and_containment() {
        // init at rank 2 (the largest client's); client 0 has rank 1.
        let init = factors([0.0; 6], [0.0; 6]);
        let mut small = ParamSet::new();
        small
            .insert(
                "encoder.layer.0.attention.self.query.lora_A.weight",
                vec![1, 3],
                vec![1.0, 0.0, 0.0],
            )
            .unwrap();
        small
            .insert(
                "encoder.layer.0.attention.self.query.lora_B.weight",
                vec![3, 1],
                vec![1.0, 0.0, 0.0],
            )
            .unwrap();
        // Client 1: A rows e1, e2; B columns e2, e1.
        let large = factors(
            [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            [0.0, 1.0, 1.0, 0.0, 0.0, 0.0],
        );
        let sims = similarities(&roles_of(&init), &init, &[small, large]).unwrap();
        let a = sims.iter().find(|s| s.role == Role::A).unwrap();
        let b = sims.iter().find(|s| s.role == Role::B).unwrap();
        // A: leading rows e1 and e1; e1 lies in span{e1, e2} (the equal-rank measure, /2,
        // would say 0.5).
        assert!((a.cosine - 1.0).abs() < 1e-9 && (a.subspace - 1.0).abs() < 1e-9);
        // B: leading columns e1 and e2 are orthogonal, yet e1 lies in span{e2, e1}.
        assert!(b.cosine.abs() < 1e-9 && (b.subspace - 1.0).abs() < 1e-9);
    }

    #[test]
    fn three_clients_average_their_three_pairs() {
        let init = factors([0.0; 6], [0.0; 6]);
        let e1 = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let e2 = [0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        // A updates e1, e1, e2: pair cosines 1, 0, 0. B updates e1, -e1, e1: -1, 1, -1.
        let neg = e1.map(|v: f32| -v);
        let clients = [factors(e1, e1), factors(e1, neg), factors(e2, e1)];
        let sims = similarities(&roles_of(&init), &init, &clients).unwrap();
        let a = sims.iter().find(|s| s.role == Role::A).unwrap();
        let b = sims.iter().find(|s| s.role == Role::B).unwrap();
        assert!((a.cosine - 1.0 / 3.0).abs() < 1e-9);
        assert!((b.cosine + 1.0 / 3.0).abs() < 1e-9);
        // Sign does not change a span: B's updates all span the same line.
        assert!((b.subspace - 1.0).abs() < 1e-9);
    }

    #[test]
    fn updates_are_measured_from_each_clients_own_start() {
        let zero = factors([0.0; 6], [0.0; 6]);
        let moved = factors([0.0; 6], [5.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let e1 = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        // Both clients add e1 to B, from different starts: the same update.
        let ends = [factors(e1, e1), factors(e1, [6.0, 0.0, 0.0, 0.0, 0.0, 0.0])];
        let sims = similarities_from(&roles_of(&zero), &[&zero, &moved], &ends).unwrap();
        let b = sims.iter().find(|s| s.role == Role::B).unwrap();
        assert!((b.cosine - 1.0).abs() < 1e-9);
        // A start with another shape is an error naming the tensor.
        let mut odd = zero.clone();
        odd.insert(
            "encoder.layer.0.attention.self.query.lora_A.weight",
            vec![3, 2],
            vec![0.0; 6],
        )
        .unwrap();
        let e = similarities_from(&roles_of(&zero), &[&zero, &odd], &ends).unwrap_err();
        assert!(e.to_string().contains("lora_A.weight"), "{e}");
    }

    #[test]
    fn roles_follow_peft_suffixes() {
        let r = |n: &str| role_from_name(n);
        assert_eq!(
            r("encoder.layer.0.attention.self.query.lora_A.weight"),
            Some(Role::A)
        );
        assert_eq!(
            r("encoder.layer.0.attention.self.query.lora_B.weight"),
            Some(Role::B)
        );
        assert_eq!(
            r("encoder.layer.0.attention.self.value.vera_lambda_d"),
            Some(Role::A)
        );
        assert_eq!(
            r("encoder.layer.0.attention.self.value.vera_lambda_b"),
            Some(Role::B)
        );
        assert_eq!(
            r("encoder.layer.0.output.dense.lora_magnitude_vector"),
            Some(Role::B)
        );
        assert_eq!(r("classifier.weight"), None);
    }

    #[test]
    fn modules_are_grouped_in_numeric_layer_order_with_means() {
        let t = |module: &str, role: Role, cosine: f64, subspace: f64| TensorSimilarity {
            module: module.into(),
            tensor: String::new(),
            role,
            cosine,
            subspace,
        };
        let tensors = [
            t("encoder.layer.10.attention.self.query", Role::A, 0.5, 0.9),
            t("encoder.layer.10.attention.self.query", Role::B, 0.1, 0.2),
            t("encoder.layer.2.output.dense", Role::A, 0.3, 0.7),
            t("encoder.layer.2.output.dense", Role::B, 0.2, 0.4),
            t("encoder.layer.2.output.dense", Role::B, 0.4, 0.6),
        ];
        let rows = by_module(&tensors);
        let names: Vec<(Option<usize>, &str)> =
            rows.iter().map(|r| (r.layer, r.short.as_str())).collect();
        assert_eq!(names, [(Some(2), "output.dense"), (Some(10), "query")]);
        // Two B tensors in one module (DoRA's B and magnitude) show their mean.
        let b = rows[0].b.unwrap();
        assert!((b.cosine - 0.3).abs() < 1e-12 && (b.subspace - 0.5).abs() < 1e-12);
        let a = role_means(&rows, Role::A).unwrap();
        assert!((a.cosine - 0.4).abs() < 1e-12 && (a.subspace - 0.8).abs() < 1e-12);
        assert_eq!(role_means(&[], Role::B), None);
    }
}
