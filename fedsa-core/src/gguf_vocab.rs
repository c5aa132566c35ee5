//! The tokenizer a GGUF file stores in its metadata (`tokenizer.ggml.*`), as plain data: read
//! from the file by fedsa-adapters (which parses GGUF), turned into a tokenizer by fedsa-data.

/// Tokenizer data as a GGUF file stores it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GgufVocab {
    /// `tokenizer.ggml.model`: only `gpt2` (byte-level BPE) is supported.
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer flavour; `None` means GPT-2's own split.
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`, in id order.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.merges`, each `"left right"`, in priority order.
    pub merges: Vec<String>,
    /// `tokenizer.ggml.token_type`, one per token, or empty when the file has none.
    pub token_types: Vec<i32>,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    pub pad_id: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`: whether every sequence starts with the BOS token.
    pub add_bos: bool,
}
