//! The generation side of a run: a causal language model (a Hugging Face folder or a GGUF
//! file), its tokenizer, one [`GenerationTrainer`] per client, and `fedsa generate`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use candle_core::Device;
use fedsa_adapters::AdapterSpec;
use fedsa_adapters::decoder::{DecoderModel, GenerateOptions, GenerationTrainer, Sampling};
use fedsa_core::io::load_params;
use fedsa_core::{ClientTrainer, Config, EncodedSequence};
use fedsa_data::{CausalOptions, CausalTokenizer, ClientSplit, Dataset, answer_of};

/// A decoder and the tokenizer that goes with it.
pub struct Decoder {
    pub base: Arc<DecoderModel>,
    pub tokenizer: Arc<CausalTokenizer>,
}

/// Whether `path` names a GGUF file (by its extension).
fn is_gguf(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}

/// Loads the model `config.model.path` names: a `.gguf` file (weights dequantized to f32,
/// tokenizer from its metadata) or a Hugging Face folder (`config.json`, safetensors,
/// `tokenizer.json`).
pub fn load_decoder(config: &Config, device: &Device) -> Result<Decoder> {
    let path = &config.model.path;
    let options = CausalOptions::new(config.model.max_length);
    if is_gguf(path) {
        if !path.is_file() {
            bail!(
                "model.path: {} does not exist (run scripts/fetch-assets generation for the bundled SmolLM2)",
                path.display()
            );
        }
        let base = DecoderModel::load_gguf(path, device)?;
        let v = fedsa_adapters::decoder::GgufVocab::read(path)?;
        let vocab = fedsa_data::GgufVocab {
            model: v.model,
            pre: v.pre,
            tokens: v.tokens,
            merges: v.merges,
            token_types: v.token_types,
            bos_id: v.bos_id,
            eos_id: v.eos_id,
            pad_id: v.pad_id,
            add_bos: v.add_bos,
        };
        let tokenizer = CausalTokenizer::from_gguf_vocab(&vocab, path, &options)?;
        return Ok(Decoder {
            base,
            tokenizer: Arc::new(tokenizer),
        });
    }
    if !path.join("config.json").is_file() {
        bail!(
            "model.path: {} is neither a .gguf file nor a model folder with config.json",
            path.display()
        );
    }
    let base = DecoderModel::load(path, device)?;
    let file = path.join("tokenizer.json");
    let mut tokenizer = CausalTokenizer::from_file(&file, &options)?;
    // Train on the end-of-sequence token generation stops at: the model's own, when the
    // tokenizer's first guess differs.
    let model_eos = base.config().eos_ids();
    if let Some(&eos) = model_eos.first()
        && !model_eos.contains(&tokenizer.eos_id())
        && let Some(token) = tokenizer.tokenizer().id_to_token(eos)
    {
        let options = CausalOptions {
            eos_token: Some(token),
            ..options
        };
        tokenizer = CausalTokenizer::from_file(&file, &options)?;
    }
    Ok(Decoder {
        base,
        tokenizer: Arc::new(tokenizer),
    })
}

/// Decodes generated ids and extracts the final answer, for exact match.
fn answer_fn(tokenizer: &Arc<CausalTokenizer>) -> fedsa_adapters::decoder::AnswerFn {
    let tokenizer = Arc::clone(tokenizer);
    Box::new(move |ids: &[u32]| tokenizer.decode(ids).ok().and_then(|t| answer_of(&t)))
}

/// One generation trainer per client split.
pub fn trainers(
    config: &Config,
    spec: &AdapterSpec,
    decoder: &Decoder,
    dataset: &Dataset,
    splits: &[ClientSplit],
) -> Result<crate::pipeline::Trainers> {
    let mut out: crate::pipeline::Trainers = Vec::with_capacity(splits.len());
    for (k, split) in splits.iter().enumerate() {
        let encode = |idx: &[usize]| -> Result<Vec<EncodedSequence>> {
            idx.iter()
                .map(|&i| Ok(decoder.tokenizer.encode(&dataset.examples[i])?))
                .collect()
        };
        out.push(Box::new(GenerationTrainer::new(
            k,
            Arc::clone(&decoder.base),
            spec,
            &config.adapter,
            &config.training,
            encode(&split.train)?,
            encode(&split.test)?,
            config.task.max_new_tokens,
            answer_fn(&decoder.tokenizer),
            config.seed,
            config.federation.rounds,
        )?));
    }
    Ok(out)
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

/// `fedsa generate`: client `client`'s continuation of every prompt (formatted with the run's
/// prompt template), and the answer extracted from it.
pub fn generate(
    run: &Path,
    client: usize,
    prompts: &[String],
    sample: SampleOptions,
) -> Result<()> {
    let (config, ckpt) = crate::commands::open_checkpoint(
        run,
        client,
        fedsa_core::TaskKind::Generation,
        "fedsa predict",
    )?;
    let registry = fedsa_aggregators::PluginRegistry::discover(&config.plugins)?;
    let spec = crate::pipeline::resolve_spec(&config, &registry)?;
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
        &config.adapter,
        &config.training,
        vec![placeholder],
        Vec::new(),
        config.task.max_new_tokens,
        answer_fn(&decoder.tokenizer),
        config.seed,
        config.federation.rounds,
    )?;
    let state_file = ckpt.join(format!("client-{client}.safetensors"));
    trainer
        .load_state(&load_params(&state_file)?)
        .with_context(|| format!("restoring {}", state_file.display()))?;
    let mut options = GenerateOptions::greedy(
        sample.max_new_tokens.unwrap_or(config.task.max_new_tokens),
        vec![decoder.tokenizer.eos_id()],
    );
    options.stop_ids.extend(decoder.base.config().eos_ids());
    if sample.temperature > 0.0 {
        options.sampling = Sampling::TopP {
            temperature: sample.temperature,
            top_p: sample.top_p,
            seed: sample.seed,
        };
    }
    for prompt in prompts {
        let encoded = decoder.tokenizer.encode_prompt(prompt)?;
        let ids = trainer.generate(encoded.prompt(), Some(&options))?;
        let text = decoder.tokenizer.decode(&ids)?;
        println!("{prompt}");
        println!("  -> {}", text.trim());
        if let Some(answer) = answer_of(&text) {
            println!("  answer: {answer}");
        }
    }
    Ok(())
}
