//! Example aggregator plugin with a module-level rule, registered as `product_mean`: for each
//! low-rank module it forms the example-weighted mean of the clients' products,
//! `M = Σ p_k B_k A_k`, and returns its best rank-`r` approximation (Eckart–Young) as
//! `B = U_r Σ_r`, `A = V_rᵀ` — FlexLoRA's server rule for clients of one rank. The mean of the
//! factors (FedAvg on A and B separately) is not the mean of the products; this rule is exact
//! whenever `M` has rank at most `r` (one client, or clients sharing their A), and the best
//! rank-`r` choice otherwise. The module's scale is common to all clients and cancels.
//!
//! Every other shared tensor (a classifier head) gets the example-weighted mean. No options.
//!
//! It needs the module entry of plugin ABI version 2 (it sets `MODULE_RULE`); the linear
//! algebra is plain Rust in `f64` ([`svd`]).

#![forbid(unsafe_code)]

pub mod svd;

use fedsa_plugin_api::{
    AggregatorPlugin, ClientFactors, ModuleFactors, ModuleOutcome, Options, export_aggregator,
};

/// The rule; it keeps no state.
pub struct ProductMean;

impl AggregatorPlugin for ProductMean {
    const MODULE_RULE: bool = true;

    fn new(config: &str) -> Result<Self, String> {
        Options::parse(config)?.finish(&[])?;
        Ok(Self)
    }

    fn aggregate(
        &mut self,
        _round: u64,
        _tensor: &str,
        _global: &[f32],
        clients: &[&[f32]],
        weights: &[f64],
        out: &mut [f32],
    ) -> Result<(), String> {
        fedsa_plugin_api::weighted_mean(clients, weights, out);
        Ok(())
    }

    fn aggregate_module(
        &mut self,
        _round: u64,
        module: &ModuleFactors<'_>,
        clients: &[ClientFactors<'_>],
        out_a: &mut [f32],
        out_b: &mut [f32],
    ) -> Result<ModuleOutcome, String> {
        if clients.is_empty() {
            return Err(format!("module `{}`: no clients", module.name));
        }
        let factors: Vec<svd::Factors<'_>> = clients
            .iter()
            .map(|c| svd::Factors {
                weight: c.weight,
                a: c.a,
                b: c.b,
            })
            .collect();
        let (a, b) = svd::product_mean(
            module.rank,
            module.in_features,
            module.out_features,
            &factors,
        );
        out_a.copy_from_slice(&a);
        out_b.copy_from_slice(&b);
        Ok(ModuleOutcome::Replaced)
    }
}

export_aggregator!(ProductMean, "product_mean");
