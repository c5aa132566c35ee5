//! A classification client as one Hugging Face sequence-classification checkpoint: the frozen
//! encoder with every adapted linear layer replaced by its merged weight and bias
//! (`AdapterSet::merged_linear`), and the client's head, under the names
//! `BertForSequenceClassification` / `RobertaForSequenceClassification` load.

use std::collections::BTreeMap;

use candle_core::Tensor;

use fedsa_core::{Result, Role};

use crate::encoder::ClientModel;

impl ClientModel {
    /// Every tensor of the merged model under its Hugging Face name, in name order.
    pub fn merged_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let base = self.base();
        let prefix = base.family().weight_prefix();
        let mut out: BTreeMap<String, Tensor> = base
            .named_tensors()
            .into_iter()
            .map(|(name, t)| (format!("{prefix}{name}"), t))
            .collect();
        let params = self.params();
        let lookup = |name: &str| params.tensor(name);
        let linear = |layer, module| base.linear(layer, module);
        for l in self
            .adapters()
            .merged_layers(&base.modules(), &linear, &lookup)?
        {
            out.insert(format!("{prefix}{}.weight", l.name), l.weight);
            out.insert(format!("{prefix}{}.bias", l.name), l.bias);
        }
        // BERT's pooler sits inside the encoder model (`bert.pooler`); the classifier (and
        // RoBERTa's whole head) beside it.
        for (name, role) in params.roles() {
            if role != Role::Head {
                continue;
            }
            let hf = if name.starts_with("pooler.") {
                format!("{prefix}{name}")
            } else {
                name.clone()
            };
            out.insert(hf, params.tensor(&name)?.detach());
        }
        Ok(out.into_iter().collect())
    }
}
