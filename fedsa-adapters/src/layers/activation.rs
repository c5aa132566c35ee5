//! Exact (erf) GELU with a one-pass input gradient: candle's own backward for `gelu_erf` builds
//! six full-size temporaries and dominated the feed-forward block's backward, and its forward
//! calls the C library's scalar `erff` per element; on the host both are one vectorised pass
//! (`kernels::elementwise`), and the candle forms here are the fallback.

use candle_core::Tensor;

use fedsa_core::Result;

use crate::backend::Context;
use crate::kernels;
use crate::kernels::route::{Grads, on_host, pair_kernel, with_values};
use crate::layers::grad::with_input_grad;

/// `x Φ(x)`, what `"gelu"` means in Hugging Face configs.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    let y = gelu_erf_value(&x.detach()).ctx("gelu")?;
    with_input_grad("gelu-erf", x, y, |x, _y, dy| gelu_erf_grad(x, dy))
}

/// Exact (erf) GELU of `x` (no gradient): one vectorised pass on the host, candle's elsewhere.
pub(crate) fn gelu_erf_value(x: &Tensor) -> candle_core::Result<Tensor> {
    if !on_host([x], Grads::Attached) {
        return x.gelu_erf();
    }
    let out = with_values(x, |xs| Ok(kernels::elementwise::gelu(xs)))?;
    Tensor::from_vec(out, x.dims(), x.device())
}

/// `dy ⊙ gelu'(x)` with `gelu'(x) = Φ(x) + x φ(x)` (exact, erf-based GELU).
pub(crate) fn gelu_erf_grad(x: &Tensor, dy: &Tensor) -> candle_core::Result<Tensor> {
    if !on_host([x, dy], Grads::Attached) {
        let pdf = (x.sqr()? * -0.5)?.exp()?
            * (0.5 * std::f64::consts::FRAC_2_SQRT_PI / std::f64::consts::SQRT_2);
        let cdf = (((x / std::f64::consts::SQRT_2)?.erf()? + 1.0)? * 0.5)?;
        return dy * (cdf + (pdf? * x)?)?;
    }
    pair_kernel(x, dy, kernels::elementwise::gelu_grad)
}
