//! An aggregator plugin with a misbehaving module-level rule, registered as
//! `test_module_faulty`, for the host's checks on what a module rule returns. Option `mode`:
//! `nan` writes a NaN into the new B, `error` refuses, `panic` panics, `keep` keeps the global
//! factors, `scale` (the default) returns A unchanged and B multiplied by the module's scale.
//! The remaining tensors get the weighted mean.

#![forbid(unsafe_code)]

use fedsa_plugin_api::{
    AggregatorPlugin, ClientFactors, ModuleFactors, ModuleOutcome, Options, export_aggregator,
};

/// The chosen misbehaviour.
pub struct ModuleFaulty {
    mode: String,
}

impl AggregatorPlugin for ModuleFaulty {
    const MODULE_RULE: bool = true;

    fn new(config: &str) -> Result<Self, String> {
        let mut o = Options::parse(config)?;
        let mode = o.text_or("mode", "scale")?;
        o.finish(&["mode"])?;
        if !["nan", "error", "panic", "keep", "scale"].contains(&mode.as_str()) {
            return Err(format!(
                "strategy.aggregator_options.mode: `nan`, `error`, `panic`, `keep` or `scale`, got `{mode}`"
            ));
        }
        Ok(Self { mode })
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
        round: u64,
        module: &ModuleFactors<'_>,
        _clients: &[ClientFactors<'_>],
        _out_a: &mut [f32],
        out_b: &mut [f32],
    ) -> Result<ModuleOutcome, String> {
        match self.mode.as_str() {
            "nan" => {
                if let Some(b) = out_b.last_mut() {
                    *b = f32::NAN;
                }
                Ok(ModuleOutcome::Replaced)
            }
            "error" => Err(format!(
                "test_module_faulty refuses `{}` in round {round}",
                module.name
            )),
            "panic" => panic!("module rule of `{}` exploded", module.name),
            "keep" => Ok(ModuleOutcome::Kept),
            _ => {
                for b in out_b.iter_mut() {
                    *b *= module.scale as f32;
                }
                Ok(ModuleOutcome::Replaced)
            }
        }
    }
}

export_aggregator!(ModuleFaulty, "test_module_faulty");
