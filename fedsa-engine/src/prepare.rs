//! From a config to a prepared federation: load plugins, model, tokenizer and data, partition,
//! and build one trainer per client. Nothing here writes: everything that can fail on bad input
//! is checked before a run folder is created, so a bad config leaves nothing behind.

use std::sync::Arc;

use anyhow::Result;
use fedsa_adapters::{AdapterSpec, BaseModel, EncoderConfig, Family, LocalTrainer, PlanKind};
use fedsa_aggregators::PluginRegistry;
use fedsa_core::config::DataFormat;
use fedsa_core::{Aggregator, ClientTrainer, Config, Error};
use fedsa_data::{ClientSplit, Dataset, PartitionReport, TextTokenizer};
use fedsa_plugin_host::{PluginKind, PluginLibraries, SkippedPlugin};

use crate::limits::{check_positions, check_vocabulary};

/// One trainer per client, classification or generation alike.
pub type Trainers = Vec<Box<dyn ClientTrainer>>;

/// Everything a run needs, loaded and checked.
pub struct Prepared {
    pub config: Config,
    pub label_names: Vec<String>,
    pub report: PartitionReport,
    pub trainers: Trainers,
    pub aggregator: Box<dyn Aggregator>,
    /// Plugin libraries found by searching `FEDSA_PLUGIN_PATH` that did not load, and why.
    pub skipped_plugins: Vec<SkippedPlugin>,
    /// The adapter's name and the plan its program compiled to, for the run's start line.
    pub adapter_plan: String,
}

/// The adapter spec the config asks for (a spec file, a built-in, or an adapter plugin), with
/// the personal adapter its strategy adds (FedDPA), checked against what the strategy needs.
pub fn resolve_spec(config: &Config, libraries: &PluginLibraries) -> Result<AdapterSpec> {
    let spec = base_spec(config, libraries)?;
    let strategy = config.strategy(fedsa_core::UNNAMED_CONFIG)?;
    if strategy.personal_adapter {
        return Ok(spec.with_personal_adapter()?);
    }
    if strategy.needs_low_rank_modules() && spec.plan_kind()? != PlanKind::FusedLowRank {
        return Err(Error::run_config(
            "strategy.name",
            format!(
                "`{}` works on the factors of a plain low-rank update s·B·A (adapter.kind = \
                 lora or rslora); adapter.kind = `{}` runs as {}",
                strategy.name,
                config.adapter.kind,
                spec.plan_description()
            ),
        )
        .into());
    }
    Ok(spec)
}

/// The adapter spec as configured, before the strategy's additions.
fn base_spec(config: &Config, libraries: &PluginLibraries) -> Result<AdapterSpec> {
    let a = &config.adapter;
    if let Some(path) = &a.spec {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::run_config("adapter.spec", format!("reading {}: {e}", path.display()))
        })?;
        return Ok(AdapterSpec::from_text(&text, &path.display().to_string())?);
    }
    if fedsa_adapters::builtin_kinds().contains(&a.kind.as_str()) {
        return Ok(AdapterSpec::builtin(&a.kind, a)?);
    }
    match libraries.adapter_spec(&a.kind) {
        Some(text) => Ok(AdapterSpec::from_text(
            &text,
            &format!("plugin adapter `{}`", a.kind),
        )?),
        None => Err(Error::run_config(
            "adapter.kind",
            format!(
                "unknown adapter `{}` (built-in: {}; plugins: {})",
                a.kind,
                fedsa_adapters::builtin_kinds().join(", "),
                plugin_adapters(libraries).join(", ")
            ),
        )
        .into()),
    }
}

/// Loads the data and partitions it into clients.
pub fn load_partition(config: &Config) -> Result<(Dataset, Vec<ClientSplit>, PartitionReport)> {
    let path = &config.data.path;
    // The readers report a missing file by its path alone; here it is the config's data.path.
    if config.data.format != DataFormat::Arithmetic && !path.exists() {
        return Err(
            Error::run_config("data.path", format!("{} does not exist", path.display())).into(),
        );
    }
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

/// The aggregator `config` names (a built-in or a plugin), behind DP-FedAvg when it has
/// `[privacy]`, and the plugin registry it was found in.
pub fn build_aggregator(config: &Config) -> Result<(Box<dyn Aggregator>, PluginRegistry)> {
    let registry = PluginRegistry::discover(&config.plugins)?;
    let options = toml::to_string(&config.strategy.aggregator_options)?;
    let aggregator =
        fedsa_aggregators::build_aggregator(&config.strategy.aggregator, &options, &registry)?;
    // With `[privacy]`, DP-FedAvg's clipped, noisy mean feeds the configured aggregator.
    let aggregator = fedsa_aggregators::with_privacy(aggregator, config)?;
    Ok((aggregator, registry))
}

/// Loads and checks everything a run of `config` needs; writes nothing.
pub fn prepare(config: &Config) -> Result<Prepared> {
    let (aggregator, registry) = build_aggregator(config)?;
    let spec = resolve_spec(config, registry.libraries())?;
    let device = fedsa_adapters::device(&config.device)?;
    let (label_names, report, trainers) = if config.task.kind.is_generation() {
        let decoder = crate::decoder::load_decoder(config, &device)?;
        let (dataset, splits, report) = load_partition(config)?;
        let trainers = crate::decoder::trainers(config, &spec, &decoder, &dataset, &splits)?;
        (dataset.label_names, report, trainers)
    } else {
        let encoder = Encoder::load(config, &device)?;
        let (dataset, splits, report) = load_partition(config)?;
        let trainers = splits
            .iter()
            .enumerate()
            .map(|(k, split)| encoder.trainer(config, &spec, &dataset, k, split))
            .collect::<Result<Trainers>>()?;
        (dataset.label_names.clone(), report, trainers)
    };
    Ok(Prepared {
        config: config.clone(),
        label_names,
        report,
        trainers,
        aggregator,
        skipped_plugins: registry.skipped().to_vec(),
        adapter_plan: format!("adapter {}: {} plan", spec.name, spec.plan_description()),
    })
}

/// The encoder and its tokenizer, loaded and checked against the config.
pub(crate) struct Encoder {
    base: Arc<BaseModel>,
    tokenizer: TextTokenizer,
}

impl Encoder {
    pub(crate) fn load(config: &Config, device: &candle_core::Device) -> Result<Self> {
        if !config.model.path.is_dir() {
            return Err(Error::run_config(
                "model.path",
                format!(
                    "{} is not a model folder (run scripts/fetch-assets for the bundled one)",
                    config.model.path.display()
                ),
            )
            .into());
        }
        let base = BaseModel::load(&config.model.path, device)?;
        let tokenizer = TextTokenizer::from_file(
            &config.model.path.join("tokenizer.json"),
            config.model.max_length,
        )?;
        check_encoder_limits(config, base.config(), &tokenizer)?;
        Ok(Self { base, tokenizer })
    }

    /// Client `k`'s classification trainer on its split.
    pub(crate) fn trainer(
        &self,
        config: &Config,
        spec: &AdapterSpec,
        dataset: &Dataset,
        k: usize,
        split: &ClientSplit,
    ) -> Result<Box<dyn ClientTrainer>> {
        let encode = |idx: &[usize]| -> Result<Vec<_>> {
            idx.iter()
                .map(|&i| Ok(self.tokenizer.encode(&dataset.examples[i])?))
                .collect()
        };
        Ok(Box::new(LocalTrainer::new(
            k,
            Arc::clone(&self.base),
            spec,
            &config.client_adapter(k),
            &config.client_training(k),
            dataset.label_names.len(),
            encode(&split.train)?,
            encode(&split.test)?,
            config.seed,
            config.federation.rounds,
        )?))
    }
}

/// Adapter names the loaded plugins offer.
pub fn plugin_adapters(libraries: &PluginLibraries) -> Vec<String> {
    libraries
        .names(PluginKind::Adapter)
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// The model's own limits against the config, before any example is encoded: texts longer
/// than the model's positions, or token ids past its embeddings, would otherwise fail only
/// when such a batch comes up, one client at a time.
fn check_encoder_limits(
    config: &Config,
    model: &EncoderConfig,
    tokenizer: &TextTokenizer,
) -> Result<()> {
    let file = config.model.path.join("config.json");
    // RoBERTa numbers positions from padding_idx + 1 (Hugging Face's create_position_ids).
    let offset = match model.family()? {
        Family::Bert => 0,
        Family::Roberta => model.pad_token_id as usize + 1,
    };
    check_positions(
        config.model.max_length,
        model.max_position_embeddings.saturating_sub(offset),
        &file,
    )?;
    check_vocabulary(tokenizer.vocab_size(), model.vocab_size, &file)
}
