//! The GGUF loader against the same tensors saved as a Hugging Face folder: config from the
//! metadata, llama.cpp's q/k row permutation undone, quantised tensors dequantized as candle
//! does, the tokenizer metadata as plain data, and errors that name the file and tensor.

mod common;
mod decoder_common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use common::max_diff;
use decoder_common::{model, tiny, tiny_tied};
use fedsa_adapters::{DecoderModel, LlamaConfig, read_gguf_vocab};

/// llama.cpp's `permute` in convert_hf_to_gguf.py: rows `[heads, 2, d/2]` → `[heads, d/2, 2]`.
fn llama_cpp_permute(w: &Tensor, heads: usize) -> Tensor {
    let (out, inp) = w.dims2().unwrap();
    w.reshape((heads, 2, out / heads / 2, inp))
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .contiguous()
        .unwrap()
        .reshape((out, inp))
        .unwrap()
}

fn gguf_name(hf: &str) -> String {
    let short = [
        ("self_attn.q_proj", "attn_q"),
        ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"),
        ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"),
        ("input_layernorm", "attn_norm"),
        ("post_attention_layernorm", "ffn_norm"),
    ];
    match hf {
        "model.embed_tokens.weight" => "token_embd.weight".into(),
        "model.norm.weight" => "output_norm.weight".into(),
        "lm_head.weight" => "output.weight".into(),
        _ => {
            let rest = hf.strip_prefix("model.layers.").unwrap();
            let (layer, module) = rest.split_once('.').unwrap();
            let module = module.strip_suffix(".weight").unwrap();
            let s = short.iter().find(|(h, _)| *h == module).unwrap().1;
            format!("blk.{layer}.{s}.weight")
        }
    }
}

/// Writes `m` as llama.cpp would: permuted q/k rows, `dtype_of(gguf name)` per tensor.
fn write_gguf(
    path: &Path,
    config: &LlamaConfig,
    m: &DecoderModel,
    dtype_of: &dyn Fn(&str) -> GgmlDType,
) {
    let mut tensors = Vec::new();
    for (hf, t) in m.named_tensors() {
        let name = gguf_name(&hf);
        let t = if name.contains("attn_q") {
            llama_cpp_permute(&t, config.num_attention_heads)
        } else if name.contains("attn_k") {
            llama_cpp_permute(&t, config.kv_heads())
        } else {
            t
        };
        let dtype = if t.rank() == 1 {
            GgmlDType::F32
        } else {
            dtype_of(&name)
        };
        tensors.push((name, QTensor::quantize(&t, dtype).unwrap()));
    }
    let tokens: Vec<Value> = (0..config.vocab_size)
        .map(|i| Value::String(format!("t{i}")))
        .collect();
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        (
            "llama.embedding_length",
            Value::U32(config.hidden_size as u32),
        ),
        (
            "llama.block_count",
            Value::U32(config.num_hidden_layers as u32),
        ),
        (
            "llama.attention.head_count",
            Value::U32(config.num_attention_heads as u32),
        ),
        (
            "llama.attention.head_count_kv",
            Value::U32(config.kv_heads() as u32),
        ),
        (
            "llama.feed_forward_length",
            Value::U32(config.intermediate_size as u32),
        ),
        ("llama.rope.freq_base", Value::F32(config.rope_theta as f32)),
        (
            "llama.rope.dimension_count",
            Value::U32(config.head_dim() as u32),
        ),
        (
            "llama.attention.layer_norm_rms_epsilon",
            Value::F32(config.rms_norm_eps as f32),
        ),
        (
            "llama.context_length",
            Value::U32(config.max_position_embeddings as u32),
        ),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("smollm".into())),
        ("tokenizer.ggml.tokens", Value::Array(tokens)),
        (
            "tokenizer.ggml.merges",
            Value::Array(vec![Value::String("t 1".into())]),
        ),
        ("tokenizer.ggml.bos_token_id", Value::U32(1)),
        ("tokenizer.ggml.eos_token_id", Value::U32(2)),
    ];
    let meta: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let qs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, q)| (n.as_str(), q)).collect();
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &meta, &qs).unwrap();
}

fn tensors(m: &DecoderModel) -> HashMap<String, Tensor> {
    m.named_tensors().into_iter().collect()
}

fn logits(m: &DecoderModel) -> Tensor {
    let ids = [1u32, 9, 77, 3, 120];
    let input = m.inputs(&ids, None, 1, ids.len()).unwrap();
    let h = m.forward(&input, None, &mut |_, _, _, y, _| Ok(y)).unwrap();
    m.logits(&h).unwrap()
}

#[test]
fn f32_gguf_equals_the_safetensors_model_after_unpermuting() {
    for config in [tiny(), tiny_tied()] {
        let m = model(&config);
        let dir = tempfile::tempdir().unwrap();
        let gguf = dir.path().join("m.gguf");
        write_gguf(&gguf, &config, &m, &|_| GgmlDType::F32);
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::to_string(&config).unwrap(),
        )
        .unwrap();
        candle_core::safetensors::save(&tensors(&m), dir.path().join("model.safetensors")).unwrap();
        let from_st = DecoderModel::load(dir.path(), &Device::Cpu).unwrap();
        let from_gguf = DecoderModel::load_gguf(&gguf, &Device::Cpu).unwrap();
        let c = from_gguf.config();
        assert_eq!(
            (
                c.hidden_size,
                c.num_hidden_layers,
                c.num_attention_heads,
                c.kv_heads()
            ),
            (64, 2, 4, 2)
        );
        assert_eq!(
            (c.vocab_size, c.intermediate_size, c.tie_word_embeddings),
            (128, 96, config.tie_word_embeddings)
        );
        assert_eq!((c.bos_token_id, c.eos_ids()), (Some(1), vec![2]));
        let (a, b) = (tensors(&from_st), tensors(&from_gguf));
        assert_eq!(a.len(), b.len());
        for (name, t) in &a {
            assert_eq!(max_diff(t, &b[name]), 0.0, "{name}");
        }
        assert!(max_diff(&logits(&from_st), &logits(&from_gguf)) < 1e-6);
    }
}

#[test]
fn quantised_tensors_dequantize_as_candle_does() {
    let config = tiny();
    let m = model(&config);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.gguf");
    let dtype_of = |name: &str| {
        if name.contains("attn_q") || name.contains("ffn") {
            GgmlDType::Q4_1
        } else if name.contains("attn_k") || name.contains("token_embd") {
            GgmlDType::Q8_0
        } else {
            GgmlDType::F16
        }
    };
    write_gguf(&path, &config, &m, &dtype_of);
    let loaded = DecoderModel::load_gguf(&path, &Device::Cpu).unwrap();
    let ours = tensors(&loaded);
    for (hf, t) in m.named_tensors() {
        let name = gguf_name(&hf);
        let dtype = if t.rank() == 1 {
            GgmlDType::F32
        } else {
            dtype_of(&name)
        };
        // Quantisation blocks run along rows, so permuting rows commutes with it.
        let expected = QTensor::quantize(&t, dtype)
            .unwrap()
            .dequantize(&Device::Cpu)
            .unwrap();
        assert_eq!(max_diff(&ours[&hf], &expected), 0.0, "{hf} ({dtype:?})");
        if dtype == GgmlDType::Q4_1 {
            assert!(max_diff(&ours[&hf], &t) > 0.0, "{hf} should be lossy");
        }
    }
    let d = max_diff(&logits(&loaded), &logits(&m));
    println!("Q4_1/Q8_0 logits differ by {d}");
    assert!(d < 0.05, "{d}");
}

#[test]
fn tokenizer_metadata_is_plain_data() {
    let config = tiny();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.gguf");
    write_gguf(&path, &config, &model(&config), &|_| GgmlDType::F32);
    let vocab = read_gguf_vocab(&path).unwrap();
    assert_eq!(vocab.model, "gpt2");
    assert_eq!(vocab.pre.as_deref(), Some("smollm"));
    assert_eq!(vocab.tokens.len(), 128);
    assert_eq!(vocab.tokens[5], "t5");
    assert_eq!(vocab.merges, vec!["t 1".to_string()]);
    assert_eq!(
        (vocab.bos_id, vocab.eos_id, vocab.pad_id),
        (Some(1), Some(2), None)
    );
}

/// Rewrites the ggml type id of tensor `name` in a GGUF header.
fn set_type_id(path: &Path, name: &str, id: u32) {
    let mut bytes = std::fs::read(path).unwrap();
    let mut key = (name.len() as u64).to_le_bytes().to_vec();
    key.extend_from_slice(name.as_bytes());
    let at = bytes
        .windows(key.len())
        .position(|w| w == key.as_slice())
        .unwrap()
        + key.len();
    let dims = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let type_at = at + 4 + 8 * dims;
    bytes[type_at..type_at + 4].copy_from_slice(&id.to_le_bytes());
    std::fs::write(path, bytes).unwrap();
}

fn gguf_err(path: &Path) -> String {
    match DecoderModel::load_gguf(path, &Device::Cpu) {
        Ok(_) => panic!("loading {} should fail", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unsupported_types_and_missing_tensors_name_file_and_tensor() {
    let config = tiny();
    let m = model(&config);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("iq.gguf");
    write_gguf(&path, &config, &m, &|_| GgmlDType::F32);
    // 23 is llama.cpp's IQ4_XS, which candle cannot read.
    set_type_id(&path, "blk.1.ffn_up.weight", 23);
    let e = gguf_err(&path);
    assert!(
        e.contains("iq.gguf") && e.contains("blk.1.ffn_up.weight") && e.contains("IQ4_XS"),
        "{e}"
    );

    let smaller = LlamaConfig {
        num_hidden_layers: 1,
        ..config.clone()
    };
    let path = dir.path().join("short.gguf");
    write_gguf(&path, &smaller, &model(&smaller), &|_| GgmlDType::F32);
    // Claim two blocks in a file that has one.
    let mut bytes = std::fs::read(&path).unwrap();
    let key = b"llama.block_count";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len() + 4;
    bytes[at..at + 4].copy_from_slice(&2u32.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    let e = gguf_err(&path);
    assert!(
        e.contains("short.gguf") && e.contains("blk.1.attn_q.weight"),
        "{e}"
    );
}
