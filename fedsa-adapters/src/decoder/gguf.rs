//! Loading a LLaMA-architecture GGUF (llama.cpp's format): the config from the `llama.*`
//! metadata, every tensor dequantized to f32 and renamed to its Hugging Face name, and the
//! rows of `attn_q`/`attn_k` put back in Hugging Face order (llama.cpp's converter permutes
//! them for its interleaved rope). The tokenizer metadata is exposed as plain data.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};

use fedsa_core::{Error, GgufVocab, Result};

use crate::decoder::config::{EosTokens, LlamaConfig};
use crate::decoder::gguf_scan::{candle_reads, ggml_type_name, tensor_types};
use crate::decoder::model::DecoderModel;
use crate::decoder::names::{PREFIX, gguf_name, weight_shapes};
use crate::weights::WeightFile;

/// An opened GGUF: its parsed header and a reader for tensor data.
struct Gguf<'p> {
    path: &'p Path,
    content: Content,
    reader: BufReader<File>,
}

impl<'p> Gguf<'p> {
    fn open(path: &'p Path) -> Result<Gguf<'p>> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut reader = BufReader::new(file);
        let content = Content::read(&mut reader).map_err(|e| {
            // candle names the type but not the tensor: find the tensor ourselves.
            let unknown =
                tensor_types(path).and_then(|ts| ts.into_iter().find(|(_, t)| !candle_reads(*t)));
            match unknown {
                Some((name, t)) => unsupported(path, &name, t),
                None => Error::model(path, format!("not a readable GGUF file: {e}")),
            }
        })?;
        Ok(Gguf {
            path,
            content,
            reader,
        })
    }

    fn meta(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    fn bad_field(&self, key: &str, msg: &str) -> Error {
        Error::model(self.path, format!("metadata `{key}`: {msg}"))
    }

    /// An integer entry (any integer type), if present.
    fn int(&self, key: &str) -> Result<Option<u64>> {
        self.meta(key)
            .map(|v| integer(v).ok_or_else(|| self.bad_field(key, "not a non-negative integer")))
            .transpose()
    }

    fn required_int(&self, key: &str) -> Result<usize> {
        self.int(key)?
            .map(|v| v as usize)
            .ok_or_else(|| self.bad_field(key, "missing"))
    }

    fn float(&self, key: &str) -> Result<Option<f64>> {
        self.meta(key)
            .map(|v| match v {
                Value::F32(x) => Ok(f64::from(*x)),
                Value::F64(x) => Ok(*x),
                _ => Err(self.bad_field(key, "not a number")),
            })
            .transpose()
    }

    fn string(&self, key: &str) -> Result<Option<String>> {
        self.meta(key)
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(self.bad_field(key, "not a string")),
            })
            .transpose()
    }

    /// The items of the array at `key`, each converted by `item` (`None`: not a `what`).
    fn array<T>(
        &self,
        key: &str,
        what: &str,
        item: impl Fn(&Value) -> Option<T>,
    ) -> Result<Option<Vec<T>>> {
        let Some(v) = self.meta(key) else {
            return Ok(None);
        };
        let Value::Array(items) = v else {
            return Err(self.bad_field(key, "not an array"));
        };
        items
            .iter()
            .map(|i| item(i).ok_or_else(|| self.bad_field(key, &format!("holds a non-{what}"))))
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<String>>> {
        self.array(key, "string", |i| match i {
            Value::String(s) => Some(s.clone()),
            _ => None,
        })
    }

    /// An array of integers (`tokenizer.ggml.token_type`: 1 normal, 3 control, 4 user-defined).
    fn ints(&self, key: &str) -> Result<Option<Vec<i32>>> {
        self.array(key, "integer", |i| match i {
            Value::I32(x) => Some(*x),
            Value::U32(x) => i32::try_from(*x).ok(),
            Value::I8(x) => Some(i32::from(*x)),
            Value::U8(x) => Some(i32::from(*x)),
            Value::I16(x) => Some(i32::from(*x)),
            Value::U16(x) => Some(i32::from(*x)),
            _ => None,
        })
    }

    fn flag(&self, key: &str) -> Result<Option<bool>> {
        self.meta(key)
            .map(|v| match v {
                Value::Bool(b) => Ok(*b),
                _ => Err(self.bad_field(key, "not a boolean")),
            })
            .transpose()
    }

    fn token_id(&self, key: &str) -> Result<Option<u32>> {
        Ok(self.int(key)?.map(|v| v as u32))
    }

    fn vocab(&self) -> Result<GgufVocab> {
        let model = self.string("tokenizer.ggml.model")?.ok_or_else(|| {
            self.bad_field(
                "tokenizer.ggml.model",
                "missing (no tokenizer in this file)",
            )
        })?;
        Ok(GgufVocab {
            model,
            pre: self.string("tokenizer.ggml.pre")?,
            tokens: self
                .strings("tokenizer.ggml.tokens")?
                .ok_or_else(|| self.bad_field("tokenizer.ggml.tokens", "missing"))?,
            merges: self.strings("tokenizer.ggml.merges")?.unwrap_or_default(),
            bos_id: self.token_id("tokenizer.ggml.bos_token_id")?,
            eos_id: self.token_id("tokenizer.ggml.eos_token_id")?,
            pad_id: self.token_id("tokenizer.ggml.padding_token_id")?,
            token_types: self.ints("tokenizer.ggml.token_type")?.unwrap_or_default(),
            add_bos: self.flag("tokenizer.ggml.add_bos_token")?.unwrap_or(false),
        })
    }

    /// The config the `llama.*` metadata describes.
    fn config(&self) -> Result<LlamaConfig> {
        let arch = self.string("general.architecture")?.unwrap_or_default();
        if arch != "llama" {
            return Err(self.bad_field(
                "general.architecture",
                &format!("`{arch}` is not supported (llama)"),
            ));
        }
        let heads = self.required_int("llama.attention.head_count")?;
        let hidden = self.required_int("llama.embedding_length")?;
        let embed = self
            .content
            .tensor_infos
            .get("token_embd.weight")
            .ok_or_else(|| missing(self.path, "token_embd.weight"))?;
        let vocab = embed.shape.dims().first().copied().unwrap_or(0);
        if let Some(rope_dims) = self.int("llama.rope.dimension_count")?
            && heads > 0
            && rope_dims as usize != hidden / heads
        {
            return Err(self.bad_field(
                "llama.rope.dimension_count",
                &format!(
                    "partial rotary embeddings ({rope_dims} of {}) are not supported",
                    hidden / heads
                ),
            ));
        }
        let mut config = LlamaConfig {
            model_type: "llama".into(),
            hidden_size: hidden,
            intermediate_size: self.required_int("llama.feed_forward_length")?,
            num_hidden_layers: self.required_int("llama.block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: self
                .int("llama.attention.head_count_kv")?
                .map(|v| v as usize),
            rms_norm_eps: self
                .float("llama.attention.layer_norm_rms_epsilon")?
                .unwrap_or(1e-5),
            rope_theta: self.float("llama.rope.freq_base")?.unwrap_or(10_000.0),
            vocab_size: vocab,
            max_position_embeddings: self
                .int("llama.context_length")?
                .map_or(2048, |v| v as usize),
            tie_word_embeddings: !self.content.tensor_infos.contains_key("output.weight"),
            bos_token_id: self.token_id("tokenizer.ggml.bos_token_id")?,
            eos_token_id: self
                .token_id("tokenizer.ggml.eos_token_id")?
                .map(EosTokens::One),
            pad_token_id: self.token_id("tokenizer.ggml.padding_token_id")?,
            hidden_act: "silu".into(),
            rope_scaling: None,
        };
        // Ids beyond the embedding table (seen in some conversions) cannot be generated or fed.
        for id in [&mut config.bos_token_id, &mut config.pad_token_id] {
            if id.is_some_and(|i| i as usize >= vocab) {
                *id = None;
            }
        }
        if config
            .eos_token_id
            .as_ref()
            .is_some_and(|e| e.ids().iter().any(|&i| i as usize >= vocab))
        {
            config.eos_token_id = None;
        }
        config.validate(self.path)?;
        Ok(config)
    }

    /// Tensor `name` dequantized to f32, checked against `shape`.
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let info = self
            .content
            .tensor_infos
            .get(name)
            .ok_or_else(|| missing(self.path, name))?;
        if info.shape.dims() != shape {
            return Err(Error::model(
                self.path,
                format!(
                    "tensor `{name}` has shape {:?}, the metadata needs {shape:?}",
                    info.shape.dims()
                ),
            ));
        }
        info.read(
            &mut self.reader,
            self.content.tensor_data_offset,
            &Device::Cpu,
        )
        .and_then(|q| q.dequantize(&Device::Cpu))
        .map_err(|e| {
            Error::model(
                self.path,
                format!("tensor `{name}` ({:?}): {e}", info.ggml_dtype),
            )
        })
    }
}

fn integer(v: &Value) -> Option<u64> {
    match v {
        Value::U8(x) => Some(u64::from(*x)),
        Value::U16(x) => Some(u64::from(*x)),
        Value::U32(x) => Some(u64::from(*x)),
        Value::U64(x) => Some(*x),
        Value::I8(x) => u64::try_from(*x).ok(),
        Value::I16(x) => u64::try_from(*x).ok(),
        Value::I32(x) => u64::try_from(*x).ok(),
        Value::I64(x) => u64::try_from(*x).ok(),
        _ => None,
    }
}

fn missing(path: &Path, name: &str) -> Error {
    Error::model(path, format!("tensor `{name}` is missing"))
}

fn unsupported(path: &Path, name: &str, type_id: u32) -> Error {
    let kind = ggml_type_name(type_id).map_or_else(|| format!("ggml type {type_id}"), String::from);
    Error::model(
        path,
        format!(
            "tensor `{name}` is stored as {kind}, which cannot be dequantized here \
             (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q8_K)"
        ),
    )
}

/// Undoes llama.cpp's row permutation of `attn_q`/`attn_k` (`[heads, 2, d/2]` rows stored as
/// `[heads, d/2, 2]`, pairing neighbours for the interleaved rope): back to "rotate_half".
fn unpermute(w: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (out, inp) = w.dims2()?;
    let half = out / heads / 2;
    w.reshape((heads, half, 2, inp))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((out, inp))
}

/// The tokenizer metadata of a GGUF file.
pub fn read_gguf_vocab(path: &Path) -> Result<GgufVocab> {
    Gguf::open(path)?.vocab()
}

impl DecoderModel {
    /// A LLaMA-architecture model from a GGUF file, every tensor dequantized to f32.
    pub fn load_gguf(path: &Path, device: &Device) -> Result<Arc<DecoderModel>> {
        let mut gguf = Gguf::open(path)?;
        let config = gguf.config()?;
        let mut tensors = HashMap::new();
        for (hf, shape) in weight_shapes(&config) {
            let name = gguf_name(&hf);
            let mut t = gguf.tensor(&name, &shape)?;
            let heads = if hf.ends_with("self_attn.q_proj.weight") {
                Some(config.num_attention_heads)
            } else if hf.ends_with("self_attn.k_proj.weight") {
                Some(config.kv_heads())
            } else {
                None
            };
            if let Some(heads) = heads {
                t = unpermute(&t, heads)
                    .map_err(|e| Error::model(path, format!("tensor `{name}`: {e}")))?;
            }
            let t = t
                .to_device(device)
                .map_err(|e| Error::model(path, format!("tensor `{name}`: {e}")))?;
            tensors.insert(hf, t);
        }
        let label = path.to_string_lossy();
        let weights = WeightFile::from_map(&label, PREFIX, tensors);
        DecoderModel::from_weights(config, &weights, device).map(Arc::new)
    }
}
