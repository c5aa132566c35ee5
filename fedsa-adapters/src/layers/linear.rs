//! Linear layers: the frozen pretrained ones (weights never tracked) and the plain product used
//! for trainable weights (head, adapter factors).

use candle_core::Tensor;

use fedsa_core::Result;

use crate::backend::Context;
use crate::layers::grad::with_input_grad;
use crate::layers::host::{host, with_values};
use crate::layers::host_linear;

/// `x · wᵀ (+ b)` for `x` of any rank `[..., in]` and `w` of shape `[out, in]`, with gradients
/// for every tracked operand.
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> candle_core::Result<Tensor> {
    let dims = x.dims().to_vec();
    if dims.is_empty() {
        candle_core::bail!("linear needs an input of rank >= 1, got a scalar");
    }
    let (out, inp) = w.dims2()?;
    let rows: usize = dims[..dims.len() - 1].iter().product();
    let mut shape = dims.clone();
    *shape.last_mut().expect("rank >= 1") = out;
    // Nothing to differentiate (frozen layers run on detached inputs): the host kernel.
    let tracked = x.track_op() || w.track_op() || b.is_some_and(Tensor::track_op);
    if !tracked && host(x) && host(w) && b.is_none_or(host) && dims.last() == Some(&inp) {
        let y = with_values(x, |xs| {
            with_values(w, |ws| match b {
                Some(b) => {
                    with_values(b, |bs| Ok(host_linear::forward(xs, ws, Some(bs), inp, out)))
                }
                None => Ok(host_linear::forward(xs, ws, None, inp, out)),
            })
        })?;
        return Tensor::from_vec(y, shape, x.device());
    }
    // A 2-D product over flattened rows avoids batched matmuls and copies of the weight.
    let x2 = if x.is_contiguous() {
        x.reshape((rows, inp))?
    } else {
        x.contiguous()?.reshape((rows, inp))?
    };
    let w = if w.is_contiguous() {
        w.clone()
    } else {
        w.contiguous()?
    };
    let mut y = x2.matmul(&w.t()?)?;
    if let Some(b) = b {
        y = y.broadcast_add(b)?;
    }
    y.reshape(shape)
}

/// A pretrained linear layer, frozen: `y = x Wᵀ + b`.
#[derive(Clone)]
pub struct FrozenLinear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl FrozenLinear {
    /// A layer from a weight `[out, in]` and an optional bias `[out]`.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }

    /// The frozen weight `W0`, `[out, in]`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// `(in, out)` features.
    pub fn dims(&self) -> (usize, usize) {
        let d = self.weight.dims();
        (d[1], d[0])
    }

    /// The output; only the input receives a gradient (`dy · W`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = linear(&x.detach(), &self.weight, self.bias.as_ref()).ctx("frozen linear")?;
        let w = self.weight.clone();
        with_input_grad("frozen-linear", x, y, move |_x, _y, dy| input_grad(dy, &w))
    }
}

/// The input gradient of `x · wᵀ`: `dy · w`, for `dy` of any rank `[..., out]`.
pub(crate) fn input_grad(dy: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let dims = dy.dims().to_vec();
    let (out, inp) = w.dims2()?;
    let rows: usize = dims[..dims.len() - 1].iter().product();
    let mut shape = dims;
    *shape.last_mut().expect("rank >= 1") = inp;
    if !(dy.track_op() || w.track_op()) && host(dy) && host(w) && dy.dims().last() == Some(&out) {
        let dx = with_values(dy, |gs| {
            with_values(w, |ws| Ok(host_linear::input_grad(gs, ws, out, inp)))
        })?;
        return Tensor::from_vec(dx, shape, dy.device());
    }
    let dy2 = dy.contiguous()?.reshape((rows, out))?;
    dy2.matmul(w)?.reshape(shape)
}
