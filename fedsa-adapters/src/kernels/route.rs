//! Where an op runs: on the host kernels of [`crate::kernels`], or through candle's ops. The
//! rule is [`on_host`], and every layer that has both paths asks it (linear layers, attention,
//! the softmax, GELU, the norms' gradients); nothing else in the crate looks at a tensor's
//! device or dtype to choose. The layer adds only its kernel's own shape conditions (a linear
//! layer's operands lining up, attention's key mask).
//!
//! Also here: the bridge from a host tensor to the slice a kernel reads.

use candle_core::{DType, Device, Storage, Tensor};

/// What the caller does about the gradients of a kernel's result, which decides whether a
/// tracked operand may go to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grads {
    /// The caller attaches them itself (a custom op around a detached forward), or the kernel
    /// computes a gradient inside a backward pass: tracked operands may be read.
    Attached,
    /// The result carries none (a kernel does not record its ops): a tracked operand goes
    /// through candle's ops instead, so that its gradient is recorded.
    Dropped,
}

/// Whether the host kernels compute an op over `operands` (all the tensors the kernel reads):
/// each is an `f32` tensor in CPU memory (the kernels read `&[f32]`), and with
/// [`Grads::Dropped`] none is tracked. Otherwise the op goes through candle's ops: other
/// devices, other dtypes (`f64`, half precision), tracked operands of an unrecorded kernel.
pub(crate) fn on_host<'t>(operands: impl IntoIterator<Item = &'t Tensor>, grads: Grads) -> bool {
    operands.into_iter().all(|t| {
        matches!(t.device(), Device::Cpu)
            && t.dtype() == DType::F32
            && (grads == Grads::Attached || !t.track_op())
    })
}

/// Runs `f` on the values of a host `f32` tensor, borrowed from its storage (copied only when
/// `t` is not contiguous).
pub(crate) fn with_values<R>(
    t: &Tensor,
    f: impl FnOnce(&[f32]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let t = if t.is_contiguous() {
        t.clone()
    } else {
        t.contiguous()?
    };
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("host kernel called on a device tensor")
    };
    let start = layout.start_offset();
    f(&cpu.as_slice::<f32>()?[start..start + layout.shape().elem_count()])
}

/// [`with_values`] for an optional tensor.
pub(crate) fn with_opt_values<R>(
    t: Option<&Tensor>,
    f: impl FnOnce(Option<&[f32]>) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    match t {
        Some(t) => with_values(t, |v| f(Some(v))),
        None => f(None),
    }
}

/// A host tensor shaped like `a` holding `kernel(a's values, b's values)`: the frame of the
/// kernels that read an input and a gradient of the same shape.
pub(crate) fn pair_kernel(
    a: &Tensor,
    b: &Tensor,
    kernel: impl FnOnce(&[f32], &[f32]) -> Vec<f32>,
) -> candle_core::Result<Tensor> {
    let out = with_values(a, |av| with_values(b, |bv| Ok(kernel(av, bv))))?;
    Tensor::from_vec(out, a.dims(), a.device())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_untracked_host_f32_goes_to_unrecorded_kernels() {
        let f32s = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
        let f64s = Tensor::zeros(3, DType::F64, &Device::Cpu).unwrap();
        let tracked = candle_core::Var::zeros(3, DType::F32, &Device::Cpu).unwrap();
        assert!(on_host([&f32s], Grads::Dropped));
        assert!(!on_host([&f32s, &f64s], Grads::Attached));
        assert!(on_host([&f32s, tracked.as_tensor()], Grads::Attached));
        assert!(!on_host([&f32s, tracked.as_tensor()], Grads::Dropped));
    }
}
