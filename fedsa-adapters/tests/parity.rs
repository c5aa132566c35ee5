//! Forward parity with candle-transformers' BERT and XLM-RoBERTa (reference implementations of
//! the Hugging Face models) on tiny random weights, and on the bundled MiniLM when present.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{bert, xlm_roberta};
use common::max_diff;
use fedsa_adapters::adapter::ForwardCtx;
use fedsa_adapters::model::ClientModel;
use fedsa_adapters::{AdapterSpec, BaseModel, EncoderConfig};
use fedsa_core::Batch;

fn batch(pad: u32) -> Batch {
    let a = fedsa_core::EncodedExample {
        input_ids: vec![2, 9, 17, 33, 5, 3],
        type_ids: vec![0, 0, 0, 1, 1, 1],
        label: 0,
    };
    let b = fedsa_core::EncodedExample {
        input_ids: vec![2, 12, 3],
        type_ids: vec![0, 0, 0],
        label: 1,
    };
    Batch::pad(&[&a, &b], pad)
}

fn tensors(base: &BaseModel) -> HashMap<String, Tensor> {
    base.named_tensors().into_iter().collect()
}

fn bert_reference(config: &EncoderConfig, base: &BaseModel) -> bert::BertModel {
    let cfg: bert::Config = serde_json::from_value(serde_json::json!({
        "vocab_size": config.vocab_size, "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers,
        "num_attention_heads": config.num_attention_heads,
        "intermediate_size": config.intermediate_size, "hidden_act": config.hidden_act,
        "hidden_dropout_prob": 0.1, "max_position_embeddings": config.max_position_embeddings,
        "type_vocab_size": config.type_vocab_size, "initializer_range": 0.02,
        "layer_norm_eps": config.layer_norm_eps, "pad_token_id": config.pad_token_id,
        "model_type": "bert"
    }))
    .unwrap();
    let vb = VarBuilder::from_tensors(tensors(base), DType::F32, &Device::Cpu);
    bert::BertModel::load(vb, &cfg).unwrap()
}

fn ours(base: &BaseModel, batch: &Batch) -> Tensor {
    let input = base.inputs(batch).unwrap();
    base.forward(&input, &mut |_, _, _, y, _| Ok(y)).unwrap()
}

fn bert_theirs(model: &bert::BertModel, batch: &Batch) -> Tensor {
    let shape = (batch.batch, batch.seq_len);
    let ids = Tensor::from_slice(&batch.input_ids, shape, &Device::Cpu).unwrap();
    let types = Tensor::from_slice(&batch.type_ids, shape, &Device::Cpu).unwrap();
    let mask = Tensor::from_slice(&batch.attention_mask, shape, &Device::Cpu).unwrap();
    model.forward(&ids, &types, Some(&mask)).unwrap()
}

#[test]
fn bert_matches_candle_transformers() {
    let config = common::tiny_bert();
    let base = common::base(&config);
    let batch = batch(base.pad_token_id());
    let d = max_diff(
        &ours(&base, &batch),
        &bert_theirs(&bert_reference(&config, &base), &batch),
    );
    assert!(d < 1e-4, "max difference {d}");
}

#[test]
fn bert_with_zero_init_adapters_matches_candle_transformers() {
    let config = common::tiny_bert();
    let base = common::base(&config);
    let batch = batch(base.pad_token_id());
    let reference = bert_theirs(&bert_reference(&config, &base), &batch);
    for kind in ["lora", "rslora", "vera"] {
        let mut cfg = common::adapter(kind);
        cfg.target_modules = vec!["query".into(), "value".into(), "dense".into()];
        let spec = AdapterSpec::builtin(kind, &cfg).unwrap();
        let model = ClientModel::new(base.clone(), &spec, &cfg, 2, 1).unwrap();
        let out = model.encode(&batch, &mut ForwardCtx::eval()).unwrap();
        let d = max_diff(&out, &reference);
        assert!(d < 1e-4, "{kind}: max difference {d}");
    }
}

#[test]
fn roberta_matches_candle_transformers() {
    let config = common::tiny_roberta();
    let base = common::base(&config);
    let batch = batch(base.pad_token_id());
    let cfg = xlm_roberta::Config {
        hidden_size: config.hidden_size,
        layer_norm_eps: config.layer_norm_eps,
        attention_probs_dropout_prob: 0.1,
        hidden_dropout_prob: 0.1,
        num_attention_heads: config.num_attention_heads,
        position_embedding_type: "absolute".into(),
        intermediate_size: config.intermediate_size,
        hidden_act: candle_nn::Activation::Gelu,
        num_hidden_layers: config.num_hidden_layers,
        vocab_size: config.vocab_size,
        max_position_embeddings: config.max_position_embeddings,
        type_vocab_size: config.type_vocab_size,
        pad_token_id: config.pad_token_id,
    };
    let vb = VarBuilder::from_tensors(tensors(&base), DType::F32, &Device::Cpu);
    let reference = xlm_roberta::XLMRobertaModel::new(&cfg, vb).unwrap();
    let shape = (batch.batch, batch.seq_len);
    let ids = Tensor::from_slice(&batch.input_ids, shape, &Device::Cpu).unwrap();
    let types = Tensor::zeros(shape, DType::U32, &Device::Cpu).unwrap();
    let mask = Tensor::from_slice(&batch.attention_mask, shape, &Device::Cpu).unwrap();
    let theirs = reference
        .forward(&ids, &mask, &types, None, None, None)
        .unwrap();
    // Token types from the data are ignored by a single-type model, as in transformers.
    let d = max_diff(&ours(&base, &batch), &theirs);
    assert!(d < 1e-4, "max difference {d}");
}

#[test]
fn bundled_minilm_matches_candle_transformers() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/all-MiniLM-L6-v2");
    if !dir.join("model.safetensors").exists() {
        println!(
            "skipped: {} is absent (the data issue fetches it)",
            dir.display()
        );
        return;
    }
    let base = BaseModel::load(&dir, &Device::Cpu).unwrap();
    let config = base.config().clone();
    assert_eq!((config.hidden_size, config.num_hidden_layers), (384, 6));
    assert!(
        base.pretrained_head("pooler.dense.weight").is_some(),
        "the pooler ships with MiniLM"
    );
    let st = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let cfg: bert::Config =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let reference =
        bert::BertModel::load(VarBuilder::from_tensors(st, DType::F32, &Device::Cpu), &cfg)
            .unwrap();
    let batch = batch(base.pad_token_id());
    let d = max_diff(&ours(&base, &batch), &bert_theirs(&reference, &batch));
    println!("MiniLM max difference {d}");
    assert!(d < 1e-4, "max difference {d}");
}
