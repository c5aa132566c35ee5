//! Exact (erf) GELU with a one-pass input gradient: candle's own backward for `gelu_erf` builds
//! six full-size temporaries and dominated the feed-forward block's backward.

use candle_core::Tensor;

use fedsa_core::Result;

use crate::backend::Context;
use crate::layers::grad::with_input_grad;
use crate::layers::host::gelu_erf_grad;

/// `x Φ(x)`, what `"gelu"` means in Hugging Face configs.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    let y = x.detach().gelu_erf().ctx("gelu")?;
    with_input_grad("gelu-erf", x, y, gelu_erf_grad)
}
