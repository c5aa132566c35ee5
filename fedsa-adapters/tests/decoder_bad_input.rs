//! Bad decoder folders and adapter targets give errors that name the file, tensor or field.

mod common;
mod decoder_common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use decoder_common::{model, tiny};
use fedsa_adapters::{AdapterSpec, DecoderClient, DecoderModel};

fn write_folder(
    dir: &Path,
    json: &serde_json::Value,
    mutate: impl FnOnce(&mut HashMap<String, Tensor>),
) {
    let mut tensors: HashMap<String, Tensor> = model(&tiny()).named_tensors().into_iter().collect();
    mutate(&mut tensors);
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("config.json"), json.to_string()).unwrap();
}

fn load_err(dir: &Path) -> String {
    match DecoderModel::load(dir, &Device::Cpu) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn config_json() -> serde_json::Value {
    serde_json::to_value(tiny()).unwrap()
}

#[test]
fn unknown_model_type_names_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut json = config_json();
    json["model_type"] = "gpt2".into();
    write_folder(dir.path(), &json, |_| {});
    let e = load_err(dir.path());
    assert!(
        e.contains("config.json") && e.contains("model_type") && e.contains("gpt2"),
        "{e}"
    );
}

#[test]
fn missing_and_misshapen_tensors_name_file_and_tensor() {
    let dir = tempfile::tempdir().unwrap();
    write_folder(dir.path(), &config_json(), |t| {
        t.remove("model.layers.1.mlp.up_proj.weight");
    });
    let e = load_err(dir.path());
    assert!(
        e.contains("model.safetensors")
            && e.contains("layers.1.mlp.up_proj.weight")
            && e.contains("missing"),
        "{e}"
    );

    write_folder(dir.path(), &config_json(), |t| {
        t.insert(
            "model.layers.0.self_attn.k_proj.weight".into(),
            Tensor::zeros((64, 64), DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let e = load_err(dir.path());
    assert!(
        e.contains("model.safetensors")
            && e.contains("layers.0.self_attn.k_proj.weight")
            && e.contains("[64, 64]")
            && e.contains("[32, 64]"),
        "{e}"
    );

    // Untied config without an lm_head.
    write_folder(dir.path(), &config_json(), |t| {
        t.remove("lm_head.weight");
    });
    let e = load_err(dir.path());
    assert!(e.contains("lm_head.weight"), "{e}");

    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(dir.path());
    assert!(
        e.contains("model.safetensors") && e.contains("truncated"),
        "{e}"
    );
}

#[test]
fn bad_head_layout_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut json = config_json();
    json["num_key_value_heads"] = 3.into();
    write_folder(dir.path(), &json, |_| {});
    let e = load_err(dir.path());
    assert!(
        e.contains("config.json") && e.contains("num_key_value_heads"),
        "{e}"
    );
}

#[test]
fn unknown_target_lists_the_decoders_modules() {
    let cfg = decoder_common::adapter("lora", &["query"]);
    let spec = AdapterSpec::builtin("lora", &cfg).unwrap();
    let e = match DecoderClient::new(model(&tiny()), &spec, &cfg, 1) {
        Ok(_) => panic!("`query` is not a decoder module"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("target_modules")
            && e.contains("q_proj")
            && e.contains("down_proj")
            && !e.contains("intermediate"),
        "{e}"
    );
}
