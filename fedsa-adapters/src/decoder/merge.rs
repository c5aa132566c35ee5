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
        let params = self.params();
        let lookup = |name: &str| params.tensor(name);
        let linear = |layer, module| base.linear(layer, module);
        for l in self
            .adapters()
            .merged_layers(&base.modules(), &linear, &lookup)?
        {
            let bias_left = l
                .bias
                .abs()
                .and_then(|a| a.max_all())
                .and_then(|m| m.to_scalar::<f32>())
                .map_err(|e| Error::param(l.name.clone(), e.to_string()))?;
            if !l.has_bias && bias_left > 1e-6 {
                return Err(Error::param(
                    l.name.clone(),
                    format!("the adapter adds a bias ({bias_left:e}) the layer does not have"),
                ));
            }
            out.insert(format!("{}.weight", l.name), l.weight);
            if l.has_bias {
                out.insert(format!("{}.bias", l.name), l.bias);
            }
        }
        Ok(out.into_iter().collect())
    }
}
