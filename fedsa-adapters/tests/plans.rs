//! How each adapter's program is compiled: the fused low-rank node for every spelling of LoRA
//! the recogniser takes (reported before any model exists, and by a built set), the op list
//! otherwise, and the same values either way.

mod common;

use fedsa_adapters::AdapterSpec;
use fedsa_adapters::adapter::PlanKind;
use fedsa_adapters::model::ClientModel;
use fedsa_core::Batch;

const DORA: &str = include_str!("../../plugins/dora/dora.json");

/// A spec with LoRA's parameters and scale around `program` (a JSON list of ops).
fn lora_like(program: &str) -> AdapterSpec {
    let text = format!(
        r#"{{
  "name": "lora-like",
  "scale": "alpha/r",
  "params": [
    {{"name": "lora_A", "peft_name": "lora_A.weight", "shape": ["r", "in"],
     "init": {{"kind": "kaiming_uniform", "a": 2.23606797749979}}, "role": "a"}},
    {{"name": "lora_B", "peft_name": "lora_B.weight", "shape": ["out", "r"],
     "init": {{"kind": "zeros"}}, "role": "b"}}
  ],
  "program": {program}
}}"#
    );
    AdapterSpec::from_text(&text, "lora-like.json").unwrap()
}

/// The scale between the two products.
const SCALE_BETWEEN: &str = r#"[
    {"op": "dropout", "args": ["x"], "out": "h"},
    {"op": "linear", "args": ["h", "lora_A"], "out": "h"},
    {"op": "scale", "args": ["h"], "out": "h"},
    {"op": "linear", "args": ["h", "lora_B"], "out": "h"},
    {"op": "add", "args": ["base", "h"], "out": "y"}]"#;

/// The scale on the input before the dropout, other register names, the sum the other way.
const SCALE_FIRST: &str = r#"[
    {"op": "scale", "args": ["x"], "out": "xs"},
    {"op": "dropout", "args": ["xs"], "out": "dropped"},
    {"op": "linear", "args": ["dropped", "lora_A"], "out": "low"},
    {"op": "linear", "args": ["low", "lora_B"], "out": "update"},
    {"op": "add", "args": ["update", "base"], "out": "y"}]"#;

#[test]
fn builtin_and_plugin_specs_report_their_plans() {
    let cfg = common::adapter("lora");
    for (kind, want, text) in [
        ("lora", PlanKind::FusedLowRank, "fused low-rank"),
        ("rslora", PlanKind::FusedLowRank, "fused low-rank"),
        ("vera", PlanKind::OpList { ops: 8 }, "op list (8 ops)"),
    ] {
        let spec = AdapterSpec::builtin(kind, &cfg).unwrap();
        assert_eq!(spec.plan_kind().unwrap(), want, "{kind}");
        assert_eq!(spec.plan_description(), text, "{kind}");
    }
    let dora = AdapterSpec::from_text(DORA, "dora.json").unwrap();
    assert_eq!(dora.plan_description(), "op list (15 ops)");
    assert_eq!(PlanKind::OpList { ops: 1 }.to_string(), "op list (1 op)");
}

#[test]
fn lora_written_in_another_order_is_fused() {
    let no_dropout_no_scale = r#"[
    {"op": "linear", "args": ["x", "lora_A"], "out": "h"},
    {"op": "linear", "args": ["h", "lora_B"], "out": "h"},
    {"op": "add", "args": ["base", "h"], "out": "y"}]"#;
    let scale_after_both_products = r#"[
    {"op": "linear", "args": ["x", "lora_A"], "out": "a"},
    {"op": "linear", "args": ["a", "lora_B"], "out": "b"},
    {"op": "scale", "args": ["b"], "out": "b"},
    {"op": "add", "args": ["b", "base"], "out": "y"}]"#;
    for program in [
        SCALE_BETWEEN,
        SCALE_FIRST,
        no_dropout_no_scale,
        scale_after_both_products,
    ] {
        let spec = lora_like(program);
        assert_eq!(
            spec.plan_kind().unwrap(),
            PlanKind::FusedLowRank,
            "{program}"
        );
    }
}

#[test]
fn shapes_the_recogniser_does_not_take_run_op_by_op() {
    let merged = r#"[
    {"op": "matmul", "args": ["lora_B", "lora_A"], "out": "delta"},
    {"op": "scale", "args": ["delta"], "out": "delta"},
    {"op": "linear", "args": ["x", "delta"], "out": "h"},
    {"op": "add", "args": ["base", "h"], "out": "y"}]"#;
    // A mask of the rank-sized projection's shape: another draw, another function.
    let dropout_after_a = r#"[
    {"op": "linear", "args": ["x", "lora_A"], "out": "h"},
    {"op": "dropout", "args": ["h"], "out": "h"},
    {"op": "linear", "args": ["h", "lora_B"], "out": "h"},
    {"op": "add", "args": ["base", "h"], "out": "y"}]"#;
    let scaled_twice = r#"[
    {"op": "linear", "args": ["x", "lora_A"], "out": "h"},
    {"op": "scale", "args": ["h"], "out": "h"},
    {"op": "linear", "args": ["h", "lora_B"], "out": "h"},
    {"op": "scale", "args": ["h"], "out": "h"},
    {"op": "add", "args": ["base", "h"], "out": "y"}]"#;
    // An unused op: a dropout there would draw from the client's stream.
    let dead_op = r#"[
    {"op": "dropout", "args": ["x"], "out": "unused"},
    {"op": "linear", "args": ["x", "lora_A"], "out": "h"},
    {"op": "linear", "args": ["h", "lora_B"], "out": "h"},
    {"op": "add", "args": ["base", "h"], "out": "y"}]"#;
    for (program, ops) in [
        (merged, 4),
        (dropout_after_a, 4),
        (scaled_twice, 5),
        (dead_op, 4),
    ] {
        let spec = lora_like(program);
        assert_eq!(
            spec.plan_kind().unwrap(),
            PlanKind::OpList { ops },
            "{program}"
        );
    }
    let mut broken = lora_like(SCALE_BETWEEN);
    broken.program[1].args[1] = "missing".into();
    assert!(broken.plan_description().starts_with("invalid: "));
}

#[test]
fn a_built_set_reports_its_plan_and_reordered_lora_gives_the_same_values() {
    let base = common::base(&common::tiny_bert());
    let mut cfg = common::adapter("lora");
    cfg.dropout = 0.2;
    let examples = common::examples(4, 3);
    let refs: Vec<_> = examples.iter().collect();
    let batch = Batch::pad(&refs, base.pad_token_id());
    let logits = |spec: &AdapterSpec| {
        // Training mode: every plan draws its masks from the same stream.
        let (model, out) = common::train_mode_logits(&base, spec, &cfg, &batch);
        (model.adapters().plan_name(), out)
    };
    let (name, want) = logits(&AdapterSpec::builtin("lora", &cfg).unwrap());
    assert_eq!(name, "fused low-rank");
    for program in [SCALE_BETWEEN, SCALE_FIRST] {
        let (name, got) = logits(&lora_like(program));
        assert_eq!(name, "fused low-rank");
        assert_eq!(common::max_diff(&got, &want), 0.0, "{program}");
    }
    let vera = AdapterSpec::builtin("vera", &cfg).unwrap();
    let model = ClientModel::new(base.clone(), &vera, &cfg, 3, 11).unwrap();
    assert_eq!(model.adapters().plan_name(), "op list");
    assert_eq!(model.adapters().plan_kind().to_string(), "op list (8 ops)");
}
