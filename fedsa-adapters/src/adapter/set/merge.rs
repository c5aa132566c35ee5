//! An adapted linear layer folded into one weight and bias, for a merged export. Every adapter
//! fedsa runs is affine in the layer's input (LoRA and rsLoRA add `s·B·A·x`, VeRA
//! `b⊙B·(d⊙A·x)`, DoRA rescales the columns of `W0 + s·B·A`, a server correction adds `Δ·x`),
//! so the layer's own forward at the unit vectors and at zero gives exactly `W'` and `b'`:
//! one probe through the same code the model runs, whatever the adapter's program.

use candle_core::{DType, Tensor};

use fedsa_core::{Error, Result};

use super::AdapterSet;
use crate::adapter::ctx::ForwardCtx;
use crate::adapter::target::{Module, ModuleInfo};
use crate::backend::Context;
use crate::layers::FrozenLinear;

/// One adapted layer merged: its module's full name, `W'`, `b'`, and whether the frozen layer
/// has a bias (LLaMA's have none; `b'` is then what the adapter would add).
pub struct MergedLayer {
    pub name: String,
    pub weight: Tensor,
    pub bias: Tensor,
    pub has_bias: bool,
}

impl AdapterSet {
    /// Every adapted layer merged ([`AdapterSet::merged_linear`]); `modules` are the model's
    /// linear layers (for their names) and `linear` gives each one's frozen weight and bias.
    pub fn merged_layers<'m>(
        &self,
        modules: &[ModuleInfo],
        linear: &dyn Fn(usize, Module) -> &'m FrozenLinear,
        param: &dyn Fn(&str) -> Result<Tensor>,
    ) -> Result<Vec<MergedLayer>> {
        self.targets()
            .map(|(layer, module)| {
                let info = modules
                    .iter()
                    .find(|m| m.layer == layer && m.module == module)
                    .ok_or_else(|| {
                        Error::param(
                            format!("layer {layer}"),
                            "an adapted module the model lacks",
                        )
                    })?;
                let frozen = linear(layer, module);
                let (weight, bias) =
                    self.merged_linear(layer, module, frozen.weight(), frozen.bias(), param)?;
                Ok(MergedLayer {
                    name: info.name.clone(),
                    weight,
                    bias,
                    has_bias: frozen.bias().is_some(),
                })
            })
            .collect()
    }

    /// `(W' [out, in], b' [out])` of `(layer, module)` with its adapter (and any server
    /// correction) folded in: the adapted output is `x·W'ᵀ + b'` for every `x`, in eval mode.
    pub fn merged_linear(
        &self,
        layer: usize,
        module: Module,
        w0: &Tensor,
        bias: Option<&Tensor>,
        param: &dyn Fn(&str) -> Result<Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let (_, inp) = w0.dims2().ctx("a linear weight")?;
        let device = w0.device();
        let probe = Tensor::eye(inp, DType::F32, device)
            .and_then(|eye| {
                let zero = Tensor::zeros((1, inp), DType::F32, device)?;
                Tensor::cat(&[&eye, &zero], 0)?.unsqueeze(0)
            })
            .ctx("the merge probe")?;
        let base = crate::layers::linear(&probe, w0, bias).ctx("the frozen layer")?;
        let y = self
            .forward(
                layer,
                module,
                &probe,
                base,
                w0,
                param,
                &mut ForwardCtx::eval(),
            )?
            .squeeze(0)
            .ctx("the probe's output")?;
        let b = y.narrow(0, inp, 1).ctx("the merged bias")?;
        let w = y
            .narrow(0, 0, inp)
            .and_then(|rows| rows.broadcast_sub(&b))
            .and_then(|wt| wt.t()?.contiguous())
            .ctx("the merged weight")?;
        Ok((w, b.squeeze(0).ctx("the merged bias")?))
    }
}
