//! Client-level differential privacy around a strategy's upload: DP-FedAvg's clipped, noisy,
//! equal-weighted mean in place of the weighted one ([`DpFedAvg`]), and the Rényi accountant
//! that says what ε its releases have spent ([`RdpAccountant`], as Opacus computes it).

mod accountant;
mod dp_fedavg;
mod log_space;
mod noise;

pub use accountant::{RdpAccountant, compute_rdp, default_orders, epsilon_from_rdp};
pub use dp_fedavg::{DpFedAvg, DpSettings};

use fedsa_core::{Aggregator, Config, Error, PRIVATE_AGGREGATORS, Result};

/// `inner` wrapped in DP-FedAvg when the config has a `[privacy]` table, `inner` itself
/// otherwise. The sampling rate is `clients_per_round / num_clients`; the noise seed is
/// `privacy.seed` or the run's.
pub fn with_privacy(inner: Box<dyn Aggregator>, config: &Config) -> Result<Box<dyn Aggregator>> {
    let Some(p) = &config.privacy else {
        return Ok(inner);
    };
    if !PRIVATE_AGGREGATORS.contains(&inner.name()) {
        return Err(Error::run_config(
            "strategy.aggregator",
            format!(
                "[privacy] composes with {} only, not `{}`",
                PRIVATE_AGGREGATORS.join(" and "),
                inner.name()
            ),
        ));
    }
    let f = &config.federation;
    let settings = DpSettings {
        clip_norm: p.clip_norm,
        noise_multiplier: p.noise_multiplier,
        delta: p.delta,
        sample_rate: f.clients_per_round as f64 / f.num_clients as f64,
        seed: p.noise_seed(config.seed),
    };
    Ok(Box::new(DpFedAvg::new(inner, settings)?))
}
