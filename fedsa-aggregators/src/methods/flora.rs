//! FLoRA (Wang et al., NeurIPS 2024): the server stacks the clients' factors,
//! `B = [B_1 … B_K]`, `A = [p_1s_1A_1; …; p_Ks_KA_K]`, so that `B·A = Σp_k s_k B_kA_k` is the
//! exact weighted sum of the clients' updates whatever their ranks, and merges it into the
//! frozen weight; the clients then start their factors over (A afresh, B zero), which the loop
//! does when the merged correction reaches them (`Strategy::restarts_factors`).
//!
//! The merged correction accumulates in `{module}.base_delta.weight` (`[out, in]`, FedEx-LoRA's
//! tensor), held in the global state and so checkpointed with it. The paper sends the stacked
//! factors down and lets each client multiply them out; fedsa sends the product, which is
//! smaller when `Σr_k·(in + out) > in·out` and larger otherwise — the bytes reported are the
//! product's.

use fedsa_core::{ClientUpdate, LowRankModule, ModuleRule, ParamSet, Result};

use super::factors::{ClientModules, add_to_base_delta, module_factors, stack};

/// The FLoRA server rule.
#[derive(Debug, Default)]
pub struct StackedMerge {
    clients: ClientModules,
}

impl ModuleRule for StackedMerge {
    fn name(&self) -> &'static str {
        "flora stacked merge"
    }

    fn aggregates_factors(&self) -> bool {
        true
    }

    fn set_clients(&mut self, clients: &[Vec<LowRankModule>]) {
        self.clients = ClientModules::new(clients);
    }

    fn apply(
        &mut self,
        _aggregations: u64,
        modules: &[LowRankModule],
        global: &mut ParamSet,
        updates: &[ClientUpdate],
    ) -> Result<Vec<String>> {
        let mut changed = Vec::with_capacity(modules.len());
        for (index, m) in modules.iter().enumerate() {
            let factors = module_factors(m, index, updates, &self.clients)?;
            let (b, a) = stack(&factors);
            let name = add_to_base_delta(global, m, 1.0, &b.matmul(&a))?;
            changed.push(name);
        }
        Ok(changed)
    }
}
