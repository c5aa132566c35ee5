//! HetLoRA (Cho et al., EMNLP 2024): the server zero-pads every client's factors to the
//! largest rank and takes their weighted sum, `A = Σw_k pad(A_k)`, `B = Σw_k pad(B_k)`, with
//! weights proportional to the norm of each client's update, `w_k ∝ ‖s_kB_kA_k‖_F`
//! ("sparsity-weighted aggregation": a client whose update is small counts less); client `k`
//! receives the first `r_k` rows of A and columns of B. The norm is of the update the client
//! applies (its own scale `s_k` included; with equal scales this is the paper's `‖B_kA_k‖_F`
//! up to the common factor the normalisation removes), computed from `r × r` Gram matrices.
//! When every update is zero (no training yet) the example weights are used instead.
//!
//! As published, the padding is with zeros: rows beyond a client's rank get weight only from
//! the larger clients of the round. The paper's optional local rank self-pruning is not built.

use fedsa_core::{ClientUpdate, LowRankModule, ModuleRule, ParamSet, Result, Role, TensorData};

use super::factors::{ClientFactors, ClientModules, module_factors, set_factors};
use super::linalg::{Mat, product_norm_sq};

/// The HetLoRA server rule.
#[derive(Debug, Default)]
pub struct NormWeightedPadding {
    clients: ClientModules,
}

impl ModuleRule for NormWeightedPadding {
    fn name(&self) -> &'static str {
        "hetlora norm-weighted padding"
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
        self.clients.own_slice(client, module, role, global)
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
            let rank = self.clients.largest(index)?.rank;
            let factors = module_factors(m, index, updates, &self.clients)?;
            let (a, b) = padded_sum(&factors, &norm_weights(&factors), rank);
            set_factors(global, m, (&a, &b), &mut changed)?;
        }
        Ok(changed)
    }
}

/// `w_k = ‖s_kB_kA_k‖_F / Σ_j ‖s_jB_jA_j‖_F`; the example weights when every norm is zero.
pub fn norm_weights(factors: &[ClientFactors]) -> Vec<f64> {
    let norms: Vec<f64> = factors
        .iter()
        .map(|f| f.scale.abs() * product_norm_sq(&f.b, &f.a).sqrt())
        .collect();
    let total: f64 = norms.iter().sum();
    if total > 0.0 && total.is_finite() {
        norms.iter().map(|n| n / total).collect()
    } else {
        factors.iter().map(|f| f.weight).collect()
    }
}

/// `(Σw_k pad(A_k), Σw_k pad(B_k))` at rank `rank`: A's rows and B's columns beyond a
/// client's own rank are zero in its padded factors.
pub fn padded_sum(factors: &[ClientFactors], weights: &[f64], rank: usize) -> (Mat, Mat) {
    let (out, inp) = factors.first().map_or((0, 0), |f| (f.b.rows, f.a.cols));
    let (mut a, mut b) = (Mat::zeros(rank, inp), Mat::zeros(out, rank));
    for (f, w) in factors.iter().zip(weights) {
        for k in 0..f.a.rows.min(rank) {
            for j in 0..inp {
                a.set(k, j, a.at(k, j) + w * f.a.at(k, j));
            }
            for i in 0..out {
                b.set(i, k, b.at(i, k) + w * f.b.at(i, k));
            }
        }
    }
    (a, b)
}
