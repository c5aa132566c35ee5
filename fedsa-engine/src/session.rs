//! One client of a finished (or checkpointed) run, opened from its last complete checkpoint:
//! the one place `predict`, `export` and `generate` share. Front ends print what these return.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use fedsa_adapters::decoder::{GenerateOptions, GenerationTrainer, Sampling};
use fedsa_adapters::{BaseModel, EncoderConfig, LocalTrainer};
use fedsa_aggregators::PluginRegistry;
use fedsa_core::{ClientTrainer, Config, EncodedExample, EncodedSequence, TaskKind};
use fedsa_data::{TextTokenizer, answer_of};

use crate::checkpoint::{self, Checkpoint};
use crate::decoder::{Decoder, answer_fn, load_decoder};
use crate::prepare::resolve_spec;
use crate::run_dir::RunDir;

/// The config of the run in `run` and its checkpoint of round `round` (the last complete one
/// when `None`), once `client` is known to exist and the run's task is `task`; `other` names
/// the command for the other task.
pub fn open_checkpoint(
    run: &Path,
    client: usize,
    round: Option<usize>,
    task: TaskKind,
    other: &str,
) -> Result<(Config, Checkpoint)> {
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
    let ckpt = checkpoint::find(&dir.checkpoints(), round)
        .with_context(|| format!("opening {}", run.display()))?;
    Ok((config, ckpt))
}

/// Restores `trainer` from client `client`'s state file in `ckpt`.
fn restore_client(trainer: &mut dyn ClientTrainer, ckpt: &Checkpoint, client: usize) -> Result<()> {
    let state = ckpt.local_client(client)?;
    trainer.load_state(&state).with_context(|| {
        format!(
            "restoring {}",
            ckpt.path()
                .join(format!("client-{client}.safetensors"))
                .display()
        )
    })?;
    // FedEx-LoRA's corrections to the frozen weights are the server's, identical on every
    // client: the checkpoint holds them once, in the global state.
    let deltas = ckpt
        .params("global.safetensors")?
        .filter(fedsa_core::is_base_delta);
    if !deltas.is_empty() {
        trainer.set_params(&deltas).with_context(|| {
            format!(
                "restoring the weight corrections of {}",
                ckpt.path().display()
            )
        })?;
    }
    Ok(())
}

/// One classification client of a run, ready for inference.
pub struct ClientSession {
    pub config: Config,
    pub labels: Vec<String>,
    pub trainer: LocalTrainer,
    pub tokenizer: TextTokenizer,
    /// The encoder family's weight-name prefix (`bert.`, `roberta.`), for PEFT names.
    pub family_prefix: &'static str,
    pub checkpoint: PathBuf,
}

/// Loads client `client` of the run in `run` from its checkpoint of round `round` (the last
/// complete one when `None`).
pub fn load_client(run: &Path, client: usize, round: Option<usize>) -> Result<ClientSession> {
    let (config, ckpt) = open_checkpoint(
        run,
        client,
        round,
        TaskKind::Classification,
        "fedsa generate RUN --client K PROMPT",
    )?;
    let labels = RunDir::open(run)?.labels()?;
    let registry = PluginRegistry::discover(&config.plugins)?;
    let spec = resolve_spec(&config, registry.libraries())?;
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
        &config.client_adapter(client),
        &config.client_training(client),
        labels.len(),
        vec![placeholder],
        Vec::new(),
        config.seed,
        config.federation.rounds,
    )?;
    restore_client(&mut trainer, &ckpt, client)?;
    Ok(ClientSession {
        config,
        labels,
        trainer,
        tokenizer,
        family_prefix: family.weight_prefix(),
        checkpoint: ckpt.path().to_path_buf(),
    })
}

impl ClientSession {
    /// Each label's probability for every text, in label order.
    pub fn predict(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let examples = texts
            .iter()
            .map(|t| Ok(self.tokenizer.encode_text(t, None)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(self.trainer.predict_proba(&examples)?)
    }
}

/// How `fedsa generate` samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleOptions {
    pub max_new_tokens: Option<usize>,
    /// 0 is greedy decoding.
    pub temperature: f64,
    pub top_p: f64,
    pub seed: u64,
}

impl SampleOptions {
    /// Refuses a temperature below 0 and a top-p outside (0, 1], naming the flag.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            bail!("--temperature must be >= 0, got {}", self.temperature);
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            bail!("--top-p must be in (0, 1], got {}", self.top_p);
        }
        Ok(())
    }
}

/// One prompt's continuation under a client's model.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub prompt: String,
    pub text: String,
    /// The final number of the text, as exact match reads it.
    pub answer: Option<String>,
}

/// One generation client of a run, ready to generate.
pub struct GenerationSession {
    pub config: Config,
    pub trainer: GenerationTrainer,
    pub decoder: Decoder,
    pub checkpoint: PathBuf,
}

/// Loads generation client `client` of the run in `run` from its checkpoint of round `round`
/// (the last complete one when `None`).
pub fn load_generation_client(
    run: &Path,
    client: usize,
    round: Option<usize>,
) -> Result<GenerationSession> {
    let (config, ckpt) =
        open_checkpoint(run, client, round, TaskKind::Generation, "fedsa predict")?;
    let registry = PluginRegistry::discover(&config.plugins)?;
    let spec = resolve_spec(&config, registry.libraries())?;
    let device = fedsa_adapters::device(&config.device)?;
    let decoder = load_decoder(&config, &device)?;
    // The trainer is used for inference only; it needs one example to exist, never to train.
    let placeholder = decoder.tokenizer.encode_prompt("0")?;
    let placeholder = EncodedSequence {
        input_ids: [
            placeholder.input_ids.clone(),
            vec![decoder.tokenizer.eos_id()],
        ]
        .concat(),
        ..placeholder
    };
    let mut trainer = GenerationTrainer::new(
        client,
        Arc::clone(&decoder.base),
        &spec,
        &config.client_adapter(client),
        &config.client_training(client),
        vec![placeholder],
        Vec::new(),
        config.task.max_new_tokens,
        answer_fn(&decoder.tokenizer),
        config.seed,
        config.federation.rounds,
    )?;
    restore_client(&mut trainer, &ckpt, client)?;
    Ok(GenerationSession {
        config,
        trainer,
        decoder,
        checkpoint: ckpt.path().to_path_buf(),
    })
}

impl GenerationSession {
    /// The client's continuation of every prompt (formatted with the run's prompt template),
    /// and the answer extracted from it.
    pub fn generate(&self, prompts: &[String], sample: SampleOptions) -> Result<Vec<Generated>> {
        sample.validate()?;
        let tokenizer = &self.decoder.tokenizer;
        let mut options = GenerateOptions::greedy(
            sample
                .max_new_tokens
                .unwrap_or(self.config.task.max_new_tokens),
            vec![tokenizer.eos_id()],
        );
        options
            .stop_ids
            .extend(self.decoder.base.config().eos_ids());
        if sample.temperature > 0.0 {
            options.sampling = Sampling::TopP {
                temperature: sample.temperature,
                top_p: sample.top_p,
                seed: sample.seed,
            };
        }
        let encoded = prompts
            .iter()
            .map(|prompt| tokenizer.encode_prompt(prompt))
            .collect::<fedsa_core::Result<Vec<_>>>()?;
        let ids: Vec<&[u32]> = encoded.iter().map(EncodedSequence::prompt).collect();
        let generated = self.trainer.generate_all(&ids, Some(&options))?;
        prompts
            .iter()
            .zip(generated)
            .map(|(prompt, ids)| {
                let text = tokenizer.decode(&ids)?;
                Ok(Generated {
                    prompt: prompt.clone(),
                    answer: answer_of(&text),
                    text,
                })
            })
            .collect()
    }
}
