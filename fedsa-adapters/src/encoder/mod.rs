//! The encoder side: a frozen BERT or RoBERTa base shared by all clients (its Hugging Face
//! config, weights and forward), the trainable classification head, a client's full model
//! (base + adapters + head), and [`LocalTrainer`], the encoder's federated client. The decoder
//! side is its sibling, [`crate::decoder`].

mod base;
mod bert;
mod client;
pub(crate) mod config;
mod head;
mod merge;
mod roberta;
mod trainer;

pub use crate::adapter::{AdaptFn, AdaptedFn, Module, ModuleInfo};
pub use crate::training::ParamStore;
pub use base::{BaseModel, EncoderInput};
pub use client::ClientModel;
pub use config::{EncoderConfig, Family};
pub use head::head_layout;
pub use trainer::LocalTrainer;
