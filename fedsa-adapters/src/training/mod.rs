//! What every trainer shares, whatever its model: the local loop (batch draws, one optimizer
//! update, exact save/restore), the optimizers, the learning-rate schedule, a client's
//! trainable tensors ([`ParamStore`]), the metrics, and the seeded initial values and dropout
//! masks. The trainers themselves live with their models ([`crate::encoder::LocalTrainer`],
//! [`crate::decoder::GenerationTrainer`]).

pub(crate) mod local;
pub(crate) mod metrics;
pub(crate) mod optim;
mod params;
pub(crate) mod schedule;
pub(crate) mod seeded;

pub use params::{ParamStore, Track};
