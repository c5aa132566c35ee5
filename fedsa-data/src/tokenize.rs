//! Tokenisation with the model's own `tokenizer.json` (the `tokenizers` crate, built without C
//! code). Whatever padding and truncation the file bakes in (the bundled MiniLM pads and cuts at
//! 128) are replaced: no padding here, since batches are padded dynamically to their own longest
//! example, and truncation at the configured `max_length`, longest-first for text pairs.

use std::path::{Path, PathBuf};

use fedsa_core::{EncodedExample, Error, Result};
use tokenizers::{
    PostProcessor, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::Example;

/// A tokenizer that turns examples into unpadded token ids.
pub struct TextTokenizer {
    tokenizer: Tokenizer,
    pad_id: u32,
    max_length: usize,
    path: PathBuf,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("path", &self.path)
            .field("max_length", &self.max_length)
            .field("pad_id", &self.pad_id)
            .finish_non_exhaustive()
    }
}

impl TextTokenizer {
    /// Loads `tokenizer.json`, truncating every encoding to `max_length` tokens (special tokens
    /// included).
    pub fn from_file(path: &Path, max_length: usize) -> Result<TextTokenizer> {
        if !path.is_file() {
            return Err(Error::model(
                path,
                "no tokenizer file here (run scripts/fetch-assets for the bundled model)",
            ));
        }
        let mut tokenizer = Tokenizer::from_file(path)
            .map_err(|e| Error::model(path, format!("cannot read the tokenizer: {e}")))?;
        let specials = tokenizer
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        if max_length <= specials {
            return Err(Error::model(
                path,
                format!(
                    "max_length {max_length} leaves no room for text beside the {specials} special tokens (model.max_length)"
                ),
            ));
        }
        // The pad id the file was configured with, else the vocabulary's padding token.
        let pad_id = tokenizer
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| {
                ["[PAD]", "<pad>"]
                    .iter()
                    .find_map(|t| tokenizer.token_to_id(t))
            })
            .unwrap_or(0);
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| Error::model(path, format!("cannot set truncation: {e}")))?;
        Ok(TextTokenizer {
            tokenizer,
            pad_id,
            max_length,
            path: path.to_path_buf(),
        })
    }

    /// The number of token ids this tokenizer can produce (added tokens included).
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// The id that pads a batch ([`fedsa_core::Batch::pad`]).
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Encodes one labelled example.
    pub fn encode(&self, example: &Example) -> Result<EncodedExample> {
        let mut e = self.encode_text(&example.text, example.text_pair.as_deref())?;
        e.label = example.label;
        Ok(e)
    }

    /// Encodes many examples, in parallel.
    pub fn encode_all(&self, examples: &[Example]) -> Result<Vec<EncodedExample>> {
        let inputs: Vec<tokenizers::EncodeInput<'_>> = examples
            .iter()
            .map(|e| match &e.text_pair {
                Some(pair) => (e.text.as_str(), pair.as_str()).into(),
                None => e.text.as_str().into(),
            })
            .collect();
        let encodings = self
            .tokenizer
            .encode_batch_fast(inputs, true)
            .map_err(|e| self.error(&e))?;
        Ok(encodings
            .iter()
            .zip(examples)
            .map(|(enc, ex)| EncodedExample {
                input_ids: enc.get_ids().to_vec(),
                type_ids: enc.get_type_ids().to_vec(),
                label: ex.label,
            })
            .collect())
    }

    /// Encodes raw text (and an optional pair), e.g. a user's sentence to classify; the label is
    /// 0 and means nothing.
    pub fn encode_text(&self, text: &str, pair: Option<&str>) -> Result<EncodedExample> {
        let encoding = match pair {
            Some(pair) => self.tokenizer.encode_fast((text, pair), true),
            None => self.tokenizer.encode_fast(text, true),
        }
        .map_err(|e| self.error(&e))?;
        Ok(EncodedExample {
            input_ids: encoding.get_ids().to_vec(),
            type_ids: encoding.get_type_ids().to_vec(),
            label: 0,
        })
    }

    fn error(&self, e: &tokenizers::Error) -> Error {
        Error::model(&self.path, format!("tokenising failed: {e}"))
    }
}
