//! `with_input_grad`: a value computed without autograd, re-attached to its input with a
//! hand-written gradient for that input.
//!
//! candle's backward computes a gradient for both operands of every matmul and product, frozen
//! or not, and some fused ops (LayerNorm, `softmax_last_dim`) have no backward at all. A custom
//! op of two arguments, `(x, y)`, returns a copy of `y` and sends `grad_fn(x, y, grad)` to `x`
//! only: the forward stays fused and fast, and frozen weights never enter the gradient store.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};

use fedsa_core::Result;

use crate::backend::Context;

/// The gradient of a layer's input from (input, output, output gradient).
pub type InputGradFn =
    dyn Fn(&Tensor, &Tensor, &Tensor) -> candle_core::Result<Tensor> + Send + Sync;

struct InputGrad {
    name: &'static str,
    grad_fn: Box<InputGradFn>,
}

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(
        &self,
        _x: &CpuStorage,
        _lx: &Layout,
        y: &CpuStorage,
        ly: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        // `attach` makes `y` contiguous from offset 0, so its storage is exactly the output.
        Ok((y.clone(), ly.shape().clone()))
    }

    // Compiled in every build (candle has a stand-in CUDA storage without the feature), so the
    // CUDA path is at least type-checked in CPU-only CI.
    fn cuda_fwd(
        &self,
        _x: &candle_core::CudaStorage,
        _lx: &Layout,
        y: &candle_core::CudaStorage,
        ly: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        Ok((y.try_clone(ly)?, ly.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        _y: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some((self.grad_fn)(x, res, grad_res)?), None))
    }
}

/// `y` (computed from `x.detach()`), carrying the gradient `grad_fn(x, y, dy)` back to `x`.
/// When `x` is not tracked (nothing trainable below it), `y` is returned as is.
pub fn with_input_grad(
    name: &'static str,
    x: &Tensor,
    y: Tensor,
    grad_fn: impl Fn(&Tensor, &Tensor, &Tensor) -> candle_core::Result<Tensor> + Send + Sync + 'static,
) -> Result<Tensor> {
    if !x.track_op() {
        return Ok(y);
    }
    let y = if y.is_contiguous() && y.layout().start_offset() == 0 {
        y
    } else {
        y.copy().ctx(name)?
    };
    x.apply_op2(
        &y,
        InputGrad {
            name,
            grad_fn: Box::new(grad_fn),
        },
    )
    .ctx(name)
}

/// The gradients of a pair of inputs from the output gradient, each computed only when
/// asked for (`[first tracked, second tracked]`).
type PairGradFn = dyn Fn(&Tensor, [bool; 2]) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)>
    + Send
    + Sync;

struct PairGrad {
    name: &'static str,
    grad_fn: Box<PairGradFn>,
}

impl CustomOp3 for PairGrad {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(
        &self,
        _a: &CpuStorage,
        _la: &Layout,
        _b: &CpuStorage,
        _lb: &Layout,
        y: &CpuStorage,
        ly: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        // As in `InputGrad`: `with_pair_grad` makes `y` contiguous from offset 0.
        Ok((y.clone(), ly.shape().clone()))
    }

    fn cuda_fwd(
        &self,
        _a: &candle_core::CudaStorage,
        _la: &Layout,
        _b: &candle_core::CudaStorage,
        _lb: &Layout,
        y: &candle_core::CudaStorage,
        ly: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        Ok((y.try_clone(ly)?, ly.shape().clone()))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (for_a, for_b) = (self.grad_fn)(grad_res, [a.track_op(), b.track_op()])?;
        Ok((for_a, for_b, None))
    }
}

/// `y` (computed by the caller from `a` and `b` detached), carrying `grad_fn(dy, wanted)` back
/// to `a` and `b`: a layer of two inputs as one graph node.
pub fn with_pair_grad(
    name: &'static str,
    a: &Tensor,
    b: &Tensor,
    y: Tensor,
    grad_fn: impl Fn(&Tensor, [bool; 2]) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)>
    + Send
    + Sync
    + 'static,
) -> Result<Tensor> {
    if !(a.track_op() || b.track_op()) {
        return Ok(y);
    }
    let y = if y.is_contiguous() && y.layout().start_offset() == 0 {
        y
    } else {
        y.copy().ctx(name)?
    };
    a.apply_op3(
        b,
        &y,
        PairGrad {
            name,
            grad_fn: Box::new(grad_fn),
        },
    )
    .ctx(name)
}

/// `y = f(a + b)` (computed by the caller from `sum = a + b`, detached), carrying
/// `grad_fn(sum, dy)` back to both `a` and `b`: a residual connection and the layer after it
/// as one graph node instead of two.
pub fn with_sum_grad(
    name: &'static str,
    a: &Tensor,
    b: &Tensor,
    sum: Tensor,
    y: Tensor,
    grad_fn: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor> + Send + Sync + 'static,
) -> Result<Tensor> {
    with_pair_grad(name, a, b, y, move |dy, [for_a, for_b]| {
        let g = grad_fn(&sum, dy)?;
        // Both summands receive the sum's gradient; an untracked one is skipped.
        Ok((for_a.then(|| g.clone()), for_b.then_some(g)))
    })
}
