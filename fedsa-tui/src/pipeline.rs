//! From a config to a running federation: load plugins, model, tokenizer and data, partition,
//! build one trainer per client, then run with checkpoints and metrics in the run folder.
//!
//! Everything that can fail on bad input is checked before the run folder is created, so a bad
//! config leaves nothing behind.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use fedsa_adapters::{AdapterSpec, BaseModel, LocalTrainer};
use fedsa_aggregators::PluginRegistry;
use fedsa_core::{
    Aggregator, ClientRoundRecord, ClientTrainer, Config, Event, EventSink, Federation, RunSummary,
};
use fedsa_data::{ClientSplit, Dataset, PartitionReport, TextTokenizer};

use crate::checkpoint;
use crate::run_dir::RunDir;

/// One trainer per client, classification or generation alike.
pub type Trainers = Vec<Box<dyn ClientTrainer>>;

/// Everything a run needs, loaded and checked.
pub struct Prepared {
    pub config: Config,
    pub label_names: Vec<String>,
    pub report: PartitionReport,
    pub trainers: Trainers,
    pub aggregator: Box<dyn Aggregator>,
}

/// The adapter spec the config asks for: a spec file, a built-in, or an adapter plugin.
pub fn resolve_spec(config: &Config, registry: &PluginRegistry) -> Result<AdapterSpec> {
    let a = &config.adapter;
    if let Some(path) = &a.spec {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("adapter.spec: reading {}", path.display()))?;
        return Ok(AdapterSpec::from_text(&text, &path.display().to_string())?);
    }
    if ["lora", "rslora", "vera"].contains(&a.kind.as_str()) {
        return Ok(AdapterSpec::builtin(&a.kind, a)?);
    }
    match registry.adapter_spec(&a.kind) {
        Some(text) => Ok(AdapterSpec::from_text(
            &text,
            &format!("plugin adapter `{}`", a.kind),
        )?),
        None => bail!(
            "adapter.kind: unknown adapter `{}` (built-in: lora, rslora, vera; plugins: {})",
            a.kind,
            crate::commands::plugin_adapters(registry).join(", ")
        ),
    }
}

/// Loads the data and partitions it into clients.
pub fn load_partition(config: &Config) -> Result<(Dataset, Vec<ClientSplit>, PartitionReport)> {
    let dataset =
        fedsa_data::load_dataset(&config.data, config.partition.key.as_deref(), config.seed)?;
    let splits = fedsa_data::partition(
        &dataset,
        &config.partition,
        config.federation.num_clients,
        config.data.test_fraction,
        config.seed,
    )?;
    let report = PartitionReport::new(&dataset, &splits);
    Ok((dataset, splits, report))
}

/// Loads and checks everything a run of `config` needs; writes nothing.
pub fn prepare(config: &Config) -> Result<Prepared> {
    let registry = PluginRegistry::discover(&config.plugins)?;
    let options = toml::to_string(&config.strategy.aggregator_options)?;
    let aggregator =
        fedsa_aggregators::build_aggregator(&config.strategy.aggregator, &options, &registry)?;
    let spec = resolve_spec(config, &registry)?;
    let device = fedsa_adapters::device(&config.device)?;
    let (label_names, report, trainers) = if config.task.kind.is_generation() {
        let decoder = crate::generation::load_decoder(config, &device)?;
        let (dataset, splits, report) = load_partition(config)?;
        let trainers = crate::generation::trainers(config, &spec, &decoder, &dataset, &splits)?;
        (dataset.label_names, report, trainers)
    } else {
        classification_trainers(config, &spec, &device)?
    };
    Ok(Prepared {
        config: config.clone(),
        label_names,
        report,
        trainers,
        aggregator,
    })
}

/// The encoder, its tokenizer and one classification trainer per client.
fn classification_trainers(
    config: &Config,
    spec: &AdapterSpec,
    device: &candle_core::Device,
) -> Result<(Vec<String>, PartitionReport, Trainers)> {
    if !config.model.path.is_dir() {
        bail!(
            "model.path: {} is not a model folder (run scripts/fetch-assets for the bundled one)",
            config.model.path.display()
        );
    }
    let base = BaseModel::load(&config.model.path, device)?;
    let tokenizer = TextTokenizer::from_file(
        &config.model.path.join("tokenizer.json"),
        config.model.max_length,
    )?;
    let (dataset, splits, report) = load_partition(config)?;
    let num_labels = dataset.label_names.len();
    let total_rounds = config.federation.rounds;
    let mut trainers: Trainers = Vec::with_capacity(splits.len());
    for (k, split) in splits.iter().enumerate() {
        let encode = |idx: &[usize]| -> Result<Vec<_>> {
            idx.iter()
                .map(|&i| Ok(tokenizer.encode(&dataset.examples[i])?))
                .collect()
        };
        trainers.push(Box::new(LocalTrainer::new(
            k,
            Arc::clone(&base),
            spec,
            &config.adapter,
            &config.training,
            num_labels,
            encode(&split.train)?,
            encode(&split.test)?,
            config.seed,
            total_rounds,
        )?));
    }
    Ok((dataset.label_names.clone(), report, trainers))
}

/// Options of one execution.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Continue the run folder's last complete checkpoint instead of starting anew.
    pub resume: bool,
}

/// Runs `config` to the end (or until `stop`), writing the run folder.
pub fn execute(
    config: &Config,
    options: &RunOptions,
    mut sink: Box<dyn EventSink>,
    stop: &AtomicBool,
) -> Result<RunSummary> {
    let prepared = match prepare(config) {
        Ok(p) => p,
        Err(e) => {
            sink.emit(Event::RunFailed {
                error: format!("{e:#}"),
            });
            return Err(e);
        }
    };
    let Prepared {
        mut config,
        label_names,
        report,
        trainers,
        aggregator,
    } = prepared;
    let clients = trainers;

    // Client records arrive as events; keep the round's records for the metrics files.
    let round_clients: Arc<std::sync::Mutex<Vec<ClientRoundRecord>>> = Arc::default();
    let captured = Arc::clone(&round_clients);
    let sink = Box::new(move |event: Event| {
        if let Event::RoundFinished { clients, .. } = &event {
            captured.lock().expect("metrics lock").clone_from(clients);
        }
        sink.emit(event);
    });
    let strategy = config.strategy("config")?;
    let mut fed = Federation::new(
        config.federation_settings(),
        strategy,
        aggregator,
        clients,
        sink,
    )?;

    let mut run_dir = if options.resume {
        let ckpt_dir = RunDir::path_for(&config).join("checkpoints");
        match checkpoint::latest(&ckpt_dir)? {
            Some((round, path)) => {
                let saved = RunDir::open(&RunDir::path_for(&config))?.config()?;
                if saved != config {
                    bail!(
                        "--resume: {} was started with a different config; resume with the same settings",
                        RunDir::path_for(&config).display()
                    );
                }
                checkpoint::restore(&path, &mut fed)?;
                fed.emit(Event::Log {
                    message: format!("resumed from {} (round {round})", path.display()),
                });
                RunDir::open_for_resume(&config, round)?
            }
            None => bail!(
                "--resume: no complete checkpoint under {}",
                ckpt_dir.display()
            ),
        }
    } else {
        let dir = RunDir::create(&mut config)?;
        fed.emit(Event::Log {
            message: format!("run folder: {}", dir.root().display()),
        });
        dir.write_json("labels.json", &label_names)?;
        dir.write_json("partition.json", &report)?;
        // Every client starts from the same seeded init; keep it so analyses can measure what
        // each client learned (its update), not where it started.
        let names: Vec<String> = fed.roles().into_keys().collect();
        let init = fed.clients()[0].params(&names)?;
        fedsa_core::io::save_params(&dir.root().join("init.safetensors"), &init)?;
        dir
    };

    let every = config.federation.checkpoint_every;
    let started = std::time::Instant::now();
    let result = fed.run(stop, &mut |fed, record| {
        let clients = round_clients.lock().expect("metrics lock").clone();
        run_dir
            .record_round(record, &clients)
            .map_err(|e| fedsa_core::Error::backend("writing metrics", format!("{e:#}")))?;
        if every > 0 && (record.round % every == 0 || record.round == fed.settings().rounds) {
            let path = checkpoint::save(&run_dir.checkpoints(), fed).map_err(|e| {
                fedsa_core::Error::backend("writing a checkpoint", format!("{e:#}"))
            })?;
            fed.emit(Event::CheckpointWritten {
                round: record.round,
                path: path.display().to_string(),
            });
        }
        Ok(())
    });
    let mut summary = result.with_context(|| format!("run {}", run_dir.root().display()))?;
    summary.seconds = started.elapsed().as_secs_f64();
    run_dir.write_summary(&summary)?;
    Ok(summary)
}

/// The run folder of `config`.
pub fn run_path(config: &Config) -> PathBuf {
    RunDir::path_for(config)
}

/// Whether `path` looks like a model folder.
pub fn is_model_dir(path: &Path) -> bool {
    path.join("config.json").is_file()
}
