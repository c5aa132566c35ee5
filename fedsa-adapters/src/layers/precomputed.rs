//! The frame shared by the custom ops of three inputs whose value is computed before the op is
//! built (on the host kernels, or by candle from detached inputs): attention, causal attention
//! and the low-rank adapter. The op's forward only hands that value back to candle; its
//! backward is the op's own. One frame, so the storage rules below live in one place.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Storage, Tensor};

/// The three inputs' gradients, `None` where an input is not tracked.
pub(crate) type Grads3 = (Option<Tensor>, Option<Tensor>, Option<Tensor>);

/// An op whose value was computed ahead, with the gradients of its three inputs.
pub(crate) trait Precomputed: Send + Sync {
    /// The op's name in candle's errors.
    const NAME: &'static str;

    /// The value computed ahead: a fresh contiguous tensor (a product, `affine`,
    /// `from_vec`), so that its storage is exactly the result.
    fn out(&self) -> &Tensor;

    /// The inputs' gradients from the output's, each computed only where its input is
    /// tracked.
    fn grads(
        &self,
        a: &Tensor,
        b: &Tensor,
        c: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Grads3>;
}

/// `op` as one graph node over its inputs `a`, `b`, `c`: `a.apply_op3(b, c, Attached(op))`.
pub(crate) struct Attached<T>(pub T);

impl<T: Precomputed> CustomOp3 for Attached<T> {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (storage, layout) = self.0.out().storage_and_layout();
        match &*storage {
            Storage::Cpu(s) if layout.start_offset() == 0 && layout.is_contiguous() => {
                Ok((s.clone(), layout.shape().clone()))
            }
            _ => candle_core::bail!("{}: output is not a plain host tensor", T::NAME),
        }
    }

    // Compiled in every build (candle has a stand-in CUDA storage without the feature), so the
    // CUDA path is at least type-checked in CPU-only CI.
    fn cuda_fwd(
        &self,
        _: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        let (storage, layout) = self.0.out().storage_and_layout();
        match &*storage {
            Storage::Cuda(s) => Ok((s.try_clone(layout)?, layout.shape().clone())),
            _ => candle_core::bail!("{}: output is not on the CUDA device", T::NAME),
        }
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        c: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Grads3> {
        self.0.grads(a, b, c, grad)
    }
}
