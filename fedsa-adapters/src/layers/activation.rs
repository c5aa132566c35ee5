//! Exact (erf) GELU with a one-pass input gradient: candle's own backward for `gelu_erf` builds
//! six full-size temporaries and dominated the feed-forward block's backward, and its forward
//! calls the C library's scalar `erff` per element; on the host both are one vectorised pass.

use candle_core::Tensor;

use fedsa_core::Result;

use crate::backend::Context;
use crate::layers::grad::with_input_grad;
use crate::layers::host;

/// `x Φ(x)`, what `"gelu"` means in Hugging Face configs.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    let y = host::gelu_erf(&x.detach()).ctx("gelu")?;
    with_input_grad("gelu-erf", x, y, |x, _y, dy| host::gelu_erf_grad(x, dy))
}
