//! Linear layers: the frozen pretrained ones (weights never tracked) and the plain product used
//! for trainable weights (head, adapter factors).

use candle_core::Tensor;

use fedsa_core::Result;

use crate::backend::Context;
use crate::kernels;
use crate::kernels::init::Init;
use crate::kernels::route::{Grads, on_host, with_opt_values, with_values};
use crate::layers::grad::with_input_grad;

/// `x · wᵀ (+ b)` for `x` of any rank `[..., in]` and `w` of shape `[out, in]`, with gradients
/// for every tracked operand.
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> candle_core::Result<Tensor> {
    let dims = x.dims().to_vec();
    if dims.is_empty() {
        candle_core::bail!("linear needs an input of rank >= 1, got a scalar");
    }
    let (out, inp) = w.dims2()?;
    let rows: usize = dims[..dims.len() - 1].iter().product();
    // Nothing to differentiate (frozen layers run on detached inputs): the host kernel.
    if let Some(y) = host_product(x, w, b, None)? {
        return Ok(y);
    }
    let mut shape = dims;
    *shape.last_mut().expect("rank >= 1") = out;
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
    if let Some(dx) = host_input_grad(dy, w, None)? {
        return Ok(dx);
    }
    let dy2 = dy.contiguous()?.reshape((rows, out))?;
    dy2.matmul(w)?.reshape(shape)
}

/// `x · wᵀ + b + plus` for untracked operands (`plus` shaped as the output): on the host the
/// product is added onto `plus` in place of a separate sum.
pub(crate) fn linear_plus(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    plus: &Tensor,
) -> candle_core::Result<Tensor> {
    match host_product(x, w, b, Some(plus))? {
        Some(y) => Ok(y),
        None => linear(x, w, b)? + plus,
    }
}

/// `dy · w + plus` ([`input_grad`] plus a tensor of the input's shape), added in place on the
/// host.
pub(crate) fn input_grad_plus(
    dy: &Tensor,
    w: &Tensor,
    plus: &Tensor,
) -> candle_core::Result<Tensor> {
    match host_input_grad(dy, w, Some(plus))? {
        Some(dx) => Ok(dx),
        None => input_grad(dy, w)? + plus,
    }
}

/// Whether `plus` can start the output of a product of `rows` rows of `width` values.
fn fits_rows(plus: Option<&Tensor>, rows: usize, width: usize) -> bool {
    plus.is_none_or(|p| p.dims().last() == Some(&width) && p.elem_count() / width.max(1) == rows)
}

/// `x · wᵀ (+ b) (+ plus)` on the host kernels, or `None` where they do not apply (the
/// routing rule says no: a device, a dtype, a tracked operand; or shapes that do not line up).
fn host_product(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    plus: Option<&Tensor>,
) -> candle_core::Result<Option<Tensor>> {
    let (out, inp) = w.dims2()?;
    let rows = x.elem_count() / inp.max(1);
    let applies = x.dims().last() == Some(&inp)
        && fits_rows(plus, rows, out)
        && on_host([x, w].into_iter().chain(b).chain(plus), Grads::Dropped);
    if !applies {
        return Ok(None);
    }
    let y = with_values(x, |xs| {
        with_values(w, |ws| {
            with_opt_values(b, |bs| {
                with_opt_values(plus, |ps| {
                    let init = match (ps, bs) {
                        (Some(ps), bs) => Init::Rows(ps, bs),
                        (None, Some(bs)) => Init::Bias(bs),
                        (None, None) => Init::Zero,
                    };
                    Ok(kernels::linear::forward(xs, ws, init, inp, out))
                })
            })
        })
    })?;
    let mut shape = x.dims().to_vec();
    *shape.last_mut().expect("rank >= 1") = out;
    Tensor::from_vec(y, shape, x.device()).map(Some)
}

/// `dy · w (+ plus)` on the host kernels, or `None` where they do not apply.
fn host_input_grad(
    dy: &Tensor,
    w: &Tensor,
    plus: Option<&Tensor>,
) -> candle_core::Result<Option<Tensor>> {
    let (out, inp) = w.dims2()?;
    let rows = dy.elem_count() / out.max(1);
    let applies = dy.dims().last() == Some(&out)
        && fits_rows(plus, rows, inp)
        && on_host([dy, w].into_iter().chain(plus), Grads::Dropped);
    if !applies {
        return Ok(None);
    }
    let dx = with_values(dy, |gs| {
        with_values(w, |ws| {
            with_opt_values(plus, |ps| {
                let init = ps.map_or(Init::Zero, |ps| Init::Rows(ps, None));
                Ok(kernels::linear::input_grad(gs, ws, init, out, inp))
            })
        })
    })?;
    let mut shape = dy.dims().to_vec();
    *shape.last_mut().expect("rank >= 1") = inp;
    Tensor::from_vec(dx, shape, dy.device()).map(Some)
}
