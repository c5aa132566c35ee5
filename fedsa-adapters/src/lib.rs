//! fedsa-adapters: the ML side of fedsa, on candle.
//!
//! - [`BaseModel`]: a frozen BERT or RoBERTa encoder read from a Hugging Face folder, loaded
//!   once per process and shared (`Arc`) by every simulated client;
//! - [`AdapterSpec`]: adapters (LoRA, rsLoRA, VeRA, and any plugin's) as data: parameters, a
//!   scale and a small program of ops that the host runs in its one candle;
//! - [`LocalTrainer`]: one client's adapter and head state, its optimizer and its data,
//!   implementing [`fedsa_core::ClientTrainer`];
//! - [`decoder`]: a LLaMA-architecture causal language model (Hugging Face folder or GGUF)
//!   with the same adapters, KV-cached generation, and the [`GenerationTrainer`].
//!
//! Every op on a training path has a backward: candle's fused LayerNorm and
//! `softmax_last_dim` silently drop gradients, so frozen layers here pair a fast detached forward
//! with a hand-written input gradient (see [`layers::grad`]).

pub mod adapter;
mod backend;
mod config;
pub mod decoder;
mod device;
mod host_alloc;
mod host_threads;
mod kernels;
pub mod layers;
mod local;
mod metrics;
pub mod model;
mod optim;
mod schedule;
mod seeded;
mod trainer;

pub use adapter::{AdapterSpec, builtin_kinds};
pub use config::{EncoderConfig, Family};
pub use decoder::{
    AnswerFn, DecoderClient, DecoderModel, GenerateOptions, GenerationTrainer, GgufVocab,
    LlamaConfig, Sampling,
};
pub use device::device;
pub use metrics::{accuracy, macro_f1};
pub use model::{BaseModel, Module};
pub use optim::Optimizer;
pub use schedule::lr_factor;
pub use trainer::LocalTrainer;

/// Tunes the process for training on the host: the C allocator keeps freed activation memory
/// (`host_alloc`) and candle's idle elementwise workers park instead of spinning against the
/// matrix products (`host_threads`). Call first thing in `main`, before other threads start;
/// the `fedsa` binary and the benchmarks do.
pub fn tune_host_runtime() {
    host_alloc::tune_host_allocator();
    host_threads::park_idle_workers();
}
