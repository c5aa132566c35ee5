//! The merged export's weights: each adapted layer's merged weight and bias against
//! `W0 + s·B·A` computed by hand, on a tiny encoder and on one of MiniLM's width (384, where
//! the forward takes its blocked kernels).

mod common;

use candle_core::{Device, Tensor};
use fedsa_adapters::{AdapterSpec, BaseModel, EncoderConfig, LocalTrainer};
use fedsa_core::{ClientTrainer, ParamSet, Role, SeededRng};

fn check(config: &EncoderConfig) {
    let base = BaseModel::random(config, 7, &Device::Cpu).unwrap();
    let mut cfg = common::adapter("lora");
    cfg.target_modules = vec!["query".into(), "value".into()];
    let spec = AdapterSpec::builtin("lora", &cfg).unwrap();
    let data = common::examples(4, 1);
    let mut t = LocalTrainer::new(
        0,
        base.clone(),
        &spec,
        &cfg,
        &common::training(),
        2,
        data.clone(),
        data,
        5,
        1,
    )
    .unwrap();
    // Non-zero B everywhere, so the product is not zero.
    let mut rng = SeededRng::new(3);
    let roles = t.roles();
    let b_names: Vec<String> = roles
        .iter()
        .filter(|(_, r)| **r == Role::B)
        .map(|(n, _)| n.clone())
        .collect();
    let mut b = t.params(&b_names).unwrap();
    for name in &b_names {
        for v in b.get_mut(name).unwrap().data_mut() {
            *v = rng.next_f64() as f32 - 0.5;
        }
    }
    t.set_params(&b).unwrap();
    let all: Vec<String> = roles.keys().cloned().collect();
    let params: ParamSet = t.params(&all).unwrap();
    let merged: std::collections::BTreeMap<String, Tensor> =
        t.model().merged_tensors().unwrap().into_iter().collect();
    let frozen: std::collections::BTreeMap<String, Tensor> =
        base.named_tensors().into_iter().collect();
    let scale = cfg.alpha / cfg.rank as f64;
    let tensor = |name: &str| {
        let p = params.get(name).unwrap();
        Tensor::from_slice(p.data(), p.shape(), &Device::Cpu).unwrap()
    };
    let mut checked = 0;
    for module in ["query", "value"] {
        let stem = format!("encoder.layer.0.attention.self.{module}");
        let a = tensor(&format!("{stem}.lora_A.weight"));
        let bm = tensor(&format!("{stem}.lora_B.weight"));
        let want = (&frozen[&format!("{stem}.weight")] + (bm.matmul(&a).unwrap() * scale).unwrap())
            .unwrap();
        let got = &merged[&format!("bert.{stem}.weight")];
        let err = common::max_diff(got, &want);
        assert!(err < 1e-4, "{stem}: {err}");
        let bias_err = common::max_diff(
            &merged[&format!("bert.{stem}.bias")],
            &frozen[&format!("{stem}.bias")],
        );
        assert!(bias_err < 1e-5, "{stem} bias: {bias_err}");
        checked += 1;
    }
    assert_eq!(checked, 2);
    // Layers without an adapter are the frozen ones, unchanged.
    let key = "encoder.layer.0.attention.self.key.weight";
    assert_eq!(
        common::max_diff(&merged[&format!("bert.{key}")], &frozen[key]),
        0.0
    );
    assert!(
        merged.contains_key("classifier.weight") && merged.contains_key("bert.pooler.dense.weight")
    );
}

#[test]
fn merged_weights_are_w0_plus_the_scaled_product() {
    check(&common::tiny_bert());
}

#[test]
fn merged_weights_hold_at_minilm_width() {
    check(&EncoderConfig::bert(common::VOCAB, 384, 1, 12, 1536));
}
