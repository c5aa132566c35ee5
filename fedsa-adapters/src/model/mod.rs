//! The encoder models: a frozen base (BERT or RoBERTa) shared by all clients, the trainable
//! classification head, and a client's full model (base + adapters + head).

mod base;
mod bert;
mod client;
mod head;
mod params;
mod roberta;
pub(crate) mod weights;

pub use base::{AdaptFn, AdaptedFn, BaseModel, EncoderInput, Module, ModuleInfo};
pub use client::ClientModel;
pub use head::head_layout;
pub use params::ParamStore;
