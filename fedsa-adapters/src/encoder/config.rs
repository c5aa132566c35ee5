//! The encoder's hyper-parameters as Hugging Face writes them in `config.json`, and the model
//! family (`bert`, `roberta`) that decides weight prefixes, position ids and the head's shape.

use std::path::Path;

use serde::{Deserialize, Serialize};

use fedsa_core::{Error, Result};

/// The architectures this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// BERT: positions `0..n`, token types, pooler + classifier head.
    Bert,
    /// RoBERTa: positions start after the padding id, one token type, dense + out_proj head.
    Roberta,
}

impl Family {
    /// The family of a Hugging Face `model_type`.
    pub fn from_model_type(model_type: &str) -> Option<Family> {
        match model_type {
            "bert" => Some(Family::Bert),
            "roberta" | "xlm-roberta" => Some(Family::Roberta),
            _ => None,
        }
    }

    /// The prefix Hugging Face puts before encoder weights in task models (`bert.`).
    pub fn weight_prefix(self) -> &'static str {
        match self {
            Family::Bert => "bert.",
            Family::Roberta => "roberta.",
        }
    }
}

/// The subset of a Hugging Face BERT/RoBERTa `config.json` the encoder needs; other keys are
/// ignored, as `transformers` ignores keys it does not use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderConfig {
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: u32,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default)]
    pub classifier_dropout: Option<f64>,
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_max_positions() -> usize {
    512
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_dropout() -> f64 {
    0.1
}
fn default_init_range() -> f64 {
    0.02
}

/// The feed-forward activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU (erf), what `"gelu"` means in `transformers`.
    Gelu,
    /// The tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    Relu,
}

impl EncoderConfig {
    /// Reads and checks `config.json`.
    pub fn load(path: &Path) -> Result<EncoderConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let config: EncoderConfig = serde_json::from_str(&text)
            .map_err(|e| Error::model(path, format!("not a valid encoder config: {e}")))?;
        config.validate(path)?;
        Ok(config)
    }

    /// A BERT config of the given size (tests and benchmarks).
    pub fn bert(
        vocab_size: usize,
        hidden_size: usize,
        num_hidden_layers: usize,
        num_attention_heads: usize,
        intermediate_size: usize,
    ) -> EncoderConfig {
        EncoderConfig {
            model_type: "bert".into(),
            vocab_size,
            hidden_size,
            num_hidden_layers,
            num_attention_heads,
            intermediate_size,
            hidden_act: default_act(),
            max_position_embeddings: default_max_positions(),
            type_vocab_size: default_type_vocab(),
            layer_norm_eps: default_eps(),
            pad_token_id: 0,
            hidden_dropout_prob: default_dropout(),
            classifier_dropout: None,
            initializer_range: default_init_range(),
            position_embedding_type: None,
        }
    }

    /// A RoBERTa config of the given size: one token type, padding id 1, positions offset by 2.
    pub fn roberta(
        vocab_size: usize,
        hidden_size: usize,
        num_hidden_layers: usize,
        num_attention_heads: usize,
        intermediate_size: usize,
    ) -> EncoderConfig {
        EncoderConfig {
            model_type: "roberta".into(),
            type_vocab_size: 1,
            pad_token_id: 1,
            max_position_embeddings: 514,
            layer_norm_eps: 1e-5,
            ..Self::bert(
                vocab_size,
                hidden_size,
                num_hidden_layers,
                num_attention_heads,
                intermediate_size,
            )
        }
    }

    /// The model family; `validate` guarantees it exists.
    pub fn family(&self) -> Result<Family> {
        Family::from_model_type(&self.model_type).ok_or_else(|| {
            Error::config(
                "config.json",
                "model_type",
                format!(
                    "unknown model type `{}` (supported: bert, roberta)",
                    self.model_type
                ),
            )
        })
    }

    /// The feed-forward activation.
    pub fn activation(&self) -> Result<Activation> {
        match self.hidden_act.as_str() {
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Ok(Activation::GeluTanh),
            "relu" => Ok(Activation::Relu),
            other => Err(Error::config(
                "config.json",
                "hidden_act",
                format!("unsupported activation `{other}` (gelu, gelu_new, relu)"),
            )),
        }
    }

    /// Size of each attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    /// Dropout before the classifier, as `transformers` picks it.
    pub fn head_dropout(&self) -> f64 {
        self.classifier_dropout.unwrap_or(self.hidden_dropout_prob)
    }

    /// Checks that the numbers describe a buildable encoder; `path` names the file in errors.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |field: &str, msg: String| Err(Error::model(path, format!("{field}: {msg}")));
        if Family::from_model_type(&self.model_type).is_none() {
            return bad(
                "model_type",
                format!(
                    "unknown model type `{}` (supported: bert, roberta)",
                    self.model_type
                ),
            );
        }
        for (field, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
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
        if let Some(kind) = &self.position_embedding_type
            && kind != "absolute"
        {
            return bad(
                "position_embedding_type",
                format!("`{kind}` is not supported (only absolute)"),
            );
        }
        if self.activation().is_err() {
            return bad(
                "hidden_act",
                format!("unsupported activation `{}`", self.hidden_act),
            );
        }
        if self.layer_norm_eps.is_nan() || self.layer_norm_eps <= 0.0 {
            return bad("layer_norm_eps", "must be positive".into());
        }
        if (self.pad_token_id as usize) >= self.vocab_size {
            return bad(
                "pad_token_id",
                format!("{} is outside the vocabulary", self.pad_token_id),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_model_type_names_the_field() {
        let mut c = EncoderConfig::bert(10, 8, 1, 2, 16);
        c.model_type = "gpt2".into();
        let err = c
            .validate(Path::new("m/config.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("m/config.json") && err.contains("model_type") && err.contains("gpt2"),
            "{err}"
        );
    }

    #[test]
    fn heads_must_divide_hidden() {
        let c = EncoderConfig::bert(10, 9, 1, 2, 16);
        let err = c
            .validate(Path::new("config.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("num_attention_heads"), "{err}");
    }

    #[test]
    fn reads_hugging_face_json_with_extra_keys() {
        let json = r#"{"model_type":"roberta","vocab_size":50,"hidden_size":8,
            "num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16,
            "pad_token_id":1,"type_vocab_size":1,"architectures":["RobertaForMaskedLM"]}"#;
        let c: EncoderConfig = serde_json::from_str(json).unwrap();
        assert_eq!(c.family().unwrap(), Family::Roberta);
        assert_eq!(c.activation().unwrap(), Activation::Gelu);
        c.validate(Path::new("config.json")).unwrap();
    }
}
