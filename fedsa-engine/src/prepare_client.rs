//! One client of a federation prepared on its own, as a federation node (a Flower SuperNode)
//! builds it from the run's config: for partition K of the config's data, the very trainer
//! `prepare` builds for client K in a one-process run; or for a data file of the node's own.

use std::path::Path;

use anyhow::{Result, bail};
use fedsa_core::config::PartitionKind;
use fedsa_core::{ClientTrainer, Config};
use fedsa_data::ClientReport;

use crate::prepare::{Encoder, build_aggregator, load_partition, resolve_spec};

/// Client K's trainer and what the server records about it.
pub struct PreparedClient {
    pub trainer: Box<dyn ClientTrainer>,
    pub label_names: Vec<String>,
    /// Its split's sizes and label histograms (for the run folder's partition.json).
    pub report: ClientReport,
    /// The adapter's name and plan, as `prepare` states it.
    pub adapter_plan: String,
}

/// Prepares client `k` of `config`: on partition `k` of the config's data, or, with
/// `own_data`, on every example of that file (held out by `data.test_fraction`). Writes
/// nothing.
pub fn prepare_client(
    config: &Config,
    k: usize,
    own_data: Option<&Path>,
) -> Result<PreparedClient> {
    let n = config.federation.num_clients;
    if k >= n {
        bail!("client {k} does not exist: the config has federation.num_clients = {n}");
    }
    // The aggregator is the server's; building it here checks the plugins the same way.
    let (_, registry) = build_aggregator(config)?;
    let spec = resolve_spec(config, registry.libraries())?;
    let device = fedsa_adapters::device(&config.device)?;
    let (data_config, index) = match own_data {
        None => (config.clone(), k),
        Some(path) => {
            let mut own = config.clone();
            own.data.path = path.to_path_buf();
            own.federation.num_clients = 1;
            own.partition.kind = PartitionKind::Iid;
            (own, 0)
        }
    };
    let trainer_and_split = |dataset: &fedsa_data::Dataset,
                             splits: &[fedsa_data::ClientSplit]|
     -> Result<Box<dyn ClientTrainer>> {
        let split = &splits[index];
        if config.task.kind.is_generation() {
            let decoder = crate::decoder::load_decoder(config, &device)?;
            crate::decoder::trainer(config, &spec, &decoder, dataset, k, split)
        } else {
            Encoder::load(config, &device)?.trainer(config, &spec, dataset, k, split)
        }
    };
    let (dataset, splits, report) = load_partition(&data_config)?;
    let trainer = trainer_and_split(&dataset, &splits)?;
    Ok(PreparedClient {
        trainer,
        label_names: dataset.label_names.clone(),
        report: report.clients[index].clone(),
        adapter_plan: format!("adapter {}: {} plan", spec.name, spec.plan_description()),
    })
}
