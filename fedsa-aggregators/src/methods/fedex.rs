//! FedEx-LoRA (Singhal et al., ACL 2025): the mean of the factors is not the mean of the
//! products, so the server also sends what the factors miss, `R = Σp_kB_kA_k − B̄Ā`, and every
//! client adds `s·R` to its frozen weight. The global model, `W0' + s·B̄Ā`, is then exactly the
//! clients' mean `Σp_k(W0 + s·B_kA_k)`. The official code weighs clients equally; fedsa uses
//! the example weights `p_k` of its FedAvg (equal when clients hold equal data).
//!
//! The correction accumulates across rounds in one `[out, in]` tensor per module,
//! `{module}.base_delta.weight` (the weight's own orientation: `ΔW = B·A` for a linear layer
//! stored `[out, in]`), held in the global state and so checkpointed with it.

use fedsa_core::{ClientUpdate, LowRankModule, ModuleRule, ParamSet, Result, example_weights};

use super::factors::add_to_base_delta;
use super::linalg::Mat;

/// The FedEx-LoRA server rule.
#[derive(Debug, Default)]
pub struct ExactResidual;

impl ModuleRule for ExactResidual {
    fn name(&self) -> &'static str {
        "fedex residual"
    }

    fn apply(
        &mut self,
        _aggregations: u64,
        modules: &[LowRankModule],
        global: &mut ParamSet,
        updates: &[ClientUpdate],
    ) -> Result<Vec<String>> {
        let mut changed = Vec::with_capacity(modules.len());
        for m in modules {
            let (a_bar, b_bar) = (global.require(&m.a)?, global.require(&m.b)?);
            let (r, inp, out) = m.dims(a_bar, b_bar)?;
            let residual = residual(
                &Mat::from_f32(out, r, b_bar.data()),
                &Mat::from_f32(r, inp, a_bar.data()),
                m,
                updates,
            )?;
            changed.push(add_to_base_delta(global, m, m.scale, &residual)?);
        }
        Ok(changed)
    }
}

/// `Σp_kB_kA_k − B̄Ā` for one module, `[out, in]`.
fn residual(
    b_bar: &Mat,
    a_bar: &Mat,
    module: &LowRankModule,
    updates: &[ClientUpdate],
) -> Result<Mat> {
    let factors = module.updates(updates)?;
    let weights = example_weights(&factors);
    let mut sum = Mat::zeros(b_bar.rows, a_bar.cols);
    for (u, w) in factors.iter().zip(weights) {
        let (r, inp, out) = module.dims(u.a, u.b)?;
        let product = Mat::from_f32(out, r, u.b.data()).matmul(&Mat::from_f32(r, inp, u.a.data()));
        sum.add_scaled(w, &product);
    }
    sum.add_scaled(-1.0, &b_bar.matmul(a_bar));
    Ok(sum)
}
