//! What the field's methods need from the model side: a frozen-weight correction (FedEx-LoRA)
//! acts exactly as a corrected `W0`, forward and backward; a personal adapter (FedDPA) adds a
//! second low-rank update whose every factor trains; the fused low-rank modules are listed
//! for the server rules, and nothing else is.

mod common;

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use fedsa_adapters::AdapterSpec;
use fedsa_adapters::adapter::ForwardCtx;
use fedsa_adapters::model::ClientModel;
use fedsa_core::{Batch, ParamSet, Role, base_delta_name};

fn batch() -> Batch {
    let examples = common::examples(4, 3);
    let refs: Vec<_> = examples.iter().collect();
    Batch::pad(&refs, 0)
}

fn logits_and_grads(model: &ClientModel, batch: &Batch) -> (Tensor, BTreeMap<String, Tensor>) {
    let logits = model.forward(batch, &mut ForwardCtx::eval()).unwrap();
    let labels = Tensor::new(&[0u32, 1, 2, 1], &Device::Cpu).unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, &labels).unwrap();
    let grads = loss.backward().unwrap();
    let by_name = model
        .params()
        .vars()
        .filter_map(|(n, v, _)| grads.get(v.as_tensor()).map(|g| (n.to_string(), g.clone())))
        .collect();
    (logits, by_name)
}

/// `[out, r] · [r, in]` of two exported tensors.
fn product(b: &fedsa_core::TensorData, a: &fedsa_core::TensorData, scale: f32) -> Vec<f32> {
    let (out, r, inp) = (b.shape()[0], b.shape()[1], a.shape()[1]);
    let mut p = vec![0f32; out * inp];
    for i in 0..out {
        for k in 0..r {
            for j in 0..inp {
                p[i * inp + j] += scale * b.data()[i * r + k] * a.data()[k * inp + j];
            }
        }
    }
    p
}

#[test]
fn a_weight_correction_acts_as_the_corrected_frozen_weight_forward_and_backward() {
    let config = common::tiny_bert();
    let cfg = common::adapter("lora");
    let spec = AdapterSpec::builtin("lora", &cfg).unwrap();
    // Two bases with the same weights: the correction store belongs to a base.
    let (base_a, base_b) = (common::base(&config), common::base(&config));
    let plain = ClientModel::new(base_a, &spec, &cfg, 3, 11).unwrap();
    common::perturb(plain.params(), 5);
    let corrected = ClientModel::new(base_b, &spec, &cfg, 3, 11).unwrap();
    let all = plain.params().export(&plain.params().names()).unwrap();
    // Layer 1's query: its update s·B·A moves into the frozen weight, its B to zero.
    let module = "encoder.layer.1.attention.self.query";
    let (a, b) = (
        format!("{module}.lora_A.weight"),
        format!("{module}.lora_B.weight"),
    );
    let delta = product(
        all.require(&b).unwrap(),
        all.require(&a).unwrap(),
        plain.adapters().scale() as f32,
    );
    let mut moved = all.clone();
    let zero_b = fedsa_core::TensorData::zeros(all.require(&b).unwrap().shape().to_vec());
    moved.insert_tensor(b.clone(), zero_b);
    corrected.params().import(&moved).unwrap();
    let mut sent = ParamSet::new();
    sent.insert(base_delta_name(module), vec![32, 32], delta)
        .unwrap();
    let rest = corrected.adapters().take_deltas(&sent).unwrap();
    assert!(rest.is_empty(), "the correction is not a parameter");

    let batch = batch();
    let (l1, g1) = logits_and_grads(&plain, &batch);
    let (l2, g2) = logits_and_grads(&corrected, &batch);
    assert!(
        common::max_diff(&l1, &l2) < 1e-5,
        "{}",
        common::max_diff(&l1, &l2)
    );
    // Layer 0's factors get their gradient through layer 1's input gradient: `dy·(W0 + Δ)`.
    for (name, g) in &g1 {
        if name.starts_with(module) {
            continue;
        }
        let d = common::max_diff(g, &g2[name]);
        assert!(d < 1e-4, "{name}: gradients differ by {d}");
    }
    // The correction has the weight's [out, in] shape; a wrong one is refused by name.
    let mut bad = ParamSet::new();
    bad.insert(base_delta_name(module), vec![4, 32], vec![0.0; 128])
        .unwrap();
    let err = corrected
        .adapters()
        .take_deltas(&bad)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("base_delta") && err.contains("[32, 32]"),
        "{err}"
    );
    let mut unknown = ParamSet::new();
    unknown
        .insert(
            base_delta_name("encoder.layer.9.nowhere"),
            vec![32, 32],
            vec![0.0; 1024],
        )
        .unwrap();
    assert!(corrected.adapters().take_deltas(&unknown).is_err());
}

#[test]
fn a_personal_adapter_adds_its_own_update_and_every_factor_trains() {
    let config = common::tiny_bert();
    let base = common::base(&config);
    let cfg = common::adapter("lora");
    let spec = AdapterSpec::builtin("lora", &cfg)
        .unwrap()
        .with_personal_adapter()
        .unwrap();
    let dual = ClientModel::new(base.clone(), &spec, &cfg, 3, 11).unwrap();
    let roles = dual.params().roles();
    let count = |r: Role| roles.values().filter(|x| **x == r).count();
    assert_eq!((count(Role::A), count(Role::B)), (4, 4));
    assert_eq!((count(Role::LocalA), count(Role::LocalB)), (4, 4));
    assert!(roles.contains_key("encoder.layer.0.attention.self.query.lora_A.local.weight"));
    common::perturb(dual.params(), 5);

    // The oracle: plain LoRA of rank 2r (alpha doubled, so the same scale) whose factors are
    // the two adapters stacked.
    let wide_cfg = fedsa_core::config::AdapterConfig {
        rank: 2 * cfg.rank,
        alpha: 2.0 * cfg.alpha,
        ..cfg.clone()
    };
    let wide_spec = AdapterSpec::builtin("lora", &wide_cfg).unwrap();
    let wide = ClientModel::new(base, &wide_spec, &wide_cfg, 3, 11).unwrap();
    let values = dual.params().export(&dual.params().names()).unwrap();
    let mut stacked = values.filter(|n| !n.contains("lora_"));
    for module in dual.adapters().low_rank_modules() {
        let get = |n: &str| values.require(n).unwrap();
        let (ga, gb) = (get(&module.a), get(&module.b));
        let (la, lb) = (
            get(&module.a.replace("lora_A.weight", "lora_A.local.weight")),
            get(&module.b.replace("lora_B.weight", "lora_B.local.weight")),
        );
        let a: Vec<f32> = ga.data().iter().chain(la.data()).copied().collect();
        let (out, r) = (gb.shape()[0], gb.shape()[1]);
        let mut b = Vec::with_capacity(out * 2 * r);
        for i in 0..out {
            b.extend_from_slice(&gb.data()[i * r..(i + 1) * r]);
            b.extend_from_slice(&lb.data()[i * r..(i + 1) * r]);
        }
        stacked
            .insert(module.a.clone(), vec![2 * r, ga.shape()[1]], a)
            .unwrap();
        stacked
            .insert(module.b.clone(), vec![out, 2 * r], b)
            .unwrap();
    }
    wide.params().import(&stacked).unwrap();
    let batch = batch();
    let (l_dual, grads) = logits_and_grads(&dual, &batch);
    let (l_wide, _) = logits_and_grads(&wide, &batch);
    assert!(common::max_diff(&l_dual, &l_wide) < 1e-5);
    for (name, _, role) in dual.params().vars() {
        let g = grads
            .get(name)
            .unwrap_or_else(|| panic!("no gradient for {name} ({role})"));
        assert!(
            common::max_diff(g, &g.zeros_like().unwrap()) > 0.0,
            "zero gradient for {name}"
        );
    }
}

#[test]
fn only_plain_low_rank_adapters_list_their_modules_or_take_a_personal_adapter() {
    let config = common::tiny_bert();
    let base = common::base(&config);
    for kind in ["lora", "rslora"] {
        let cfg = common::adapter(kind);
        let spec = AdapterSpec::builtin(kind, &cfg).unwrap();
        let model = ClientModel::new(base.clone(), &spec, &cfg, 3, 11).unwrap();
        let modules = model.adapters().low_rank_modules();
        assert_eq!(modules.len(), 4, "{kind}: query and value in 2 layers");
        let scale = model.adapters().scale();
        assert!(modules.iter().all(|m| (m.scale - scale).abs() < 1e-12));
        assert!(modules[0].a.ends_with("lora_A.weight") && modules[0].b.ends_with("lora_B.weight"));
    }
    let cfg = common::adapter("vera");
    let vera = AdapterSpec::builtin("vera", &cfg).unwrap();
    let model = ClientModel::new(base, &vera, &cfg, 3, 11).unwrap();
    assert!(model.adapters().low_rank_modules().is_empty());
    let err = vera.with_personal_adapter().unwrap_err().to_string();
    assert!(
        err.contains("strategy.name") && err.contains("vera"),
        "{err}"
    );
}
