//! A generation client as one Hugging Face causal-LM checkpoint: the frozen decoder with every
//! adapted linear layer replaced by its merged weight (`AdapterSet::merged_linear`), under the
//! names `LlamaForCausalLM` loads.

use std::collections::BTreeMap;

use candle_core::Tensor;

use fedsa_core::{Error, Result};

use crate::decoder::DecoderClient;

impl DecoderClient {
    /// Every tensor of the merged model under its Hugging Face name, in name order. LLaMA's
    /// linear layers have no bias, and no adapter fedsa runs adds one, so only weights change.
    pub fn merged_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let base = self.base();
        let mut out: BTreeMap<String, Tensor> = base.named_tensors().into_iter().collect();
        let modules = base.modules();
        let params = self.params();
        let lookup = |name: &str| params.tensor(name);
        for (layer, module) in self.adapters().targets() {
            let info = modules
                .iter()
                .find(|m| m.layer == layer && m.module == module)
                .ok_or_else(|| {
                    Error::param(
                        format!("layer {layer}"),
                        "an adapted module the model lacks",
                    )
                })?;
            let frozen = base.linear(layer, module);
            let (w, b) = self.adapters().merged_linear(
                layer,
                module,
                frozen.weight(),
                frozen.bias(),
                &lookup,
            )?;
            let bias_left = b
                .abs()
                .and_then(|a| a.max_all())
                .and_then(|m| m.to_scalar::<f32>())
                .map_err(|e| Error::param(info.name.clone(), e.to_string()))?;
            if frozen.bias().is_none() && bias_left > 1e-6 {
                return Err(Error::param(
                    info.name.clone(),
                    format!("the adapter adds a bias ({bias_left:e}) the layer does not have"),
                ));
            }
            out.insert(format!("{}.weight", info.name), w);
            if frozen.bias().is_some() {
                out.insert(format!("{}.bias", info.name), b);
            }
        }
        Ok(out.into_iter().collect())
    }
}
