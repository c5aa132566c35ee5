//! What the field's methods add to an export. FedDPA's two adapters become one PEFT LoRA
//! adapter of rank `2r` (the global factors first, the local ones after: their sum is exactly
//! the stacked product), with `lora_alpha` set so that the scale is the run's. FedEx-LoRA's
//! drifted base is written beside the adapter as the corrections to add to the base weights,
//! under the base model's own weight names.

use anyhow::Result;
use fedsa_adapters::adapter::AdapterSet;
use fedsa_core::config::AdapterConfig;
use fedsa_core::{ParamSet, TensorData};

/// The file holding FedEx-LoRA's corrections to the base weights.
pub const BASE_DELTA_FILE: &str = "fedsa_base_delta.safetensors";

/// `params` with a personal adapter stacked onto the global one, the adapter config PEFT must
/// read for it, and what the record says about it; unchanged when there is none.
pub fn stack_personal(
    adapters: &AdapterSet,
    params: ParamSet,
    adapter: &AdapterConfig,
) -> Result<(ParamSet, AdapterConfig, Option<serde_json::Value>)> {
    if !adapters.spec().personal {
        return Ok((params, adapter.clone(), None));
    }
    let local = |name: &str, factor: &str| {
        name.replace(
            &format!("{factor}.weight"),
            &format!("{factor}.local.weight"),
        )
    };
    let mut out = params.clone();
    for m in adapters.low_rank_modules() {
        let (la_name, lb_name) = (local(&m.a, "lora_A"), local(&m.b, "lora_B"));
        let (ga, gb) = (params.require(&m.a)?, params.require(&m.b)?);
        let (la, lb) = (params.require(&la_name)?, params.require(&lb_name)?);
        let (r, inp, outs) = (ga.shape()[0], ga.shape()[1], gb.shape()[0]);
        let a: Vec<f32> = ga.data().iter().chain(la.data()).copied().collect();
        let mut b = Vec::with_capacity(outs * 2 * r);
        for i in 0..outs {
            b.extend_from_slice(&gb.data()[i * r..(i + 1) * r]);
            b.extend_from_slice(&lb.data()[i * r..(i + 1) * r]);
        }
        out.insert_tensor(m.a.clone(), TensorData::new(vec![2 * r, inp], a)?);
        out.insert_tensor(m.b.clone(), TensorData::new(vec![outs, 2 * r], b)?);
        out.remove(&la_name);
        out.remove(&lb_name);
    }
    // The same scale at rank 2r: α/r = α'/(2r) for LoRA, α/√r = α'/√(2r) for rsLoRA.
    let factor = if adapters.spec().name == "rslora" {
        std::f64::consts::SQRT_2
    } else {
        2.0
    };
    let stacked = AdapterConfig {
        rank: 2 * adapter.rank,
        alpha: adapter.alpha * factor,
        ..adapter.clone()
    };
    let note = serde_json::json!({
        "method": "feddpa",
        "layout": "one LoRA adapter of rank 2r: lora_A rows 0..r and lora_B columns 0..r are the \
                   global adapter (aggregated), rows/columns r..2r the client's local adapter",
        "global": [0, adapter.rank],
        "local": [adapter.rank, 2 * adapter.rank],
    });
    Ok((out, stacked, Some(note)))
}

/// FedEx-LoRA's corrections, named as the base model names the weights they correct
/// (`{prefix}{module}.weight`); empty when the run has none.
pub fn base_deltas(adapters: &AdapterSet, family_prefix: &str) -> Result<ParamSet> {
    let mut out = ParamSet::new();
    for (name, t) in adapters.deltas().export()?.iter() {
        let module = name
            .strip_suffix(&format!(".{}", fedsa_core::BASE_DELTA_SUFFIX))
            .unwrap_or(name);
        out.insert_tensor(format!("{family_prefix}{module}.weight"), t.clone());
    }
    Ok(out)
}
