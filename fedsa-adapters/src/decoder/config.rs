//! A LLaMA `config.json` as Hugging Face writes it (the subset the decoder needs; other keys
//! are ignored, as `transformers` ignores keys it does not use), and its validation.

use std::path::Path;

use serde::{Deserialize, Serialize};

use fedsa_core::{Error, Result};

/// `eos_token_id`: one id, or several (chat models stop on any of them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EosTokens {
    One(u32),
    Many(Vec<u32>),
}

impl EosTokens {
    /// Every end-of-sequence id.
    pub fn ids(&self) -> Vec<u32> {
        match self {
            EosTokens::One(id) => vec![*id],
            EosTokens::Many(ids) => ids.clone(),
        }
    }
}

/// The hyper-parameters of a LLaMA-architecture causal language model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    pub model_type: String,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Grouped-query attention: key/value heads, each shared by `heads / kv_heads` query heads.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    pub vocab_size: usize,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<EosTokens>,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Rope scaling (llama3, linear, yarn) is not implemented: a config that sets it is refused
    /// rather than run with the wrong positions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<serde_json::Value>,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_max_positions() -> usize {
    2048
}
fn default_act() -> String {
    "silu".into()
}

impl LlamaConfig {
    /// Reads and checks `config.json`.
    pub fn load(path: &Path) -> Result<LlamaConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let config: LlamaConfig = serde_json::from_str(&text)
            .map_err(|e| Error::model(path, format!("not a valid LLaMA config: {e}")))?;
        config.validate(path)?;
        Ok(config)
    }

    /// A small LLaMA config (tests, benchmarks): 4 kv heads unless changed, rms eps 1e-5.
    pub fn tiny(
        vocab_size: usize,
        hidden_size: usize,
        num_hidden_layers: usize,
        num_attention_heads: usize,
        num_key_value_heads: usize,
        intermediate_size: usize,
    ) -> LlamaConfig {
        LlamaConfig {
            model_type: "llama".into(),
            hidden_size,
            intermediate_size,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads: Some(num_key_value_heads),
            rms_norm_eps: 1e-5,
            rope_theta: default_theta(),
            vocab_size,
            max_position_embeddings: 256,
            tie_word_embeddings: false,
            bos_token_id: Some(1),
            eos_token_id: Some(EosTokens::One(2)),
            pad_token_id: None,
            hidden_act: default_act(),
            rope_scaling: None,
        }
    }

    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    /// Every end-of-sequence id (none when the config names none).
    pub fn eos_ids(&self) -> Vec<u32> {
        self.eos_token_id
            .as_ref()
            .map(EosTokens::ids)
            .unwrap_or_default()
    }

    /// The id padding uses: `pad_token_id`, else the first EOS id, else 0. Padded positions
    /// are masked, so the id only has to be inside the vocabulary.
    pub fn pad_id(&self) -> u32 {
        self.pad_token_id
            .or_else(|| self.eos_ids().first().copied())
            .unwrap_or(0)
    }

    /// Checks that the numbers describe a buildable decoder; `path` names the file in errors.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |field: &str, msg: String| Err(Error::model(path, format!("{field}: {msg}")));
        if self.model_type != "llama" {
            return bad(
                "model_type",
                format!(
                    "unsupported model type `{}` for a decoder (supported: llama)",
                    self.model_type
                ),
            );
        }
        for (field, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.kv_heads()),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if v == 0 {
                return bad(field, "must be positive".into());
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(
                "num_attention_heads",
                format!(
                    "{} does not divide hidden_size {}",
                    self.num_attention_heads, self.hidden_size
                ),
            );
        }
        if !self.head_dim().is_multiple_of(2) {
            return bad(
                "num_attention_heads",
                format!(
                    "head size {} must be even for rotary embeddings",
                    self.head_dim()
                ),
            );
        }
        if !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            return bad(
                "num_key_value_heads",
                format!(
                    "{} does not divide num_attention_heads {}",
                    self.kv_heads(),
                    self.num_attention_heads
                ),
            );
        }
        if self.hidden_act != "silu" {
            return bad(
                "hidden_act",
                format!("unsupported activation `{}` (silu)", self.hidden_act),
            );
        }
        if self.rms_norm_eps.is_nan() || self.rms_norm_eps <= 0.0 {
            return bad("rms_norm_eps", "must be positive".into());
        }
        if self.rope_theta.is_nan() || self.rope_theta <= 0.0 {
            return bad("rope_theta", "must be positive".into());
        }
        if self.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return bad("rope_scaling", "rope scaling is not supported".into());
        }
        let ids = self
            .bos_token_id
            .into_iter()
            .map(|id| ("bos_token_id", id))
            .chain(self.eos_ids().into_iter().map(|id| ("eos_token_id", id)))
            .chain(self.pad_token_id.into_iter().map(|id| ("pad_token_id", id)));
        for (field, id) in ids {
            if id as usize >= self.vocab_size {
                return bad(
                    field,
                    format!("{id} is outside the vocabulary of {}", self.vocab_size),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_smollm_style_json() {
        let json = r#"{"architectures":["LlamaForCausalLM"],"model_type":"llama",
            "hidden_size":576,"intermediate_size":1536,"num_hidden_layers":30,
            "num_attention_heads":9,"num_key_value_heads":3,"rms_norm_eps":1e-5,
            "rope_theta":100000,"vocab_size":49152,"max_position_embeddings":8192,
            "tie_word_embeddings":true,"bos_token_id":1,"eos_token_id":[2, 0],
            "rope_scaling":null,"torch_dtype":"bfloat16"}"#;
        let c: LlamaConfig = serde_json::from_str(json).unwrap();
        c.validate(Path::new("config.json")).unwrap();
        assert_eq!(
            (c.head_dim(), c.kv_heads(), c.eos_ids()),
            (64, 3, vec![2, 0])
        );
        assert_eq!(c.pad_id(), 2);
    }

    #[test]
    fn kv_heads_must_divide_heads() {
        let c = LlamaConfig::tiny(16, 24, 1, 6, 4, 32);
        let err = c
            .validate(Path::new("m/config.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("m/config.json") && err.contains("num_key_value_heads"),
            "{err}"
        );
    }
}
