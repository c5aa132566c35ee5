//! How each adapter's program is compiled: the fused low-rank node for LoRA's shape (reported
//! before any model exists, and by a built set), the op list otherwise.

mod common;

use fedsa_adapters::AdapterSpec;
use fedsa_adapters::adapter::PlanKind;
use fedsa_adapters::model::ClientModel;

const DORA: &str = include_str!("../../plugins/dora/dora.json");

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
fn a_built_set_reports_its_plan() {
    let base = common::base(&common::tiny_bert());
    let cfg = common::adapter("lora");
    let lora = AdapterSpec::builtin("lora", &cfg).unwrap();
    let model = ClientModel::new(base.clone(), &lora, &cfg, 3, 11).unwrap();
    assert_eq!(model.adapters().plan_name(), "fused low-rank");
    let vera = AdapterSpec::builtin("vera", &cfg).unwrap();
    let model = ClientModel::new(base, &vera, &cfg, 3, 11).unwrap();
    assert_eq!(model.adapters().plan_name(), "op list");
    assert_eq!(model.adapters().plan_kind().to_string(), "op list (8 ops)");
}
