//! A `tokenizers::Tokenizer` built from the vocabulary a GGUF file stores
//! (`tokenizer.ggml.*`), for models shipped as GGUF without a `tokenizer.json` (SmolLM2).
//! Only byte-level BPE (`tokenizer.ggml.model = "gpt2"`) is supported: the tokens and merges
//! become a BPE model behind a ByteLevel pre-tokenizer (no prefix space) and decoder, exactly
//! what the model's own `tokenizer.json` would describe. The pre-tokenizer flavour
//! (`tokenizer.ggml.pre`) matters: SmolLM2's `smollm` splits every digit apart first, which
//! changes how numbers, and so arithmetic, are tokenised.

use std::path::Path;

use fedsa_core::{Error, GgufVocab, Result};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

/// llama.cpp's token types (`tokenizer.ggml.token_type`) that matter here.
const TOKEN_CONTROL: i32 = 3;
const TOKEN_USER_DEFINED: i32 = 4;

/// Pre-tokenizer flavours that llama.cpp runs as "each digit apart, then GPT-2's split".
const DIGIT_SPLITTING: [&str; 7] = [
    "smollm",
    "starcoder",
    "refact",
    "codeshell",
    "command-r",
    "exaone",
    "minerva",
];

/// Builds the tokenizer `vocab` describes; `source` (the GGUF file) names it in errors.
pub fn gguf_tokenizer(vocab: &GgufVocab, source: &Path) -> Result<Tokenizer> {
    let bad = |message: String| Error::model(source, message);
    match vocab.model.as_str() {
        "gpt2" => {}
        "llama" => {
            return Err(bad(
                "the vocabulary is a SentencePiece one (tokenizer.ggml.model = \"llama\"), which \
                 is not supported: only byte-level BPE (\"gpt2\") vocabularies can be built from \
                 GGUF data; use the model's tokenizer.json instead"
                    .to_string(),
            ));
        }
        other => {
            return Err(bad(format!(
                "unsupported vocabulary kind tokenizer.ggml.model = {other:?}: only byte-level \
                 BPE (\"gpt2\") is supported"
            )));
        }
    }
    let digits_apart = match vocab.pre.as_deref() {
        None | Some("gpt-2" | "gpt2") => false,
        Some(p) if DIGIT_SPLITTING.contains(&p) => true,
        Some(other) => {
            return Err(bad(format!(
                "unsupported pre-tokenizer tokenizer.ggml.pre = {other:?}: supported are gpt-2 \
                 and {}",
                DIGIT_SPLITTING.join(", ")
            )));
        }
    };
    if vocab.tokens.is_empty() {
        return Err(bad("the vocabulary has no tokens".to_string()));
    }
    if !vocab.token_types.is_empty() && vocab.token_types.len() != vocab.tokens.len() {
        return Err(bad(format!(
            "{} token types for {} tokens: tokenizer.ggml.token_type must give one per token",
            vocab.token_types.len(),
            vocab.tokens.len()
        )));
    }
    for (what, id) in [
        ("bos", vocab.bos_id),
        ("eos", vocab.eos_id),
        ("padding", vocab.pad_id),
    ] {
        if let Some(id) = id.filter(|&id| id as usize >= vocab.tokens.len()) {
            return Err(bad(format!(
                "tokenizer.ggml.{what}_token_id {id} is outside the vocabulary of {} tokens",
                vocab.tokens.len()
            )));
        }
    }
    // A token listed twice keeps its first id: collecting in reverse lets the earliest insert
    // win.
    let ids: Vocab = vocab
        .tokens
        .iter()
        .enumerate()
        .rev()
        .map(|(id, token)| (token.clone(), id as u32))
        .collect();
    let merges = vocab
        .merges
        .iter()
        .enumerate()
        .map(|(i, m)| match m.split_once(' ') {
            Some((l, r)) if !l.is_empty() && !r.is_empty() && !r.contains(' ') => {
                Ok((l.to_string(), r.to_string()))
            }
            _ => Err(bad(format!(
                "merge {i} is {m:?}: expected two tokens separated by one space"
            ))),
        })
        .collect::<Result<Vec<_>>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(ids, merges)
        .build()
        .map_err(|e| bad(format!("cannot build the BPE model: {e}")))?;
    let mut tokenizer = Tokenizer::new(bpe);
    let byte_level = ByteLevel::default().add_prefix_space(false);
    let pre: PreTokenizerWrapper = if digits_apart {
        Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into()
    } else {
        byte_level.into()
    };
    tokenizer.with_pre_tokenizer(Some(pre));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    // Control tokens (and BOS/EOS, whatever their type) are matched whole and skipped when
    // decoding; user-defined ones are matched whole but are ordinary text.
    let kind = |id: usize| vocab.token_types.get(id).copied();
    let specials = vocab.tokens.iter().enumerate().filter(|&(id, _)| {
        kind(id) == Some(TOKEN_CONTROL) || [vocab.bos_id, vocab.eos_id].contains(&Some(id as u32))
    });
    let specials: Vec<AddedToken> = specials
        .map(|(_, t)| AddedToken::from(t.clone(), true))
        .collect();
    let user: Vec<AddedToken> = vocab
        .tokens
        .iter()
        .enumerate()
        .filter(|&(id, _)| kind(id) == Some(TOKEN_USER_DEFINED))
        .map(|(_, t)| AddedToken::from(t.clone(), false))
        .collect();
    tokenizer
        .add_special_tokens(specials)
        .map_err(|e| bad(format!("cannot add the control tokens: {e}")))?;
    tokenizer
        .add_tokens(user)
        .map_err(|e| bad(format!("cannot add the user-defined tokens: {e}")))?;
    Ok(tokenizer)
}
