//! Differentiable building blocks. Frozen layers run candle's fast fused forward on a detached
//! input and attach a hand-written gradient for the input only: nothing is computed, or stored
//! in the gradient store, for frozen weights.

pub mod activation;
pub mod attention;
mod fast_math;
pub mod feed_forward;
mod gemm;
pub mod grad;
mod host;
mod host_attention;
mod host_linear;
pub mod linear;
pub mod norm;
pub(crate) mod par_init;
pub mod rms_norm;
pub mod rope;
pub mod softmax;

pub use activation::gelu_erf;
pub use attention::attention;
pub use feed_forward::frozen_feed_forward_norm;
pub use linear::{FrozenLinear, linear};
pub use norm::FrozenLayerNorm;
pub use rms_norm::{FrozenRmsNorm, rms_norm_composed};
pub use rope::RotaryTables;
pub use softmax::masked_softmax;
