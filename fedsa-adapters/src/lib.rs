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
//!
//! Where things are:
//!
//! | folder / file | what it holds |
//! |---|---|
//! | `adapter/` | adapter specs (format, validation, shapes), their compiled plans, the set of adapted layers |
//! | `encoder/` | BERT and RoBERTa: config, frozen base, head, a client's model, [`LocalTrainer`] |
//! | `decoder/` | LLaMA: config, frozen base (Hugging Face or GGUF), generation, [`GenerationTrainer`] |
//! | `layers/` | differentiable building blocks, with the candle forms of every host kernel |
//! | `kernels/` | the CPU `f32` kernels on slices, and the one rule that routes ops to them |
//! | `training/` | what both trainers share: local loop, optimizers, schedule, parameters, metrics, seeded values |
//! | `weights.rs` | reading safetensors weights, for both models |
//! | `peft.rs` | PEFT's names and `adapter_config.json` for an encoder client's adapter |
//! | `device.rs`, `backend.rs`, `host_*.rs` | the device name, candle error context, [`tune_host_runtime`] |

pub mod adapter;
mod backend;
pub mod decoder;
mod device;
pub mod encoder;
mod host_alloc;
mod host_threads;
mod kernels;
pub mod layers;
pub mod peft;
mod training;
mod weights;

/// The encoder's former path: `fedsa_adapters::model::ClientModel` and the rest still resolve.
pub use encoder as model;

pub use adapter::{AdapterSpec, BUILTIN_KINDS, BaseDeltas, PlanKind, builtin_kinds};
pub use decoder::{
    AnswerFn, DecoderClient, DecoderModel, GenerateOptions, GenerationTrainer, GgufVocab,
    LlamaConfig, Sampling, read_gguf_vocab,
};
pub use device::device;
pub use encoder::{BaseModel, EncoderConfig, Family, LocalTrainer, Module};
pub use training::metrics::{accuracy, macro_f1};
pub use training::optim::Optimizer;
pub use training::schedule::lr_factor;

/// Tunes the process for training on the host: the C allocator keeps freed activation memory
/// (`host_alloc`) and candle's idle elementwise workers park instead of spinning against the
/// matrix products (`host_threads`). Call first thing in `main`, before other threads start;
/// the `fedsa` binary and the benchmarks do.
pub fn tune_host_runtime() {
    host_alloc::tune_host_allocator();
    host_threads::park_idle_workers();
}
