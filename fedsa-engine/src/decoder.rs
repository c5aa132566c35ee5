//! The generation side of a run: a causal language model (a Hugging Face folder or a GGUF
//! file), its tokenizer, and one [`GenerationTrainer`] per client.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use candle_core::Device;
use fedsa_adapters::AdapterSpec;
use fedsa_adapters::decoder::{DecoderModel, GenerationTrainer};
use fedsa_core::{ClientTrainer, Config, EncodedSequence, Error};
use fedsa_data::{CausalOptions, CausalTokenizer, ClientSplit, Dataset, answer_of};

use crate::limits::{check_positions, check_vocabulary};

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
            return Err(Error::run_config(
                "model.path",
                format!(
                    "{} does not exist (run scripts/fetch-assets generation for the bundled SmolLM2)",
                    path.display()
                ),
            )
            .into());
        }
        let base = DecoderModel::load_gguf(path, device)?;
        let vocab = fedsa_adapters::decoder::read_gguf_vocab(path)?;
        let tokenizer = CausalTokenizer::from_gguf_vocab(&vocab, path, &options)?;
        check_decoder_limits(config, &base, &tokenizer, path)?;
        return Ok(Decoder {
            base,
            tokenizer: Arc::new(tokenizer),
        });
    }
    if !path.join("config.json").is_file() {
        return Err(Error::run_config(
            "model.path",
            format!(
                "{} is neither a .gguf file nor a model folder with config.json",
                path.display()
            ),
        )
        .into());
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
    check_decoder_limits(config, &base, &tokenizer, &path.join("config.json"))?;
    Ok(Decoder {
        base,
        tokenizer: Arc::new(tokenizer),
    })
}

/// Decodes generated ids and extracts the final answer, for exact match.
pub(crate) fn answer_fn(tokenizer: &Arc<CausalTokenizer>) -> fedsa_adapters::decoder::AnswerFn {
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
) -> Result<Vec<Box<dyn ClientTrainer>>> {
    splits
        .iter()
        .enumerate()
        .map(|(k, split)| trainer(config, spec, decoder, dataset, k, split))
        .collect()
}

/// Client `k`'s generation trainer on its split.
pub fn trainer(
    config: &Config,
    spec: &AdapterSpec,
    decoder: &Decoder,
    dataset: &Dataset,
    k: usize,
    split: &ClientSplit,
) -> Result<Box<dyn ClientTrainer>> {
    let encode = |idx: &[usize]| -> Result<Vec<EncodedSequence>> {
        idx.iter()
            .map(|&i| Ok(decoder.tokenizer.encode(&dataset.examples[i])?))
            .collect()
    };
    Ok(Box::new(GenerationTrainer::new(
        k,
        Arc::clone(&decoder.base),
        spec,
        &config.client_adapter(k),
        &config.client_training(k),
        encode(&split.train)?,
        encode(&split.test)?,
        config.task.max_new_tokens,
        answer_fn(&decoder.tokenizer),
        config.seed,
        config.federation.rounds,
    )?))
}

/// The decoder's positions and embeddings against the config and the tokenizer (see
/// [`crate::prepare`]'s encoder check); `file` names where the model's numbers come from.
fn check_decoder_limits(
    config: &Config,
    base: &DecoderModel,
    tokenizer: &CausalTokenizer,
    file: &Path,
) -> Result<()> {
    let model = base.config();
    check_positions(config.model.max_length, model.max_position_embeddings, file)?;
    check_vocabulary(
        tokenizer.tokenizer().get_vocab_size(true),
        model.vocab_size,
        file,
    )
}
