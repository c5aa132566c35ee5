//! Tokenisation for causal language models: a prompt/response example becomes one
//! [`EncodedSequence`], the prompt formatted by a [`PromptTemplate`], then the response and the
//! end-of-sequence token. The prompt and the response are tokenised separately, so the prompt's
//! tokens are exactly those generation later starts from. No padding: batches are padded
//! dynamically by [`fedsa_core::SequenceBatch::pad`].
//!
//! Truncation to `max_length` tokens ([`fit`]): when prompt and response do not fit together,
//! the response keeps its first tokens, up to what the prompt leaves but never less than half
//! the window (if it has that many), and the prompt keeps its *last* tokens (after its BOS, if
//! any), because the end of the prompt (`...\nAnswer:`) is what the response follows. A cut
//! response loses its end-of-sequence token: the model is not taught to stop mid-answer. The
//! example's reference answer is always taken from the whole response.

use std::path::{Path, PathBuf};

use fedsa_core::{EncodedSequence, Error, Result};
use tokenizers::Tokenizer;

use crate::Example;
use crate::answer::answer_of;
use crate::gguf_vocab::gguf_tokenizer;
use fedsa_core::GgufVocab;

/// The placeholder of the prompt in [`PromptTemplate::prompt`].
pub const PROMPT_PLACEHOLDER: &str = "{prompt}";

/// End-of-sequence tokens looked for in a `tokenizer.json` when none is named.
const EOS_CANDIDATES: [&str; 4] = ["<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>"];

/// How a prompt and its response are laid out as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptTemplate {
    /// The prompt's text, with [`PROMPT_PLACEHOLDER`] once where the example's prompt goes.
    pub prompt: String,
    /// Written before the response (a space after `Answer:`).
    pub response_prefix: String,
}

impl Default for PromptTemplate {
    fn default() -> Self {
        Self {
            prompt: "Question: {prompt}\nAnswer:".to_string(),
            response_prefix: " ".to_string(),
        }
    }
}

impl PromptTemplate {
    /// The example's prompt as the model reads it.
    pub fn format_prompt(&self, prompt: &str) -> String {
        self.prompt.replacen(PROMPT_PLACEHOLDER, prompt, 1)
    }

    /// The example's response as the model writes it.
    pub fn format_response(&self, response: &str) -> String {
        format!("{}{response}", self.response_prefix)
    }
}

/// How a [`CausalTokenizer`] lays out and cuts sequences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CausalOptions {
    /// Tokens per sequence after truncation, BOS and EOS included.
    pub max_length: usize,
    pub template: PromptTemplate,
    /// The end-of-sequence token, overriding the vocabulary's (e.g. `<|im_end|>`).
    pub eos_token: Option<String>,
    /// For a `tokenizer.json`: a token to start every sequence with (its post-processor is not
    /// used, since prompt and response are laid out here). GGUF vocabularies say themselves.
    pub bos_token: Option<String>,
}

impl CausalOptions {
    pub fn new(max_length: usize) -> Self {
        Self {
            max_length,
            template: PromptTemplate::default(),
            eos_token: None,
            bos_token: None,
        }
    }
}

/// A tokenizer that turns prompt/response examples into unpadded [`EncodedSequence`]s.
pub struct CausalTokenizer {
    tokenizer: Tokenizer,
    bos_id: Option<u32>,
    eos_id: u32,
    pad_id: u32,
    max_length: usize,
    template: PromptTemplate,
    source: PathBuf,
}

impl std::fmt::Debug for CausalTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CausalTokenizer")
            .field("source", &self.source)
            .field("max_length", &self.max_length)
            .field("bos_id", &self.bos_id)
            .field("eos_id", &self.eos_id)
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

impl CausalTokenizer {
    /// Loads a `tokenizer.json`. The end-of-sequence token is `options.eos_token`, else the
    /// first of `<|endoftext|>`, `</s>`, `<|end_of_text|>`, `<eos>` in the vocabulary.
    pub fn from_file(path: &Path, options: &CausalOptions) -> Result<CausalTokenizer> {
        if !path.is_file() {
            return Err(Error::model(path, "no tokenizer file here"));
        }
        let mut tokenizer = Tokenizer::from_file(path)
            .map_err(|e| Error::model(path, format!("cannot read the tokenizer: {e}")))?;
        let pad_id = tokenizer.get_padding().map(|p| p.pad_id);
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| Error::model(path, format!("cannot turn off truncation: {e}")))?;
        let lookup = |token: &str, what: &str| {
            tokenizer.token_to_id(token).ok_or_else(|| {
                Error::model(
                    path,
                    format!("the {what} token {token:?} is not in the vocabulary"),
                )
            })
        };
        let eos_id = match &options.eos_token {
            Some(t) => lookup(t, "end-of-sequence")?,
            None => EOS_CANDIDATES
                .iter()
                .find_map(|t| tokenizer.token_to_id(t))
                .ok_or_else(|| {
                    Error::model(
                        path,
                        format!(
                            "no end-of-sequence token among {EOS_CANDIDATES:?}: name one (eos_token)"
                        ),
                    )
                })?,
        };
        let bos_id = options
            .bos_token
            .as_deref()
            .map(|t| lookup(t, "beginning-of-sequence"))
            .transpose()?;
        Self::new(tokenizer, bos_id, eos_id, pad_id, options, path)
    }

    /// Builds the tokenizer from a GGUF file's vocabulary (see [`GgufVocab`]); `source` is the
    /// GGUF file, for errors. `options.eos_token` overrides the vocabulary's EOS.
    pub fn from_gguf_vocab(
        vocab: &GgufVocab,
        source: &Path,
        options: &CausalOptions,
    ) -> Result<CausalTokenizer> {
        let tokenizer = gguf_tokenizer(vocab, source)?;
        let eos_id = match &options.eos_token {
            Some(t) => tokenizer.token_to_id(t).ok_or_else(|| {
                Error::model(
                    source,
                    format!("the end-of-sequence token {t:?} is not in the vocabulary"),
                )
            })?,
            None => vocab.eos_id.ok_or_else(|| {
                Error::model(
                    source,
                    "the vocabulary names no end-of-sequence token (tokenizer.ggml.eos_token_id)",
                )
            })?,
        };
        let bos_id = if vocab.add_bos {
            Some(vocab.bos_id.ok_or_else(|| {
                Error::model(
                    source,
                    "tokenizer.ggml.add_bos_token is set but there is no tokenizer.ggml.bos_token_id",
                )
            })?)
        } else {
            None
        };
        Self::new(tokenizer, bos_id, eos_id, vocab.pad_id, options, source)
    }

    fn new(
        tokenizer: Tokenizer,
        bos_id: Option<u32>,
        eos_id: u32,
        pad_id: Option<u32>,
        options: &CausalOptions,
        source: &Path,
    ) -> Result<CausalTokenizer> {
        let placeholders = options.template.prompt.matches(PROMPT_PLACEHOLDER).count();
        if placeholders != 1 {
            // The template is an option of this API, not a key of the run config.
            return Err(Error::config(
                "tokenizer options",
                "template.prompt",
                format!(
                    "must contain {PROMPT_PLACEHOLDER} exactly once, found it {placeholders} times in {:?}",
                    options.template.prompt
                ),
            ));
        }
        // Room for one prompt token (BOS included) and one response token.
        if options.max_length < 2 + usize::from(bos_id.is_some()) {
            return Err(Error::run_config(
                "model.max_length",
                format!(
                    "{} leaves no room for a prompt and a response token",
                    options.max_length
                ),
            ));
        }
        Ok(CausalTokenizer {
            tokenizer,
            bos_id,
            eos_id,
            pad_id: pad_id.unwrap_or(eos_id),
            max_length: options.max_length,
            template: options.template.clone(),
            source: source.to_path_buf(),
        })
    }

    /// The id that pads a batch ([`fedsa_core::SequenceBatch::pad`]); masked out, so any id
    /// would do: the vocabulary's padding token, else EOS.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The id that ends every (uncut) response, and stops generation.
    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    /// The id every sequence starts with, if the vocabulary asks for one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    pub fn template(&self) -> &PromptTemplate {
        &self.template
    }

    /// The underlying tokenizer, e.g. to look up a token's id.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Encodes one prompt/response example (`text`, `text_pair`); its reference is the final
    /// answer of the response ([`answer_of`]).
    pub fn encode(&self, example: &Example) -> Result<EncodedSequence> {
        let response = self.response_of(example)?;
        let prompt = self.prompt_ids(&example.text)?;
        let response_ids = self.response_ids(response)?;
        Ok(self.join(prompt, response_ids, answer_of(response)))
    }

    /// Encodes many examples; tokenising runs batched.
    pub fn encode_all(&self, examples: &[Example]) -> Result<Vec<EncodedSequence>> {
        let responses = examples
            .iter()
            .map(|e| self.response_of(e))
            .collect::<Result<Vec<_>>>()?;
        let prompts: Vec<String> = examples
            .iter()
            .map(|e| self.template.format_prompt(&e.text))
            .collect();
        let formatted: Vec<String> = responses
            .iter()
            .map(|r| self.template.format_response(r))
            .collect();
        let prompt_ids = self.ids_batch(prompts)?;
        let response_ids = self.ids_batch(formatted)?;
        Ok(prompt_ids
            .into_iter()
            .zip(response_ids)
            .zip(responses)
            .map(|((p, mut r), response)| {
                r.push(self.eos_id);
                self.join(self.with_bos(p), r, answer_of(response))
            })
            .collect())
    }

    /// A prompt alone, e.g. a user's question to answer: BOS (if any) and the formatted prompt,
    /// cut to its last `max_length` tokens (BOS kept). No reference.
    pub fn encode_prompt(&self, prompt: &str) -> Result<EncodedSequence> {
        let mut ids = self.prompt_ids(prompt)?;
        let (keep, _) = fit(ids.len(), 0, self.max_length);
        cut_prompt(&mut ids, keep, self.bos_id.is_some());
        Ok(EncodedSequence {
            prompt_len: ids.len(),
            input_ids: ids,
            reference: None,
        })
    }

    /// The text of `ids`, special tokens (BOS, EOS, padding) left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| Error::model(&self.source, format!("decoding failed: {e}")))
    }

    fn response_of<'e>(&self, example: &'e Example) -> Result<&'e str> {
        example.text_pair.as_deref().ok_or_else(|| {
            Error::model(
                &self.source,
                "an example without a response (text_pair) cannot be encoded for a causal \
                 language model; use encode_prompt for a prompt alone",
            )
        })
    }

    fn prompt_ids(&self, prompt: &str) -> Result<Vec<u32>> {
        let ids = self.ids(&self.template.format_prompt(prompt))?;
        Ok(self.with_bos(ids))
    }

    fn response_ids(&self, response: &str) -> Result<Vec<u32>> {
        let mut ids = self.ids(&self.template.format_response(response))?;
        ids.push(self.eos_id);
        Ok(ids)
    }

    fn with_bos(&self, ids: Vec<u32>) -> Vec<u32> {
        match self.bos_id {
            Some(bos) => std::iter::once(bos).chain(ids).collect(),
            None => ids,
        }
    }

    /// Token ids of `text` alone: special tokens are never added here (BOS and EOS are placed
    /// by this type, not by the file's post-processor).
    fn ids(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| self.error(&e))?;
        Ok(encoding.get_ids().to_vec())
    }

    fn ids_batch(&self, texts: Vec<String>) -> Result<Vec<Vec<u32>>> {
        let encodings = self
            .tokenizer
            .encode_batch_fast(texts, false)
            .map_err(|e| self.error(&e))?;
        Ok(encodings.iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// Prompt and response cut to `max_length` by [`fit`], joined.
    fn join(
        &self,
        mut prompt: Vec<u32>,
        mut response: Vec<u32>,
        reference: Option<String>,
    ) -> EncodedSequence {
        let (p, r) = fit(prompt.len(), response.len(), self.max_length);
        cut_prompt(&mut prompt, p, self.bos_id.is_some());
        response.truncate(r);
        let prompt_len = prompt.len();
        prompt.extend(response);
        EncodedSequence {
            input_ids: prompt,
            prompt_len,
            reference,
        }
    }

    fn error(&self, e: &tokenizers::Error) -> Error {
        Error::model(&self.source, format!("tokenising failed: {e}"))
    }
}

/// How many prompt and response tokens to keep of `prompt` + `response` tokens within
/// `max_length` (at least 2): all when they fit; otherwise the response gets up to
/// `max(max_length - prompt, max_length / 2)` tokens and the prompt the rest, so a long prompt
/// cannot squeeze out the response and a long response cannot squeeze out the prompt.
pub fn fit(prompt: usize, response: usize, max_length: usize) -> (usize, usize) {
    if prompt + response <= max_length {
        return (prompt, response);
    }
    let room = max_length.saturating_sub(prompt).max(max_length / 2);
    let r = response.min(room);
    (prompt.min(max_length - r), r)
}

/// Keeps the last `keep` tokens of `prompt`, keeping its first token too when it is a BOS.
fn cut_prompt(prompt: &mut Vec<u32>, keep: usize, has_bos: bool) {
    let n = prompt.len();
    if keep >= n {
        return;
    }
    let drop_from = usize::from(has_bos && keep > 0);
    prompt.drain(drop_from..drop_from + (n - keep));
}
