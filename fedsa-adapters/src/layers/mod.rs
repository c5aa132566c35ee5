//! Differentiable building blocks. Frozen layers run candle's fast fused forward on a detached
//! input and attach a hand-written gradient for the input only: nothing is computed, or stored
//! in the gradient store, for frozen weights.
//!
//! Where a layer has a host kernel (the crate's private `kernels` folder), the routing rule
//! `kernels::route::on_host` decides whether it runs; the candle form in the layer's file is
//! the fallback (other devices and dtypes), and the reference the kernel is tested against.

pub mod activation;
pub mod attention;
pub mod causal_attention;
pub mod feed_forward;
pub mod grad;
pub mod linear;
pub mod norm;
pub(crate) mod precomputed;
pub mod rms_norm;
pub mod rope;
pub mod softmax;
pub mod swiglu;
#[cfg(test)]
mod tests;

pub use activation::gelu_erf;
pub use attention::attention;
pub use causal_attention::{Heads, causal_attention};
pub use feed_forward::frozen_feed_forward_norm;
pub use linear::{FrozenLinear, linear};
pub use norm::FrozenLayerNorm;
pub use rms_norm::{FrozenRmsNorm, rms_norm_composed};
pub use rope::{RotaryTables, RowPositions};
pub use softmax::masked_softmax;
pub use swiglu::swiglu;
