//! Bad model folders and adapter configs give errors that name the file, tensor or field.

mod common;

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use fedsa_adapters::model::ClientModel;
use fedsa_adapters::{AdapterSpec, BaseModel};

fn write_model(dir: &std::path::Path, mutate: impl FnOnce(&mut HashMap<String, Tensor>)) {
    let config = common::tiny_bert();
    let base = common::base(&config);
    let mut tensors: HashMap<String, Tensor> = base
        .named_tensors()
        .into_iter()
        .map(|(n, t)| (format!("bert.{n}"), t))
        .collect();
    mutate(&mut tensors);
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string(&config).unwrap(),
    )
    .unwrap();
}

fn load_err(dir: &std::path::Path) -> String {
    match BaseModel::load(dir, &Device::Cpu) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn prefixed_weights_load_and_match_the_source() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), |_| {});
    let loaded = BaseModel::load(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(loaded.config(), &common::tiny_bert());
    assert_eq!(
        loaded.named_tensors().len(),
        common::base(&common::tiny_bert()).named_tensors().len()
    );
}

#[test]
fn missing_and_truncated_weights_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), |_| {});
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(dir.path());
    assert!(
        e.contains("model.safetensors") && e.contains("truncated"),
        "{e}"
    );
    std::fs::remove_file(&path).unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("model.safetensors"), "{e}");
}

#[test]
fn wrong_shape_and_missing_tensor_name_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), |t| {
        t.insert(
            "bert.encoder.layer.1.attention.self.key.weight".into(),
            Tensor::zeros((32, 31), candle_core::DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let e = load_err(dir.path());
    assert!(
        e.contains("model.safetensors")
            && e.contains("encoder.layer.1.attention.self.key.weight")
            && e.contains("[32, 31]"),
        "{e}"
    );
    write_model(dir.path(), |t| {
        t.remove("bert.encoder.layer.0.output.LayerNorm.bias");
    });
    let e = load_err(dir.path());
    assert!(
        e.contains("encoder.layer.0.output.LayerNorm.bias") && e.contains("missing"),
        "{e}"
    );
}

#[test]
fn unknown_model_type_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), |_| {});
    let mut config = common::tiny_bert();
    config.model_type = "gpt2".into();
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_string(&config).unwrap(),
    )
    .unwrap();
    let e = load_err(dir.path());
    assert!(
        e.contains("config.json") && e.contains("model_type") && e.contains("gpt2"),
        "{e}"
    );
}

#[test]
fn unmatched_target_and_rank_zero_are_named() {
    let base = common::base(&common::tiny_bert());
    let mut cfg = common::adapter("lora");
    cfg.target_modules = vec!["query".into(), "qkv_proj".into()];
    let spec = AdapterSpec::builtin("lora", &common::adapter("lora")).unwrap();
    let e = ClientModel::new(base.clone(), &spec, &cfg, 2, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("adapter.target_modules") && e.contains("qkv_proj"),
        "{e}"
    );
    cfg.target_modules = vec!["query".into()];
    cfg.rank = 0;
    let e = ClientModel::new(base, &spec, &cfg, 2, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("adapter.rank"), "{e}");
}

#[test]
fn out_of_range_tokens_are_errors_not_panics() {
    let base = common::base(&common::tiny_bert());
    let ex = fedsa_core::EncodedExample {
        input_ids: vec![2, 999],
        type_ids: vec![0, 0],
        label: 0,
    };
    let e = base
        .inputs(&fedsa_core::Batch::pad(&[&ex], 0))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("999"), "{e}");
}
