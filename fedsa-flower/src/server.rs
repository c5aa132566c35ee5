//! The server side of a federation on remote nodes: the unchanged engine loop (sampling,
//! aggregation by fedsa's own aggregators and strategies, the run folder, checkpoints,
//! `--resume`) around one [`RemoteClient`] per node.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use fedsa_core::{ClientTrainer, Config, EventSink, RunSummary};
use fedsa_data::PartitionReport;
use fedsa_engine::{Prepared, RunOptions, build_aggregator, execute_prepared};

use crate::link::{Directory, Link};
use crate::remote::RemoteClient;

/// How the server waits for its nodes.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub run: RunOptions,
    /// How long to wait for every client's node to connect before the first round.
    pub connect_timeout: Duration,
}

/// Runs `config` on the nodes behind `link`, writing the same run folder as `fedsa run`.
pub fn serve(
    config: &Config,
    options: &ServeOptions,
    link: Box<dyn Link>,
    sink: Box<dyn EventSink>,
    stop: &AtomicBool,
) -> Result<RunSummary> {
    let (aggregator, registry) = build_aggregator(config)?;
    let n = config.federation.num_clients;
    let (directory, intros) =
        Directory::connect(link, config.to_toml_string()?, n, options.connect_timeout)?;
    let first = &intros[0].hello;
    let label_names = first.label_names.clone();
    let adapter_plan = first.adapter_plan.clone();
    let report = PartitionReport {
        label_names: label_names.clone(),
        clients: intros.iter().map(|i| i.hello.report.clone()).collect(),
    };
    if intros.len() != n {
        bail!("{} nodes for {n} clients", intros.len());
    }
    let directory = Arc::new(Mutex::new(directory));
    let trainers: Vec<Box<dyn ClientTrainer>> = intros
        .into_iter()
        .map(|intro| {
            Box::new(RemoteClient::new(intro, Arc::clone(&directory))) as Box<dyn ClientTrainer>
        })
        .collect();
    let prepared = Prepared {
        config: config.clone(),
        label_names,
        report,
        trainers,
        aggregator,
        skipped_plugins: registry.skipped().to_vec(),
        adapter_plan: format!("{adapter_plan} (on {n} remote nodes)"),
    };
    execute_prepared(prepared, &options.run, sink, stop)
}
