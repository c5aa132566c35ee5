//! A LLaMA-architecture causal language model with adapters: its config, the frozen base
//! shared by every client ([`DecoderModel`], from a Hugging Face folder or a GGUF file), KV-cached
//! generation (one prompt, or a left-padded batch of them), a client's adapted model
//! ([`DecoderClient`]) and the [`GenerationTrainer`].

mod client;
mod config;
mod forward;
mod generate;
mod generate_batch;
mod gguf;
mod gguf_scan;
mod load;
mod merge;
mod model;
mod names;
mod sampling;
mod trainer;

pub use client::{DecoderClient, TokenStats};
pub use config::{EosTokens, LlamaConfig};
pub use fedsa_core::GgufVocab;
pub use forward::{DecoderInput, KvCache};
pub use generate::GenerateOptions;
pub use gguf::read_gguf_vocab;
pub use model::DecoderModel;
pub use sampling::{Sampling, argmax, sample_top_p};
pub use trainer::{AnswerFn, GenerationTrainer};

/// The modules a decoder adapter targets unless told otherwise (as PEFT's LLaMA default).
pub const DEFAULT_TARGET_MODULES: [&str; 2] = ["q_proj", "v_proj"];
