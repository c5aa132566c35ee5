//! Adapter math against hand-computed numbers, VeRA's shared projections, and spec validation.

mod common;

use candle_core::{Device, Tensor};
use fedsa_adapters::adapter::ForwardCtx;
use fedsa_adapters::model::ClientModel;
use fedsa_adapters::{AdapterSpec, EncoderConfig, Module};
use fedsa_core::ParamSet;
use fedsa_core::config::AdapterConfig;

/// A 1-layer encoder of hidden size 4, so one adapted layer is small enough to compute by hand.
fn model(kind: &str, rank: usize, alpha: f64) -> ClientModel {
    let base = common::base(&EncoderConfig::bert(common::VOCAB, 4, 2, 2, 8));
    let cfg = AdapterConfig {
        kind: kind.into(),
        rank,
        alpha,
        dropout: 0.0,
        ..AdapterConfig::default()
    };
    let spec = AdapterSpec::builtin(kind, &cfg).unwrap();
    ClientModel::new(base, &spec, &cfg, 2, 3).unwrap()
}

fn set(model: &ClientModel, values: &[(&str, Vec<usize>, Vec<f32>)]) {
    let mut p = ParamSet::new();
    for (n, s, v) in values {
        p.insert(
            format!("encoder.layer.0.attention.self.query.{n}"),
            s.clone(),
            v.clone(),
        )
        .unwrap();
    }
    model.params().import(&p).unwrap();
}

/// The adapted query output for input `x = [1, 2, 3, 4]` and frozen output `base = 10`.
fn run(model: &ClientModel) -> Vec<f32> {
    let x = Tensor::new(&[[[1f32, 2.0, 3.0, 4.0]]], &Device::Cpu).unwrap();
    let base = Tensor::new(&[[[10f32; 4]]], &Device::Cpu).unwrap();
    let w0 = model.base().linear(0, Module::Query).weight().clone();
    let params = model.params();
    let out = model
        .adapters()
        .forward(
            0,
            Module::Query,
            &x,
            base,
            &w0,
            &|n| params.tensor(n),
            &mut ForwardCtx::eval(),
        )
        .unwrap();
    out.flatten_all().unwrap().to_vec1().unwrap()
}

fn assert_close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
    }
}

const A: [f32; 8] = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0];
const B: [f32; 8] = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0];

#[test]
fn lora_and_rslora_match_hand_computed_values() {
    // A x = [1, 2]; B A x = [1, 2, 3, 0].
    let lora = model("lora", 2, 4.0);
    set(
        &lora,
        &[
            ("lora_A.weight", vec![2, 4], A.to_vec()),
            ("lora_B.weight", vec![4, 2], B.to_vec()),
        ],
    );
    // scale alpha/r = 2.
    assert_close(&run(&lora), &[12.0, 14.0, 16.0, 10.0]);
    let rs = model("rslora", 2, 4.0);
    set(
        &rs,
        &[
            ("lora_A.weight", vec![2, 4], A.to_vec()),
            ("lora_B.weight", vec![4, 2], B.to_vec()),
        ],
    );
    // scale alpha/sqrt(r) = 2.828427: only the scale differs.
    let s = 4.0 / 2f32.sqrt();
    assert_close(&run(&rs), &[10.0 + s, 10.0 + 2.0 * s, 10.0 + 3.0 * s, 10.0]);
    assert!((rs.adapters().scale() - 8f64.sqrt()).abs() < 1e-12);
    assert_eq!(lora.adapters().scale(), 2.0);
}

#[test]
fn zero_init_b_leaves_the_base_output_and_a_is_kaiming() {
    let lora = model("lora", 2, 4.0);
    assert_close(&run(&lora), &[10.0; 4]);
    let a = lora
        .params()
        .export(&["encoder.layer.0.attention.self.query.lora_A.weight".into()])
        .unwrap();
    let bound = 1.0 / 2.0; // kaiming_uniform(a = sqrt 5) with fan_in 4: 1/sqrt(4)
    let data = a.iter().next().unwrap().1.data().to_vec();
    assert!(data.iter().all(|v| v.abs() <= bound) && data.iter().any(|v| *v != 0.0));
}

#[test]
fn vera_matches_hand_computed_values() {
    let vera = model("vera", 2, 4.0);
    let shared = vera.adapters().shared_tensors();
    let get = |n: &str| -> Vec<Vec<f32>> {
        shared
            .iter()
            .find(|(k, _)| k == n)
            .unwrap()
            .1
            .to_vec2()
            .unwrap()
    };
    let (pa, pb) = (get("vera_A"), get("vera_B"));
    assert_eq!((pa.len(), pa[0].len(), pb.len(), pb[0].len()), (2, 4, 4, 2));
    let d = [0.5f32, 2.0];
    let b = [1f32, 2.0, 3.0, 4.0];
    set(
        &vera,
        &[
            ("vera_lambda_d", vec![2], d.to_vec()),
            ("vera_lambda_b", vec![4], b.to_vec()),
        ],
    );
    let x = [1f32, 2.0, 3.0, 4.0];
    let ax: Vec<f32> = pa
        .iter()
        .map(|row| row.iter().zip(&x).map(|(a, x)| a * x).sum())
        .collect();
    let expected: Vec<f32> = (0..4)
        .map(|o| 10.0 + b[o] * (0..2).map(|k| pb[o][k] * d[k] * ax[k]).sum::<f32>())
        .collect();
    assert_close(&run(&vera), &expected);
}

#[test]
fn vera_projections_are_shared_across_layers_and_clients() {
    let base = common::base(&common::tiny_bert());
    let mut cfg = common::adapter("vera");
    cfg.target_modules = vec![
        "query".into(),
        "intermediate.dense".into(),
        "output.dense".into(),
    ];
    let spec = AdapterSpec::builtin("vera", &cfg).unwrap();
    let one = ClientModel::new(base.clone(), &spec, &cfg, 2, 42).unwrap();
    let two = ClientModel::new(base.clone(), &spec, &cfg, 2, 42).unwrap();
    let other_run = ClientModel::new(base, &spec, &cfg, 2, 43).unwrap();
    let flat = |m: &ClientModel| -> Vec<Vec<f32>> {
        m.adapters()
            .shared_tensors()
            .iter()
            .map(|(_, t)| t.flatten_all().unwrap().to_vec1().unwrap())
            .collect()
    };
    // One tensor per projection for every layer (in_max = intermediate 64, out_max = 64).
    let shapes: Vec<Vec<usize>> = one
        .adapters()
        .shared_tensors()
        .iter()
        .map(|(_, t)| t.dims().to_vec())
        .collect();
    assert_eq!(shapes, [vec![4, 64], vec![64, 4]]);
    assert_eq!(flat(&one), flat(&two));
    assert_ne!(flat(&one), flat(&other_run));
    // Exchanged names follow PEFT and the frozen projections are not among them.
    let roles = one.params().roles();
    assert!(roles.contains_key("encoder.layer.1.attention.self.query.vera_lambda_d"));
    assert!(
        roles
            .keys()
            .all(|n| !n.contains("vera_A") && !n.contains("vera_B"))
    );
}

#[test]
fn lora_init_is_identical_across_clients_of_a_run() {
    let base = common::base(&common::tiny_bert());
    let cfg = common::adapter("lora");
    let spec = AdapterSpec::builtin("lora", &cfg).unwrap();
    let a = ClientModel::new(base.clone(), &spec, &cfg, 2, 9).unwrap();
    let b = ClientModel::new(base, &spec, &cfg, 2, 9).unwrap();
    let names = a.params().names();
    assert_eq!(
        a.params().export(&names).unwrap(),
        b.params().export(&names).unwrap()
    );
    assert!(names.contains(&"encoder.layer.0.attention.self.query.lora_A.weight".to_string()));
    assert!(names.contains(&"classifier.weight".to_string()));
}

fn spec_err(text: &str) -> String {
    AdapterSpec::from_text(text, "my.json")
        .unwrap_err()
        .to_string()
}

const GOOD: &str = r#"{"name": "t", "scale": "alpha/r",
  "params": [{"name": "a", "peft_name": "a.weight", "shape": ["r", "in"], "init": {"kind": "zeros"}, "role": "a"}],
  "program": [{"op": "linear", "args": ["x", "a"], "out": "h"},
              {"op": "OP", "args": ["h", "W0"], "out": "h"},
              {"op": "add", "args": ["base", "h"], "out": "y"}]}"#;

#[test]
fn spec_validation_names_the_problem() {
    assert!(
        AdapterSpec::from_text(&GOOD.replace("OP", "linear"), "my.json").is_err(),
        "r != out"
    );
    let e = spec_err(&GOOD.replace("OP", "conv"));
    assert!(
        e.contains("my.json") && e.contains("program[1].op") && e.contains("conv"),
        "{e}"
    );
    let e = spec_err(&GOOD.replace(
        "OP\", \"args\": [\"h\", \"W0\"]",
        "linear\", \"args\": [\"h\", \"lora_C\"]",
    ));
    assert!(e.contains("lora_C") && e.contains("program[1].args"), "{e}");
    let e = spec_err(&GOOD.replace("OP", "add").replace("\"W0\"", "\"W0\", \"x\""));
    assert!(e.contains("program[1].args"), "{e}");
    let e = spec_err(&GOOD.replace("OP", "matmul"));
    assert!(e.contains("program[1]") && e.contains("matmul"), "{e}");
    let e = spec_err(&GOOD.replace("[\"r\", \"in\"]", "[\"r\", \"inn\"]"));
    assert!(e.contains("params[0].shape") && e.contains("inn"), "{e}");
    let e = spec_err(&GOOD.replace("alpha/r", "alpha*r"));
    assert!(e.contains("scale"), "{e}");
    let e = spec_err("{\"name\": 3}");
    assert!(e.contains("my.json"), "{e}");
    // A program whose output is not [..., out].
    let e = spec_err(
        &GOOD
            .replace("OP", "detach")
            .replace("[\"h\", \"W0\"]", "[\"h\"]"),
    );
    assert!(e.contains("add") || e.contains("output"), "{e}");
}

#[test]
fn builtin_specs_round_trip_and_bad_config_is_named() {
    for kind in fedsa_adapters::builtin_kinds() {
        let spec = AdapterSpec::builtin(kind, &AdapterConfig::default()).unwrap();
        assert_eq!(
            AdapterSpec::from_text(&spec.to_text(), "again").unwrap(),
            spec
        );
    }
    let e = AdapterSpec::builtin("dora", &AdapterConfig::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("adapter.kind") && e.contains("dora"), "{e}");
    let zero = AdapterConfig {
        rank: 0,
        ..AdapterConfig::default()
    };
    let e = AdapterSpec::builtin("lora", &zero).unwrap_err().to_string();
    assert!(e.contains("adapter.rank"), "{e}");
}

/// DoRA-like program: the language reaches W0, matmul, column norms and division.
#[test]
fn the_language_expresses_a_magnitude_direction_adapter() {
    let text = r#"{"name": "dora-like", "scale": "alpha/r",
      "params": [
        {"name": "lora_A", "peft_name": "lora_A.weight", "shape": ["r", "in"], "init": {"kind": "kaiming_uniform", "a": 2.23606797749979}, "role": "a"},
        {"name": "lora_B", "peft_name": "lora_B.weight", "shape": ["out", "r"], "init": {"kind": "zeros"}, "role": "b"},
        {"name": "m", "peft_name": "lora_magnitude_vector", "shape": ["out"], "init": {"kind": "base_col_norm"}, "role": "b"}],
      "program": [
        {"op": "matmul", "args": ["lora_B", "lora_A"], "out": "ba"},
        {"op": "scale", "args": ["ba"], "out": "ba"},
        {"op": "add", "args": ["W0", "ba"], "out": "w"},
        {"op": "col_norm", "args": ["w"], "out": "n"},
        {"op": "detach", "args": ["n"], "out": "n"},
        {"op": "div", "args": ["m", "n"], "out": "g"},
        {"op": "linear", "args": ["x", "ba"], "out": "h"},
        {"op": "add", "args": ["base", "h"], "out": "h"},
        {"op": "mul", "args": ["h", "g"], "out": "y"}]}"#;
    let spec = AdapterSpec::from_text(text, "dora.json").unwrap();
    let base = common::base(&common::tiny_bert());
    let cfg = common::adapter("dora-like");
    let model = ClientModel::new(base.clone(), &spec, &cfg, 2, 1).unwrap();
    // At init m = ||W0||, so the magnitude factor is 1 and the model equals the base model.
    let examples = common::examples(2, 1);
    let refs: Vec<_> = examples.iter().collect();
    let batch = fedsa_core::Batch::pad(&refs, 0);
    let ours = model.encode(&batch, &mut ForwardCtx::eval()).unwrap();
    let input = base.inputs(&batch).unwrap();
    let plain = base.forward(&input, &mut |_, _, _, y, _| Ok(y)).unwrap();
    let d: f32 = (ours - plain)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(d < 1e-4, "{d}");
}
