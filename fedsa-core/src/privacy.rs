//! The `[privacy]` table of a run: client-level differential privacy (DP-FedAvg, McMahan et al.
//! 2018) around the strategy's upload, and the checks that tie it to the rest of the config.
//! The mechanism and its accountant live in fedsa-aggregators.

use serde::{Deserialize, Serialize};

use crate::{Config, Error, Result};

/// The aggregators DP-FedAvg composes with: the clipped, noisy, equal-weighted mean replaces the
/// example-weighted one, and the new global state is what `fedavg` makes of that one release
/// (itself) or what `fedadam` steps to from it (post-processing, so no privacy is lost). Robust
/// rules (`median`, `trimmed_mean`) would replace the mean the noise is calibrated to, and a
/// plugin's rule is unknown.
pub const PRIVATE_AGGREGATORS: [&str; 2] = ["fedavg", "fedadam"];

/// Client-level differential privacy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// C: each client's update (its shared tensors minus the broadcast, as one vector) is
    /// scaled to at most this L2 norm.
    pub clip_norm: f64,
    /// σ: the Gaussian noise added to the mean of `m` clipped updates has standard deviation
    /// `σ·C/m`. Zero clips and averages without noise, and then claims no privacy.
    pub noise_multiplier: f64,
    /// δ of the `(ε, δ)` guarantee reported; pick it below `1 / federation.num_clients`.
    #[serde(default = "default_delta")]
    pub delta: f64,
    /// Seed of the noise; the run's seed when absent. The noise of round `t` is drawn from
    /// (seed, t) alone, so a resumed run adds exactly the noise an uninterrupted one would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

fn default_delta() -> f64 {
    1e-5
}

impl PrivacyConfig {
    /// The seed of the noise under a run seeded with `run_seed`.
    pub fn noise_seed(&self, run_seed: u64) -> u64 {
        self.seed.unwrap_or(run_seed)
    }
}

/// Checks `config.privacy`, when set, alone and against the federation and the strategy.
pub(crate) fn validate(config: &Config, source_name: &str) -> Result<()> {
    let Some(p) = &config.privacy else {
        return Ok(());
    };
    let bad = |field: &str, message: String| Err(Error::config(source_name, field, message));
    if !(p.clip_norm > 0.0 && p.clip_norm.is_finite()) {
        return bad(
            "privacy.clip_norm",
            format!("must be > 0, got {}", p.clip_norm),
        );
    }
    if !(p.noise_multiplier >= 0.0 && p.noise_multiplier.is_finite()) {
        return bad(
            "privacy.noise_multiplier",
            format!("must be >= 0, got {}", p.noise_multiplier),
        );
    }
    if !(p.delta > 0.0 && p.delta < 1.0) {
        return bad(
            "privacy.delta",
            format!("must be in (0, 1), got {}", p.delta),
        );
    }
    if config.federation.num_clients < 2 {
        return bad(
            "federation.num_clients",
            "[privacy] needs at least 2 clients: the aggregate of one client is its own update"
                .into(),
        );
    }
    let strategy = config.strategy(source_name)?;
    if !strategy.shares_anything() {
        let field = if config.strategy.roles.is_some() {
            "strategy.roles"
        } else {
            "strategy.name"
        };
        return bad(
            field,
            format!(
                "`{}` shares nothing, so [privacy] has nothing to protect; remove [privacy] or share a role",
                strategy.name
            ),
        );
    }
    // FedEx-LoRA's residual is computed from the clients' raw factors, after the clipped,
    // noisy mean: it would release each client's product unprotected.
    if strategy.server == crate::ServerRule::ExactResidual {
        return bad(
            "strategy.name",
            format!(
                "`{}` sends down a residual made from every client's unclipped factors, which \
                 [privacy] cannot protect; use fedit, ffa, fedsvd or rolora with [privacy]",
                strategy.name
            ),
        );
    }
    // FLoRA, FlexLoRA and HetLoRA combine the raw factors in their server rule, outside the
    // clipped, noisy mean.
    if strategy.server.aggregates_factors() {
        return bad(
            "strategy.name",
            format!(
                "`{}` combines every client's unclipped factors in its server rule, which \
                 [privacy] cannot protect; use fedit, ffa, fedsvd or rolora with [privacy]",
                strategy.name
            ),
        );
    }
    // The shared-model mode relays one client's B and head to the next, unprotected.
    if strategy.shared_model {
        return bad(
            "strategy.share_local_model",
            "hands each client's B and head to the next client unprotected; it cannot be combined with [privacy]".into(),
        );
    }
    let aggregator = config.strategy.aggregator.as_str();
    if !PRIVATE_AGGREGATORS.contains(&aggregator) {
        return bad(
            "strategy.aggregator",
            format!(
                "[privacy] replaces the mean with a clipped, noisy, equal-weighted one and composes with {} only, not `{aggregator}`",
                PRIVATE_AGGREGATORS.map(|a| format!("`{a}`")).join(" and ")
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{Config, Error};

    const BASE: &str = r#"
        [model]
        path = "m"
        [data]
        format = "rotten_tomatoes"
        path = "d.csv"
    "#;

    /// The field a config error of `extra` + the base names.
    fn field_of(extra: &str) -> String {
        match Config::from_toml_str(&format!("{BASE}\n{extra}"), "p.toml") {
            Err(Error::Config { field, message, .. }) => {
                assert!(!message.is_empty());
                field
            }
            other => panic!("{extra:?}: expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn privacy_is_optional_and_round_trips() {
        let plain = Config::from_toml_str(BASE, "p.toml").unwrap();
        assert!(plain.privacy.is_none());
        assert!(!plain.to_toml_string().unwrap().contains("privacy"));
        let text = format!("{BASE}\n[privacy]\nclip_norm = 0.5\nnoise_multiplier = 1.2\n");
        let c = Config::from_toml_str(&text, "p.toml").unwrap();
        let p = c.privacy.clone().unwrap();
        assert_eq!((p.clip_norm, p.noise_multiplier, p.delta), (0.5, 1.2, 1e-5));
        assert_eq!(p.noise_seed(c.seed), c.seed);
        let again = Config::from_toml_str(&c.to_toml_string().unwrap(), "again.toml").unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn bad_privacy_values_name_their_field() {
        let p = |body: &str| format!("[privacy]\n{body}\n");
        for (extra, field) in [
            (
                p("clip_norm = 0.0\nnoise_multiplier = 1.0"),
                "privacy.clip_norm",
            ),
            (
                p("clip_norm = -1.0\nnoise_multiplier = 1.0"),
                "privacy.clip_norm",
            ),
            (
                p("clip_norm = 1.0\nnoise_multiplier = -0.1"),
                "privacy.noise_multiplier",
            ),
            (
                p("clip_norm = 1.0\nnoise_multiplier = 1.0\ndelta = 0.0"),
                "privacy.delta",
            ),
            (
                p("clip_norm = 1.0\nnoise_multiplier = 1.0\ndelta = 1.0"),
                "privacy.delta",
            ),
            (p("noise_multiplier = 1.0"), "privacy.clip_norm"),
            (
                p("clip_norm = 1.0\nnoise_multiplier = 1.0\nepsilon = 3.0"),
                "privacy.epsilon",
            ),
            (
                format!(
                    "{}[federation]\nnum_clients = 1\nclients_per_round = 1\n",
                    p("clip_norm = 1.0\nnoise_multiplier = 1.0")
                ),
                "federation.num_clients",
            ),
            (
                format!(
                    "{}[strategy]\nname = \"local\"\n",
                    p("clip_norm = 1.0\nnoise_multiplier = 1.0")
                ),
                "strategy.name",
            ),
            (
                format!(
                    "{}[strategy]\nname = \"custom\"\n[strategy.roles]\na = {{ train = true, share = false }}\nb = {{ train = true, share = false }}\nhead = {{ train = true, share = false }}\n",
                    p("clip_norm = 1.0\nnoise_multiplier = 1.0")
                ),
                "strategy.roles",
            ),
            (
                format!(
                    "{}[strategy]\naggregator = \"median\"\n",
                    p("clip_norm = 1.0\nnoise_multiplier = 1.0")
                ),
                "strategy.aggregator",
            ),
            (
                format!(
                    "{}[strategy]\nname = \"fedex\"\n",
                    p("clip_norm = 1.0\nnoise_multiplier = 1.0")
                ),
                "strategy.name",
            ),
            (
                format!(
                    "{}[strategy]\nshare_local_model = true\n",
                    p("clip_norm = 1.0\nnoise_multiplier = 1.0")
                ),
                "strategy.share_local_model",
            ),
        ] {
            assert_eq!(field_of(&extra), field, "{extra}");
        }
    }

    #[test]
    fn fedadam_composes_and_zero_noise_is_allowed() {
        let text = format!(
            "{BASE}\n[privacy]\nclip_norm = 1.0\nnoise_multiplier = 0.0\nseed = 7\n[strategy]\nname = \"fedit\"\naggregator = \"fedadam\"\n"
        );
        let c = Config::from_toml_str(&text, "p.toml").unwrap();
        assert_eq!(c.privacy.unwrap().noise_seed(42), 7);
    }
}
