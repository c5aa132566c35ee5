//! FlexLoRA (Bai et al., NeurIPS 2024): the server forms the weighted full-size update
//! `ΔW = Σp_k s_k B_kA_k`, takes its SVD `ΔW = UΣVᵀ`, and hands client `k` its best
//! rank-`r_k` approximation: `A_k = V_{r_k}ᵀ`, `s_kB_k = U_{r_k}Σ_{r_k}` (the client's own
//! scale divided out, so that its update `s_kB_kA_k` is the truncation itself).
//!
//! `ΔW` is never formed: it is the product of FLoRA's stacked factors (`out × Σr_k` by
//! `Σr_k × in`), and the SVD of a product needs only the `Σr_k × Σr_k` core
//! (`linalg::product_svd`), freed with the module's step. The server holds each module's
//! factors at the largest client rank, as that client would hold them (its scale); every
//! client's factors are the leading rows of A and columns of B of those.

use fedsa_core::{
    ClientUpdate, Error, LowRankModule, ModuleRule, ParamSet, Result, Role, TensorData,
};

use super::factors::{ClientModules, module_factors, set_factors, stack};
use super::linalg::{Mat, product_svd, scale_columns};

/// The FlexLoRA server rule.
#[derive(Debug, Default)]
pub struct SvdTruncation {
    clients: ClientModules,
}

impl ModuleRule for SvdTruncation {
    fn name(&self) -> &'static str {
        "flexlora svd truncation"
    }

    fn aggregates_factors(&self) -> bool {
        true
    }

    fn set_clients(&mut self, clients: &[Vec<LowRankModule>]) {
        self.clients = ClientModules::new(clients);
    }

    fn client_factor(
        &self,
        client: usize,
        module: usize,
        role: Role,
        global: &TensorData,
    ) -> Result<TensorData> {
        let own = self.clients.get(client, module)?;
        let mut factor = self.clients.own_slice(client, module, role, global)?;
        if role == Role::B {
            let ratio = (self.clients.largest(module)?.scale / own.scale) as f32;
            factor.data_mut().iter_mut().for_each(|v| *v *= ratio);
        }
        Ok(factor)
    }

    fn apply(
        &mut self,
        _aggregations: u64,
        modules: &[LowRankModule],
        global: &mut ParamSet,
        updates: &[ClientUpdate],
    ) -> Result<Vec<String>> {
        let mut changed = Vec::with_capacity(2 * modules.len());
        for (index, m) in modules.iter().enumerate() {
            let largest = self.clients.largest(index)?;
            let factors = module_factors(m, index, updates, &self.clients)?;
            let (b, a) = stack(&factors);
            let (a, b) = truncate(&b, &a, largest.rank, largest.scale)
                .map_err(|message| Error::param(m.name.clone(), message))?;
            set_factors(global, m, (&a, &b), &mut changed)?;
        }
        Ok(changed)
    }
}

/// The rank-`rank` truncation of `b·a` as factors of a client of scale `scale`: `A = V_rᵀ`
/// with orthonormal rows, `B = U_rΣ_r / scale`. Directions of zero singular value (the
/// update has lower rank) get rows of A orthonormal to the rest and columns of B zero, so
/// every client still starts from a usable A.
pub fn truncate(
    b: &Mat,
    a: &Mat,
    rank: usize,
    scale: f64,
) -> std::result::Result<(Mat, Mat), String> {
    let (out, inp) = (b.rows, a.cols);
    if rank > out.min(inp) {
        return Err(format!(
            "rank {rank} exceeds the layer's size ({inp} in, {out} out); FlexLoRA's \
             truncation needs r ≤ min(in, out)"
        ));
    }
    let (u, sigma, v) = product_svd(b, a);
    let mut new_a = Mat::zeros(rank, inp);
    let mut new_b = Mat::zeros(out, rank);
    let us = scale_columns(&u, &sigma);
    for (k, s) in sigma.iter().enumerate().take(rank) {
        if *s == 0.0 {
            continue;
        }
        for j in 0..inp {
            new_a.set(k, j, v.at(j, k));
        }
        for i in 0..out {
            new_b.set(i, k, us.at(i, k) / scale);
        }
    }
    complete_rows(&mut new_a, &sigma);
    Ok((new_a, new_b))
}

/// Fills the rows of `a` whose singular value is zero (or missing) with unit vectors
/// orthogonal to every other row, by Gram–Schmidt over the standard basis.
fn complete_rows(a: &mut Mat, sigma: &[f64]) {
    let empty: Vec<usize> = (0..a.rows)
        .filter(|&k| sigma.get(k).is_none_or(|s| *s == 0.0))
        .collect();
    let mut candidate = 0;
    for k in empty {
        while candidate < a.cols {
            let mut v = vec![0.0; a.cols];
            v[candidate] = 1.0;
            candidate += 1;
            for _ in 0..2 {
                for other in (0..a.rows).filter(|&o| o != k) {
                    let row = &a.data[other * a.cols..(other + 1) * a.cols];
                    let c: f64 = row.iter().zip(&v).map(|(x, y)| x * y).sum();
                    v.iter_mut().zip(row).for_each(|(x, y)| *x -= c * y);
                }
            }
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm > 1e-6 {
                for (j, x) in v.iter().enumerate() {
                    a.set(k, j, x / norm);
                }
                break;
            }
        }
    }
}
