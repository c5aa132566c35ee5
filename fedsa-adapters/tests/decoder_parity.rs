//! Forward parity with candle-transformers' LLaMA (a reference implementation of the Hugging
//! Face model) on tiny random weights, at every position; padding and zero-initialised
//! adapters change nothing; a Hugging Face folder (single file or shards) loads the same model.

mod common;
mod decoder_common;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::llama;
use common::max_diff;
use decoder_common::{model, tiny, tiny_tied};
use fedsa_adapters::adapter::ForwardCtx;
use fedsa_adapters::{AdapterSpec, DecoderClient, DecoderModel, LlamaConfig};

const IDS: [u32; 7] = [1, 17, 99, 5, 63, 127, 40];

fn ours(model: &DecoderModel, ids: &[u32]) -> Tensor {
    let input = model.inputs(ids, None, 1, ids.len()).unwrap();
    let hidden = model
        .forward(&input, None, &mut |_, _, _, y, _| Ok(y))
        .unwrap();
    model.logits(&hidden).unwrap().squeeze(0).unwrap()
}

/// candle-transformers returns the last position's logits: run it on every prefix.
fn theirs(config: &LlamaConfig, model: &DecoderModel, ids: &[u32]) -> Tensor {
    let json = serde_json::to_value(config).unwrap();
    let cfg: llama::LlamaConfig = serde_json::from_value(json).unwrap();
    let cfg = cfg.into_config(false);
    let tensors: HashMap<String, Tensor> = model.named_tensors().into_iter().collect();
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    let reference = llama::Llama::load(vb, &cfg).unwrap();
    let rows: Vec<Tensor> = (1..=ids.len())
        .map(|t| {
            let mut cache = llama::Cache::new(false, DType::F32, &cfg, &Device::Cpu).unwrap();
            let x = Tensor::new(&ids[..t], &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            reference
                .forward(&x, 0, &mut cache)
                .unwrap()
                .squeeze(0)
                .unwrap()
        })
        .collect();
    Tensor::stack(&rows, 0).unwrap()
}

#[test]
fn logits_match_candle_transformers_at_every_position() {
    for config in [tiny(), tiny_tied()] {
        let m = model(&config);
        let d = max_diff(&ours(&m, &IDS), &theirs(&config, &m, &IDS));
        println!("tied={}: max difference {d}", config.tie_word_embeddings);
        assert!(d < 1e-4, "max difference {d}");
    }
}

#[test]
fn right_padding_does_not_change_real_positions() {
    let m = model(&tiny());
    let short = &IDS[..4];
    let mut ids = IDS.to_vec();
    ids.extend_from_slice(short);
    ids.extend_from_slice(&[0, 0, 0]);
    let mask: Vec<u32> = [1u32; 7].into_iter().chain([1, 1, 1, 1, 0, 0, 0]).collect();
    let input = m.inputs(&ids, Some(&mask), 2, 7).unwrap();
    let hidden = m.forward(&input, None, &mut |_, _, _, y, _| Ok(y)).unwrap();
    let logits = m.logits(&hidden).unwrap();
    let row1 = logits.get(1).unwrap().narrow(0, 0, 4).unwrap();
    assert!(max_diff(&logits.get(0).unwrap(), &ours(&m, &IDS)) < 1e-5);
    assert!(max_diff(&row1, &ours(&m, short)) < 1e-5);
}

#[test]
fn zero_initialised_adapters_change_nothing() {
    let config = tiny();
    let m = model(&config);
    let reference = ours(&m, &IDS);
    let all = [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    ];
    for kind in ["lora", "rslora", "vera"] {
        let cfg = decoder_common::adapter(kind, &all);
        let spec = AdapterSpec::builtin(kind, &cfg).unwrap();
        let client = DecoderClient::new(m.clone(), &spec, &cfg, 3).unwrap();
        let input = m.inputs(&IDS, None, 1, IDS.len()).unwrap();
        let hidden = client
            .hidden(&input, None, &mut ForwardCtx::eval())
            .unwrap();
        let logits = m.logits(&hidden).unwrap().squeeze(0).unwrap();
        assert!(max_diff(&logits, &reference) < 1e-6, "{kind}");
        assert_eq!(client.params().names().len(), 2 * 7 * 2, "{kind}");
    }
    // PEFT names: the module path plus the adapter's own.
    let cfg = decoder_common::adapter("lora", &["q_proj", "v_proj"]);
    let spec = AdapterSpec::builtin("lora", &cfg).unwrap();
    let client = DecoderClient::new(m, &spec, &cfg, 3).unwrap();
    assert!(
        client
            .params()
            .names()
            .contains(&"model.layers.0.self_attn.q_proj.lora_A.weight".to_string())
    );
}

fn write_folder(dir: &std::path::Path, config: &LlamaConfig, m: &DecoderModel, shards: bool) {
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string(config).unwrap(),
    )
    .unwrap();
    let tensors: Vec<(String, Tensor)> = m.named_tensors();
    if !shards {
        let map: HashMap<String, Tensor> = tensors.into_iter().collect();
        candle_core::safetensors::save(&map, dir.join("model.safetensors")).unwrap();
        return;
    }
    let mut weight_map = serde_json::Map::new();
    for (i, part) in tensors.chunks(tensors.len().div_ceil(2)).enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", i + 1);
        let map: HashMap<String, Tensor> = part.iter().cloned().collect();
        candle_core::safetensors::save(&map, dir.join(&file)).unwrap();
        for (name, _) in part {
            weight_map.insert(name.clone(), file.clone().into());
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
}

#[test]
fn hugging_face_folders_load_single_and_sharded() {
    for config in [tiny(), tiny_tied()] {
        let m = model(&config);
        for shards in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            write_folder(dir.path(), &config, &m, shards);
            let loaded = DecoderModel::load(dir.path(), &Device::Cpu).unwrap();
            assert_eq!(loaded.config(), &config);
            assert_eq!(max_diff(&ours(&loaded, &IDS), &ours(&m, &IDS)), 0.0);
        }
    }
}
