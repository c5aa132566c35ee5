//! A tiny random LLaMA-architecture model folder (`config.json`, `model.safetensors`,
//! `tokenizer.json` with a byte-level BPE over single bytes) and generation run configs over
//! the bundled arithmetic problems, so a whole generation federation runs in seconds.

use std::path::{Path, PathBuf};

use fedsa_core::{ParamSet, SeededRng};

use crate::fixtures::toml_path;

/// Tiny decoder shape: grouped-query attention (4 query heads share 2 key/value heads).
pub const HIDDEN: usize = 32;
pub const LAYERS: usize = 2;
pub const HEADS: usize = 4;
pub const KV_HEADS: usize = 2;
pub const INTERMEDIATE: usize = 64;
pub const MAX_POSITIONS: usize = 512;
/// 256 byte tokens, then the end-of-text token.
pub const VOCAB: usize = 257;
pub const EOS: u32 = 256;
const EOS_TOKEN: &str = "<|endoftext|>";

/// GPT-2's byte-to-character table: printable bytes stand for themselves, the others are
/// shifted past 255 so every byte is a visible character of the byte-level vocabulary.
fn byte_chars() -> Vec<char> {
    let printable = |b: u32| {
        (u32::from(b'!')..=u32::from(b'~')).contains(&b)
            || (0xA1..=0xAC).contains(&b)
            || (0xAE..=0xFF).contains(&b)
    };
    let mut shifted = 0;
    (0..256u32)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).expect("a Latin-1 character")
            } else {
                shifted += 1;
                char::from_u32(255 + shifted).expect("a shifted character")
            }
        })
        .collect()
}

/// Writes the tiny model folder into `dir`.
pub fn write_tiny_llama(dir: &Path, seed: u64) -> PathBuf {
    std::fs::create_dir_all(dir).expect("model dir");
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "vocab_size": VOCAB,
        "max_position_embeddings": MAX_POSITIONS,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": true,
        "bos_token_id": EOS,
        "eos_token_id": EOS,
        "hidden_act": "silu",
    });
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config).expect("json"),
    )
    .expect("config.json");
    let mut rng = SeededRng::new(seed);
    let mut p = ParamSet::new();
    let mut put = |name: String, shape: Vec<usize>, std: f32| {
        let n: usize = shape.iter().product();
        let data = if std == 0.0 {
            vec![1.0; n]
        } else {
            (0..n)
                .map(|_| ((rng.next_f64() * 2.0 - 1.0) * 1.732) as f32 * std)
                .collect()
        };
        p.insert(name, shape, data).expect("tensor");
    };
    let kv = HIDDEN / HEADS * KV_HEADS;
    put("model.embed_tokens.weight".into(), vec![VOCAB, HIDDEN], 0.5);
    for l in 0..LAYERS {
        let pre = format!("model.layers.{l}");
        put(format!("{pre}.input_layernorm.weight"), vec![HIDDEN], 0.0);
        put(
            format!("{pre}.post_attention_layernorm.weight"),
            vec![HIDDEN],
            0.0,
        );
        for (m, out) in [
            ("q_proj", HIDDEN),
            ("k_proj", kv),
            ("v_proj", kv),
            ("o_proj", HIDDEN),
        ] {
            put(
                format!("{pre}.self_attn.{m}.weight"),
                vec![out, HIDDEN],
                0.2,
            );
        }
        for m in ["gate_proj", "up_proj"] {
            put(
                format!("{pre}.mlp.{m}.weight"),
                vec![INTERMEDIATE, HIDDEN],
                0.2,
            );
        }
        put(
            format!("{pre}.mlp.down_proj.weight"),
            vec![HIDDEN, INTERMEDIATE],
            0.2,
        );
    }
    put("model.norm.weight".into(), vec![HIDDEN], 0.0);
    fedsa_core::io::save_params(&dir.join("model.safetensors"), &p).expect("weights");
    write_byte_tokenizer(&dir.join("tokenizer.json"));
    dir.to_path_buf()
}

/// A byte-level BPE `tokenizer.json` with no merges: one token per byte, plus end-of-text.
fn write_byte_tokenizer(path: &Path) {
    let vocab: serde_json::Map<String, serde_json::Value> = byte_chars()
        .into_iter()
        .enumerate()
        .map(|(i, c)| (c.to_string(), serde_json::json!(i)))
        .chain([(EOS_TOKEN.to_string(), serde_json::json!(EOS))])
        .collect();
    let tok = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [{"id": EOS, "content": EOS_TOKEN, "single_word": false,
            "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
            "use_regex": true},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
            "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false,
            "byte_fallback": false, "vocab": vocab, "merges": []}
    });
    std::fs::write(path, serde_json::to_string_pretty(&tok).expect("json")).expect("tokenizer");
}

/// A generation run over the tiny model: arithmetic problems, 3 clients, 2 rounds.
pub fn tiny_generation_toml(model: &Path, output_dir: &Path, name: &str, strategy: &str) -> String {
    format!(
        r#"name = "{name}"
seed = 11
output_dir = "{out}"

[task]
kind = "generation"
max_new_tokens = 6

[model]
path = "{model}"
max_length = 200

[data]
format = "arithmetic"
max_examples = 90
test_fraction = 0.1

[partition]
kind = "dirichlet"
alpha = 0.5
min_examples = 12

[federation]
num_clients = 3
clients_per_round = 3
rounds = 2

[training]
local_steps = 3
batch_size = 4
eval_batch_size = 4
lr = 0.01

[adapter]
kind = "lora"
rank = 4
alpha = 8
dropout = 0.0
target_modules = ["q_proj", "v_proj"]

[strategy]
name = "{strategy}"
"#,
        out = toml_path(output_dir),
        model = toml_path(model),
    )
}
