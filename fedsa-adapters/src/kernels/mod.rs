//! The CPU `f32` kernels: plain functions over slices (no tensors, no autograd), each one pass
//! on the rayon pool where candle would take several, vectorised where the CPU allows. The
//! layers in [`crate::layers`] call them through [`route::on_host`], the one rule that decides
//! whether an op runs here or through candle's ops, and keep the candle form as the fallback
//! for every other device and dtype.
//!
//! - [`route`]: that rule, and the bridge from a host tensor to the slice a kernel reads;
//! - [`gemm`]: matrix products on strided views of slices;
//! - [`linear`]: the frozen layers' products and input gradients; [`skinny`]: those products
//!   for a few rows (decoding steps); [`init`]: what their outputs start as;
//! - [`attention`]: multi-head attention per sequence, forward and backward; [`causal`]: the
//!   decoder's (causal, grouped-query heads, rotary positions applied inside);
//! - [`elementwise`], [`softmax`], [`norm`]: exact GELU, the masked softmax and the norms'
//!   input gradients, row by row;
//! - [`gated`]: SwiGLU and its two input gradients;
//! - [`fast_math`]: the vectorisable erf, exp and GELU they use;
//! - [`par_init`]: fresh output buffers filled in parallel.

pub(crate) mod attention;
pub(crate) mod causal;
pub(crate) mod elementwise;
pub(crate) mod fast_math;
pub(crate) mod gated;
pub(crate) mod gemm;
pub(crate) mod init;
pub(crate) mod linear;
pub(crate) mod norm;
pub(crate) mod par_init;
pub(crate) mod route;
pub(crate) mod skinny;
pub(crate) mod softmax;
