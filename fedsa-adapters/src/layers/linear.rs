//! Linear layers: the frozen pretrained ones (weights never tracked) and the plain product used
//! for trainable weights (head, adapter factors).

use candle_core::Tensor;

use fedsa_core::Result;

use crate::backend::Context;
use crate::layers::grad::with_input_grad;
use crate::layers::host::{host, with_values};
use crate::layers::host_linear::{self, Init};

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
    if untracked_host(&[x, w])
        && b.is_none_or(|b| untracked_host(&[b]))
        && dims.last() == Some(&inp)
    {
        let y = with_values(x, |xs| {
            with_values(w, |ws| match b {
                Some(b) => with_values(b, |bs| {
                    Ok(host_linear::forward(xs, ws, Init::Bias(bs), inp, out))
                }),
                None => Ok(host_linear::forward(xs, ws, Init::Zero, inp, out)),
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
    if untracked_host(&[dy, w]) && dy.dims().last() == Some(&out) {
        let dx = with_values(dy, |gs| {
            with_values(w, |ws| {
                Ok(host_linear::input_grad(gs, ws, Init::Zero, out, inp))
            })
        })?;
        return Tensor::from_vec(dx, shape, dy.device());
    }
    let dy2 = dy.contiguous()?.reshape((rows, out))?;
    dy2.matmul(w)?.reshape(shape)
}

/// Whether the host kernels may compute with these tensors: `f32` on the CPU, none tracked
/// (the kernels do not record their ops for the backward).
fn untracked_host(ts: &[&Tensor]) -> bool {
    ts.iter().all(|t| host(t) && !t.track_op())
}

/// `x · wᵀ + b + plus` for untracked operands (`plus` shaped as the output): on the host the
/// product is added onto `plus` in place of a separate sum.
pub(crate) fn linear_plus(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    plus: &Tensor,
) -> candle_core::Result<Tensor> {
    let (out, inp) = w.dims2()?;
    let fits = x.dims().last() == Some(&inp)
        && plus.dims().last() == Some(&out)
        && plus.elem_count() / out.max(1) == x.elem_count() / inp.max(1);
    if !(fits && untracked_host(&[x, w, plus]) && b.is_none_or(|b| untracked_host(&[b]))) {
        return linear(x, w, b)? + plus;
    }
    let y = with_values(x, |xs| {
        with_values(w, |ws| {
            with_values(plus, |ps| match b {
                Some(b) => with_values(b, |bs| {
                    Ok(host_linear::forward(
                        xs,
                        ws,
                        Init::Rows(ps, Some(bs)),
                        inp,
                        out,
                    ))
                }),
                None => Ok(host_linear::forward(xs, ws, Init::Rows(ps, None), inp, out)),
            })
        })
    })?;
    Tensor::from_vec(y, plus.dims(), x.device())
}

/// `dy · w + plus` ([`input_grad`] plus a tensor of the input's shape), added in place on the
/// host.
pub(crate) fn input_grad_plus(
    dy: &Tensor,
    w: &Tensor,
    plus: &Tensor,
) -> candle_core::Result<Tensor> {
    let (out, inp) = w.dims2()?;
    let fits = dy.dims().last() == Some(&out)
        && plus.dims().last() == Some(&inp)
        && plus.elem_count() / inp.max(1) == dy.elem_count() / out.max(1);
    if !(fits && untracked_host(&[dy, w, plus])) {
        return input_grad(dy, w)? + plus;
    }
    let dx = with_values(dy, |gs| {
        with_values(w, |ws| {
            with_values(plus, |ps| {
                Ok(host_linear::input_grad(
                    gs,
                    ws,
                    Init::Rows(ps, None),
                    out,
                    inp,
                ))
            })
        })
    })?;
    Tensor::from_vec(dx, plus.dims(), dy.device())
}
