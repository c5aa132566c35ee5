//! Clients that are not alike (`[clients]` in a config): per client an adapter rank, a number
//! of local steps and a batch size, each a list with one entry per client. Unset, every
//! client takes the run-wide value (`adapter.rank`, `training.local_steps`,
//! `training.batch_size`).

use serde::{Deserialize, Serialize};

use crate::config::{AdapterConfig, Config, TrainingConfig};
use crate::{Error, Result, Strategy};

/// Per-client settings; each list, when given, has one entry per client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientsConfig {
    /// The LoRA rank of each client's adapter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<Vec<usize>>,
    /// Each client's optimizer steps per round (ignored with `training.local_epochs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_steps: Option<Vec<usize>>,
    /// Each client's training batch size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<Vec<usize>>,
}

/// The built-in strategies whose server step combines clients of different ranks
/// (`ServerRule::aggregates_factors`).
pub const RANK_HETEROGENEOUS_STRATEGIES: [&str; 3] = ["flora", "flexlora", "hetlora"];

impl ClientsConfig {
    /// Whether nothing is set per client.
    pub fn is_empty(&self) -> bool {
        self.rank.is_none() && self.local_steps.is_none() && self.batch_size.is_none()
    }

    /// The lists by their config field, for checks and displays.
    fn lists(&self) -> [(&'static str, Option<&Vec<usize>>); 3] {
        [
            ("clients.rank", self.rank.as_ref()),
            ("clients.local_steps", self.local_steps.as_ref()),
            ("clients.batch_size", self.batch_size.as_ref()),
        ]
    }

    /// Checks every list against `num_clients`; the error names the field.
    pub(crate) fn validate(&self, num_clients: usize, source_name: &str) -> Result<()> {
        for (field, list) in self.lists() {
            let Some(list) = list else { continue };
            if list.len() != num_clients {
                return Err(Error::config(
                    source_name,
                    field,
                    format!(
                        "has {} entries; it needs one per client (federation.num_clients = \
                         {num_clients})",
                        list.len()
                    ),
                ));
            }
            if let Some(k) = list.iter().position(|v| *v == 0) {
                return Err(Error::config(
                    source_name,
                    field,
                    format!("entry {k} (client {k}) is 0; every entry must be at least 1"),
                ));
            }
        }
        Ok(())
    }
}

impl Config {
    /// Client `k`'s adapter settings: the run's, with its own rank when `clients.rank` is set.
    pub fn client_adapter(&self, k: usize) -> AdapterConfig {
        let mut adapter = self.adapter.clone();
        if let Some(rank) = self.clients.rank.as_ref().and_then(|r| r.get(k)) {
            adapter.rank = *rank;
        }
        adapter
    }

    /// Client `k`'s training settings: the run's, with its own local steps and batch size
    /// when `[clients]` sets them.
    pub fn client_training(&self, k: usize) -> TrainingConfig {
        let mut training = self.training.clone();
        if let Some(steps) = self.clients.local_steps.as_ref().and_then(|s| s.get(k)) {
            training.local_steps = *steps;
        }
        if let Some(batch) = self.clients.batch_size.as_ref().and_then(|b| b.get(k)) {
            training.batch_size = *batch;
        }
        training
    }

    /// Every client's adapter rank, in client order.
    pub fn client_ranks(&self) -> Vec<usize> {
        (0..self.federation.num_clients)
            .map(|k| self.client_adapter(k).rank)
            .collect()
    }

    /// Whether the clients' adapter ranks differ.
    pub fn heterogeneous_ranks(&self) -> bool {
        let ranks = self.client_ranks();
        ranks.windows(2).any(|w| w[0] != w[1])
    }

    /// One line per client of what `[clients]` sets, for `fedsa partition` and the run's start
    /// line; empty when every client is alike.
    pub fn client_settings_lines(&self) -> Vec<String> {
        if self.clients.is_empty() {
            return Vec::new();
        }
        (0..self.federation.num_clients)
            .map(|k| {
                let (a, t) = (self.client_adapter(k), self.client_training(k));
                let steps = match t.local_epochs {
                    Some(e) => format!("{e} epochs"),
                    None => format!("{} steps", t.local_steps),
                };
                format!(
                    "client {k}: rank {}, {steps}, batch {}",
                    a.rank, t.batch_size
                )
            })
            .collect()
    }

    /// Refuses clients of different ranks under a strategy that cannot combine them.
    pub(crate) fn check_rank_support(&self, strategy: &Strategy, source_name: &str) -> Result<()> {
        if !self.heterogeneous_ranks() || strategy.accepts_differing_ranks() {
            return Ok(());
        }
        let strategy = &strategy.name;
        Err(Error::config(
            source_name,
            "clients.rank",
            format!(
                "the clients' ranks differ ({:?}), and strategy `{strategy}` needs one adapter \
                 layout on every client; {}",
                self.client_ranks(),
                rank_support_hint()
            ),
        ))
    }
}

/// Which strategies combine different ranks, for error messages.
pub(crate) fn rank_support_hint() -> String {
    format!(
        "strategies that combine different ranks: {} (and `local`, which shares no factor)",
        RANK_HETEROGENEOUS_STRATEGIES.join(", ")
    )
}
