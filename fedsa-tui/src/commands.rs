//! The subcommands besides `run`: open the TUI, list plugins, and use a finished run's
//! personalised client models (`predict`, `export` to PEFT's layout).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use fedsa_adapters::{BaseModel, EncoderConfig, LocalTrainer};
use fedsa_aggregators::{PluginKind, PluginRegistry};
use fedsa_core::io::{load_params, write_atomic};
use fedsa_core::{ClientTrainer, Config, EncodedExample, ParamSet};
use fedsa_data::TextTokenizer;

use crate::run_dir::RunDir;
use crate::tui::{self, ClientPreviewRow, ClientsPreview, TuiEnv};
use crate::{checkpoint, pipeline};

/// Opens the TUI on the config at `path`.
pub fn open_tui(path: &Path) -> Result<()> {
    let config = Config::load(path).with_context(|| {
        format!(
            "opening the TUI on {} (from the repository root, or pass a config: fedsa tui CONFIG)",
            path.display()
        )
    })?;
    tui::run(
        config,
        path.to_path_buf(),
        TuiEnv::with_preview(Box::new(partition_preview)),
    )
}

/// The partition a config produces, for the TUI's clients screen.
fn partition_preview(config: &Config) -> Result<ClientsPreview> {
    let (_, _, report) = pipeline::load_partition(config)?;
    Ok(ClientsPreview {
        label_names: report.label_names.clone(),
        clients: report
            .clients
            .iter()
            .map(|c| ClientPreviewRow {
                train: c.train,
                test: c.test,
                train_hist: c.train_hist.clone(),
            })
            .collect(),
    })
}

/// `fedsa plugins list`: built-in adapters and aggregators, then every plugin found.
pub fn list_plugins(paths: &[PathBuf]) -> Result<()> {
    let registry = PluginRegistry::discover(paths)?;
    println!("{:<11} {:<22} {:>4}  source", "kind", "name", "abi");
    for kind in fedsa_adapters::builtin_kinds() {
        println!("{:<11} {:<22} {:>4}  built-in", "adapter", kind, "-");
    }
    for info in registry.list() {
        let source = match (&info.path, info.builtin) {
            (_, true) => "built-in".to_string(),
            (Some(p), false) => p.display().to_string(),
            (None, false) => "-".to_string(),
        };
        let abi = if info.builtin {
            "-".to_string()
        } else {
            info.abi_version.to_string()
        };
        println!(
            "{:<11} {:<22} {:>4}  {source}",
            info.kind.to_string(),
            info.name,
            abi
        );
    }
    for skipped in registry.skipped() {
        eprintln!("skipped {}: {}", skipped.path.display(), skipped.reason);
    }
    Ok(())
}

/// One client of a finished (or checkpointed) run, ready for inference.
pub struct ClientSession {
    pub config: Config,
    pub labels: Vec<String>,
    pub trainer: LocalTrainer,
    pub tokenizer: TextTokenizer,
    pub family_prefix: &'static str,
    pub checkpoint: PathBuf,
}

/// The config of the run in `run` and its last complete checkpoint, once `client` is known
/// to exist and the run's task is `task`; `other` names the command for the other task.
pub fn open_checkpoint(
    run: &Path,
    client: usize,
    task: fedsa_core::TaskKind,
    other: &str,
) -> Result<(Config, PathBuf)> {
    let dir = RunDir::open(run)?;
    let config = dir.config()?;
    if config.task.kind != task {
        bail!(
            "{} is a {} run: use {other}",
            run.display(),
            if config.task.kind.is_generation() {
                "generation"
            } else {
                "classification"
            }
        );
    }
    let n = config.federation.num_clients;
    if client >= n {
        bail!("--client {client}: the run has clients 0..{}", n - 1);
    }
    let (_, ckpt) = checkpoint::latest(&dir.checkpoints())?
        .with_context(|| format!("{} has no complete checkpoint", run.display()))?;
    Ok((config, ckpt))
}

/// Loads client `client` of the run in `run` from its last complete checkpoint.
pub fn load_client(run: &Path, client: usize) -> Result<ClientSession> {
    let (config, ckpt) = open_checkpoint(
        run,
        client,
        fedsa_core::TaskKind::Classification,
        "fedsa generate RUN --client K PROMPT",
    )?;
    let labels_path = run.join("labels.json");
    let labels: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(&labels_path)
            .with_context(|| format!("reading {}", labels_path.display()))?,
    )
    .with_context(|| format!("{}: not a list of labels", labels_path.display()))?;
    let registry = PluginRegistry::discover(&config.plugins)?;
    let spec = pipeline::resolve_spec(&config, &registry)?;
    let device = fedsa_adapters::device(&config.device)?;
    let base = BaseModel::load(&config.model.path, &device)?;
    let family = EncoderConfig::load(&config.model.path.join("config.json"))?.family()?;
    let tokenizer = TextTokenizer::from_file(
        &config.model.path.join("tokenizer.json"),
        config.model.max_length,
    )?;
    // The trainer is used for inference only; it needs one example to exist, never to train.
    let placeholder = EncodedExample {
        input_ids: vec![base.pad_token_id()],
        type_ids: vec![0],
        label: 0,
    };
    let mut trainer = LocalTrainer::new(
        client,
        Arc::clone(&base),
        &spec,
        &config.adapter,
        &config.training,
        labels.len(),
        vec![placeholder],
        Vec::new(),
        config.seed,
        config.federation.rounds,
    )?;
    let state_file = ckpt.join(format!("client-{client}.safetensors"));
    trainer
        .load_state(&load_params(&state_file)?)
        .with_context(|| format!("restoring {}", state_file.display()))?;
    Ok(ClientSession {
        config,
        labels,
        trainer,
        tokenizer,
        family_prefix: family.weight_prefix(),
        checkpoint: ckpt,
    })
}

/// `fedsa predict`: each label's probability for every text under client `client`'s model.
pub fn predict(run: &Path, client: usize, texts: &[String]) -> Result<()> {
    let session = load_client(run, client)?;
    let examples = texts
        .iter()
        .map(|t| Ok(session.tokenizer.encode_text(t, None)?))
        .collect::<Result<Vec<_>>>()?;
    let probs = session.trainer.predict_proba(&examples)?;
    for (text, p) in texts.iter().zip(probs) {
        let best = p
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        println!("{text}");
        for (label, prob) in session.labels.iter().zip(&p) {
            let mark = if session.labels[best] == *label {
                "*"
            } else {
                " "
            };
            println!("  {mark} {label:<12} {prob:.4}");
        }
    }
    Ok(())
}

/// The name PEFT gives parameter `name` of a sequence-classification model.
pub fn peft_key(name: &str, family_prefix: &str) -> String {
    if name.starts_with("classifier.") {
        format!("base_model.model.{name}")
    } else {
        format!("base_model.model.{family_prefix}{name}")
    }
}

/// `fedsa export`: client `client`'s personalised adapter in PEFT's layout.
pub fn export(run: &Path, client: usize, out: &Path) -> Result<()> {
    let session = load_client(run, client)?;
    let a = &session.config.adapter;
    let spec_name = session.trainer.model().adapters().spec().name.clone();
    let names: Vec<String> = session.trainer.roles().into_keys().collect();
    let params = session.trainer.params(&names)?;
    let mut peft = ParamSet::new();
    for (name, t) in params {
        peft.insert_tensor(peft_key(&name, session.family_prefix), t);
    }
    let modules_to_save: Vec<&str> = if session.family_prefix == "bert." {
        vec!["classifier", "pooler"]
    } else {
        vec!["classifier"]
    };
    let base_path = session.config.model.path.display().to_string();
    let adapter_config = match spec_name.as_str() {
        "lora" | "rslora" | "dora" => serde_json::json!({
            "peft_type": "LORA",
            "task_type": "SEQ_CLS",
            "base_model_name_or_path": base_path,
            "r": a.rank,
            "lora_alpha": a.alpha,
            "lora_dropout": a.dropout,
            "use_rslora": spec_name == "rslora",
            "target_modules": a.target_modules,
            "bias": "none",
            "fan_in_fan_out": false,
            "init_lora_weights": true,
            "use_dora": spec_name == "dora",
            "modules_to_save": modules_to_save,
            "inference_mode": true,
            "layers_to_transform": null,
            "layers_pattern": null,
            "rank_pattern": {},
            "alpha_pattern": {},
            "revision": null
        }),
        "vera" => {
            // VeRA's projections come from our seed, not PEFT's generator: ship them.
            for (name, tensor) in session.trainer.model().adapters().shared_tensors() {
                let short = name.trim_start_matches("shared.");
                let data: Vec<f32> = tensor
                    .flatten_all()?
                    .to_dtype(candle_core::DType::F32)?
                    .to_vec1()?;
                peft.insert(format!("base_model.{short}"), tensor.dims().to_vec(), data)?;
            }
            serde_json::json!({
                "peft_type": "VERA",
                "task_type": "SEQ_CLS",
                "base_model_name_or_path": base_path,
                "r": a.rank,
                "target_modules": a.target_modules,
                "projection_prng_key": session.config.seed,
                "save_projection": true,
                "vera_dropout": a.dropout,
                "d_initial": 0.1,
                "bias": "none",
                "fan_in_fan_out": false,
                "init_weights": true,
                "modules_to_save": modules_to_save,
                "inference_mode": true,
                "layers_to_transform": null,
                "layers_pattern": null
            })
        }
        other => {
            bail!(
                "export: PEFT has no layout for adapter `{other}` (lora, rslora, dora and vera export)"
            )
        }
    };
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    write_atomic(
        &out.join("adapter_config.json"),
        serde_json::to_string_pretty(&adapter_config)?.as_bytes(),
    )?;
    fedsa_core::io::save_params(&out.join("adapter_model.safetensors"), &peft)?;
    write_atomic(
        &out.join("fedsa_labels.json"),
        serde_json::to_string_pretty(&session.labels)?.as_bytes(),
    )?;
    println!(
        "exported client {client} of {} ({} tensors, from {}) to {}",
        run.display(),
        peft.len(),
        session.checkpoint.display(),
        out.display()
    );
    Ok(())
}

/// Adapter names the loaded plugins offer.
pub fn plugin_adapters(registry: &PluginRegistry) -> Vec<String> {
    registry
        .names(PluginKind::Adapter)
        .into_iter()
        .map(str::to_string)
        .collect()
}
