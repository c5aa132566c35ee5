//! PEFT's layout for a client's adapter: the tensor names PEFT gives a sequence-classification
//! encoder's or a LLaMA-family causal language model's parameters, and the
//! `adapter_config.json` it reads. Kept next to the adapters because it is knowledge of adapter
//! names, not of any front end.

use candle_core::DType;
use fedsa_core::config::AdapterConfig;
use fedsa_core::{Error, ParamSet, Result};

use crate::adapter::AdapterSet;

/// The name PEFT gives parameter `name` of a model whose body's weights start with
/// `family_prefix` (`bert.`, `roberta.`; empty for a decoder, whose names already start with
/// `model.`).
pub fn peft_key(name: &str, family_prefix: &str) -> String {
    if name.starts_with("classifier.") {
        format!("base_model.model.{name}")
    } else {
        format!("base_model.model.{family_prefix}{name}")
    }
}

/// The modules PEFT saves whole next to the adapter: the head, and BERT's pooler it feeds from.
/// A causal language model has no trained head: nothing.
fn modules_to_save(task_type: &str, family_prefix: &str) -> Vec<&'static str> {
    if task_type == CAUSAL_LM {
        vec![]
    } else if family_prefix == "bert." {
        vec!["classifier", "pooler"]
    } else {
        vec!["classifier"]
    }
}

/// PEFT's task type of an encoder classifier.
pub const SEQ_CLS: &str = "SEQ_CLS";
/// PEFT's task type of a decoder (LLaMA family).
pub const CAUSAL_LM: &str = "CAUSAL_LM";

/// Which adapter kinds PEFT can load, for the refusal message.
pub const EXPORTABLE: &str = "lora, rslora, dora and vera";

/// A client's adapter in PEFT's layout: `adapter_config.json` and the tensors of
/// `adapter_model.safetensors`.
pub struct PeftAdapter {
    pub config: serde_json::Value,
    pub tensors: ParamSet,
}

/// What [`peft_adapter`] needs to know of the run.
pub struct PeftSource<'a> {
    pub adapter: &'a AdapterConfig,
    /// The base model as the run named it (`base_model_name_or_path`).
    pub base_model: String,
    pub family_prefix: &'a str,
    /// [`SEQ_CLS`] or [`CAUSAL_LM`].
    pub task_type: &'a str,
    /// The run's seed: VeRA's projections are drawn from it.
    pub seed: u64,
}

/// The PEFT layout of a client whose trained tensors are `params` (fedsa names) on the adapter
/// set `adapters`. Refuses adapter kinds PEFT has no layout for.
pub fn peft_adapter(
    source: &PeftSource<'_>,
    adapters: &AdapterSet,
    params: ParamSet,
) -> Result<PeftAdapter> {
    let a = source.adapter;
    let spec_name = adapters.spec().name.as_str();
    let mut tensors = ParamSet::new();
    for (name, t) in params {
        tensors.insert_tensor(peft_key(&name, source.family_prefix), t);
    }
    let modules_to_save = modules_to_save(source.task_type, source.family_prefix);
    let config = match spec_name {
        "lora" | "rslora" | "dora" => serde_json::json!({
            "peft_type": "LORA",
            "task_type": source.task_type,
            "base_model_name_or_path": source.base_model,
            "r": a.rank,
            "lora_alpha": a.alpha,
            "lora_dropout": a.dropout,
            "use_rslora": spec_name == "rslora",
            "target_modules": a.target_modules,
            "bias": "none",
            "fan_in_fan_out": false,
            "init_lora_weights": true,
            "use_dora": spec_name == "dora",
            "modules_to_save": modules_to_save,
            "inference_mode": true,
            "layers_to_transform": null,
            "layers_pattern": null,
            "rank_pattern": {},
            "alpha_pattern": {},
            "revision": null
        }),
        "vera" => {
            // VeRA's projections come from our seed, not PEFT's generator: ship them.
            for (name, tensor) in adapters.shared_tensors() {
                let short = name.trim_start_matches("shared.");
                let data: Vec<f32> = tensor
                    .flatten_all()
                    .and_then(|t| t.to_dtype(DType::F32))
                    .and_then(|t| t.to_vec1())
                    .map_err(|e| Error::backend(format!("reading VeRA projection {name}"), e))?;
                tensors.insert(format!("base_model.{short}"), tensor.dims().to_vec(), data)?;
            }
            serde_json::json!({
                "peft_type": "VERA",
                "task_type": source.task_type,
                "base_model_name_or_path": source.base_model,
                "r": a.rank,
                "target_modules": a.target_modules,
                "projection_prng_key": source.seed,
                "save_projection": true,
                "vera_dropout": a.dropout,
                "d_initial": 0.1,
                "bias": "none",
                "fan_in_fan_out": false,
                "init_weights": true,
                "modules_to_save": modules_to_save,
                "inference_mode": true,
                "layers_to_transform": null,
                "layers_pattern": null
            })
        }
        other => {
            return Err(Error::backend(
                "export",
                format!("PEFT has no layout for adapter `{other}` ({EXPORTABLE} export)"),
            ));
        }
    };
    Ok(PeftAdapter { config, tensors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peft_names_keep_the_head_outside_the_encoder_prefix() {
        assert_eq!(
            peft_key("classifier.weight", "bert."),
            "base_model.model.classifier.weight"
        );
        assert_eq!(
            peft_key(
                "encoder.layer.0.attention.self.query.lora_A.weight",
                "roberta."
            ),
            "base_model.model.roberta.encoder.layer.0.attention.self.query.lora_A.weight"
        );
        // Decoder parameters already carry Hugging Face's `model.` prefix.
        assert_eq!(
            peft_key("model.layers.0.self_attn.q_proj.lora_A.weight", ""),
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
        );
        assert!(modules_to_save(CAUSAL_LM, "").is_empty());
    }
}
