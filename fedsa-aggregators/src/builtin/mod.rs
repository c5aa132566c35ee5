//! The aggregators compiled into fedsa, and how each is built from its options.

mod coordinate;
mod fedadam;
mod median;
mod trimmed_mean;

use fedsa_core::{Aggregator, Result, WeightedMean};

pub use fedadam::{FedAdam, FedAdamSettings};
pub use median::Median;
pub use trimmed_mean::TrimmedMean;

pub(crate) use coordinate::client_values;

use crate::options::OptionTable;

/// Names of the built-in aggregators, as configs write them in `strategy.aggregator`.
pub const BUILTIN_AGGREGATORS: [&str; 4] = ["fedavg", "median", "trimmed_mean", "fedadam"];

/// The built-in aggregator `name` built from its options text, or `None` when no built-in has
/// that name.
pub(crate) fn build(name: &str, options_toml: &str) -> Option<Result<Box<dyn Aggregator>>> {
    if !BUILTIN_AGGREGATORS.contains(&name) {
        return None;
    }
    Some(OptionTable::parse(name, options_toml).and_then(|mut o| {
        let aggregator: Box<dyn Aggregator> = match name {
            "fedavg" => {
                o.finish(&[])?;
                Box::new(WeightedMean)
            }
            "median" => {
                o.finish(&[])?;
                Box::new(Median)
            }
            "trimmed_mean" => {
                let trim = o.f64_or("trim", TrimmedMean::DEFAULT_TRIM)?;
                let trim = o.require("trim", trim, (0.0..0.5).contains(&trim), "in [0, 0.5)")?;
                o.finish(&["trim"])?;
                Box::new(TrimmedMean::new(trim)?)
            }
            "fedadam" => {
                let d = FedAdamSettings::default();
                let lr = o.f64_or("lr", d.lr)?;
                let beta1 = o.f64_or("beta1", d.beta1)?;
                let beta2 = o.f64_or("beta2", d.beta2)?;
                let tau = o.f64_or("tau", d.tau)?;
                let settings = FedAdamSettings {
                    lr: o.require("lr", lr, lr > 0.0, "> 0")?,
                    beta1: o.require("beta1", beta1, (0.0..1.0).contains(&beta1), "in [0, 1)")?,
                    beta2: o.require("beta2", beta2, (0.0..1.0).contains(&beta2), "in [0, 1)")?,
                    tau: o.require("tau", tau, tau > 0.0, "> 0")?,
                };
                o.finish(&["lr", "beta1", "beta2", "tau"])?;
                Box::new(FedAdam::new(settings))
            }
            other => unreachable!("built-in `{other}` has no constructor"),
        };
        Ok(aggregator)
    }))
}
