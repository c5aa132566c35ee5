//! LLaMA's gated feed-forward activation, `silu(gate) ⊙ up`, as one node of the autograd graph
//! with both inputs' gradients: one pass each on the host (`kernels::gated`), candle's ops
//! elsewhere (the reference the kernels are tested against).

use candle_core::Tensor;

use fedsa_core::Result;

use crate::backend::Context;
use crate::kernels::gated;
use crate::kernels::route::{Grads, on_host, with_values};
use crate::layers::grad::with_pair_grad;

/// `silu(gate) ⊙ up` for two tensors of one shape; both receive gradients where tracked.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if gate.dims() != up.dims() {
        return Err(fedsa_core::Error::backend(
            "swiglu",
            format!("gate {:?} and up {:?} differ", gate.dims(), up.dims()),
        ));
    }
    let (g, u) = (gate.detach(), up.detach());
    let y = swiglu_value(&g, &u).ctx("swiglu")?;
    with_pair_grad("swiglu", gate, up, y, move |dy, [for_gate, for_up]| {
        let dg = for_gate.then(|| swiglu_gate_grad(&g, &u, dy)).transpose()?;
        let du = for_up.then(|| swiglu_up_grad(&g, dy)).transpose()?;
        Ok((dg, du))
    })
}

/// `silu(gate) ⊙ up`, no gradient.
pub(crate) fn swiglu_value(gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
    if !on_host([gate, up], Grads::Attached) {
        return gate.silu()? * up;
    }
    let out = with_values(gate, |g| with_values(up, |u| Ok(gated::swiglu(g, u))))?;
    Tensor::from_vec(out, gate.dims(), gate.device())
}

/// `dy ⊙ up ⊙ silu'(gate)`, `silu'(g) = σ(g) (1 + g (1 - σ(g)))`.
pub(crate) fn swiglu_gate_grad(
    gate: &Tensor,
    up: &Tensor,
    dy: &Tensor,
) -> candle_core::Result<Tensor> {
    if !on_host([gate, up, dy], Grads::Attached) {
        let s = candle_nn::ops::sigmoid(gate)?;
        let ds = ((gate * (1.0 - &s)?)? + 1.0)?;
        return dy * up * s * ds;
    }
    let out = with_values(gate, |g| {
        with_values(up, |u| {
            with_values(dy, |d| Ok(gated::swiglu_gate_grad(g, u, d)))
        })
    })?;
    Tensor::from_vec(out, gate.dims(), gate.device())
}

/// `dy ⊙ silu(gate)`.
pub(crate) fn swiglu_up_grad(gate: &Tensor, dy: &Tensor) -> candle_core::Result<Tensor> {
    if !on_host([gate, dy], Grads::Attached) {
        return dy * gate.silu()?;
    }
    let out = with_values(gate, |g| {
        with_values(dy, |d| Ok(gated::swiglu_up_grad(g, d)))
    })?;
    Tensor::from_vec(out, gate.dims(), gate.device())
}
