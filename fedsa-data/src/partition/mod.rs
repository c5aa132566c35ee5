//! Splitting a dataset into federated clients. A partitioner decides which examples each client
//! holds (IID, Dirichlet over labels, or whole groups by key); then each client's examples are
//! split into its train and test split, stratified by label, so a client is evaluated on data
//! from its own distribution (the reference implementation drew test splits independently of
//! the clients, which measures something else).

mod dirichlet;
mod iid;
mod key;
mod split;

use fedsa_core::config::{PartitionConfig, PartitionKind};
use fedsa_core::{Error, Result, SeededRng};
use serde::{Deserialize, Serialize};

use crate::Dataset;
use crate::rng::stream;

/// One client's examples: indices into `Dataset::examples`, ascending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSplit {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

impl ClientSplit {
    /// Examples the client holds, train and test together.
    pub fn len(&self) -> usize {
        self.train.len() + self.test.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Splits `dataset` into `num_clients` clients as `cfg` asks, each with a train split and a test
/// split of about `test_fraction` of its examples. Every example goes to exactly one client.
///
/// Every client gets at least `max(cfg.min_examples, 2)` examples (two, so that both splits are
/// non-empty). The same seed gives the same partition.
pub fn partition(
    dataset: &Dataset,
    cfg: &PartitionConfig,
    num_clients: usize,
    test_fraction: f64,
    seed: u64,
) -> Result<Vec<ClientSplit>> {
    let n = dataset.examples.len();
    if num_clients == 0 {
        return Err(Error::run_config(
            "federation.num_clients",
            "must be at least 1",
        ));
    }
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(Error::run_config(
            "data.test_fraction",
            format!("must be in (0, 1), got {test_fraction}"),
        ));
    }
    if num_clients > n {
        return Err(Error::run_config(
            "federation.num_clients",
            format!("{num_clients} clients but only {n} examples: every client needs examples"),
        ));
    }
    let need = cfg.min_examples.max(2);
    if need.saturating_mul(num_clients) > n {
        return Err(Error::run_config(
            "partition.min_examples",
            format!(
                "{num_clients} clients with at least {need} examples each need {} examples, the dataset has {n}",
                need * num_clients
            ),
        ));
    }
    let labels: Vec<u32> = dataset.examples.iter().map(|e| e.label).collect();
    let mut rng = SeededRng::derive(seed, &[stream::PARTITION]);
    let clients = match cfg.kind {
        PartitionKind::Iid => iid::assign(n, num_clients, &mut rng),
        PartitionKind::Dirichlet => dirichlet::assign(
            &labels,
            dataset.num_labels(),
            num_clients,
            cfg.alpha,
            need,
            rng,
        )?,
        PartitionKind::Key => key::assign(dataset, cfg.key.as_deref(), num_clients, &mut rng)?,
    };
    if let Some((k, small)) = clients.iter().enumerate().find(|(_, c)| c.len() < need) {
        let why = if cfg.kind == PartitionKind::Key {
            " (groups of one key are never split)"
        } else {
            ""
        };
        return Err(Error::run_config(
            "partition.min_examples",
            format!(
                "client {k} gets {} examples, fewer than the minimum {need}{why}",
                small.len()
            ),
        ));
    }
    Ok(clients
        .iter()
        .enumerate()
        .map(|(k, examples)| {
            let mut rng = SeededRng::derive(seed, &[stream::SPLIT, k as u64]);
            split::train_test(examples, &labels, test_fraction, &mut rng)
        })
        .collect())
}
