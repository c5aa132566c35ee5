//! Gradient flow: after one backward every trainable tensor has a non-zero gradient and no
//! frozen tensor is tracked; inference tracks nothing and gives the eval logits; the
//! hand-written input gradients of the frozen layers equal those of candle's composite
//! (differentiable) ops.

mod common;

use candle_core::{D, Device, Tensor, Var};
use fedsa_adapters::adapter::{ForwardCtx, PlanKind};
use fedsa_adapters::layers::{
    FrozenLayerNorm, FrozenLinear, attention, frozen_feed_forward_norm, gelu_erf, masked_softmax,
};
use fedsa_adapters::model::ClientModel;
use fedsa_adapters::{AdapterSpec, EncoderConfig, Module};
use fedsa_core::{Batch, SeededRng};

fn norm(t: &Tensor) -> f32 {
    t.sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .sqrt()
        .unwrap()
        .to_scalar()
        .unwrap()
}

fn close(a: &Tensor, b: &Tensor, tol: f32) {
    let d: f32 = (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(d < tol, "max difference {d}");
}

fn check_model(config: &EncoderConfig, kind: &str) {
    let base = common::base(config);
    let mut cfg = common::adapter(kind);
    cfg.target_modules = vec!["query".into(), "key".into(), "value".into(), "dense".into()];
    let spec = AdapterSpec::builtin(kind, &cfg).unwrap();
    let model = ClientModel::new(base.clone(), &spec, &cfg, 3, 11).unwrap();
    common::perturb(model.params(), 5);

    let examples = common::examples(4, 3);
    let refs: Vec<_> = examples.iter().collect();
    let batch = Batch::pad(&refs, base.pad_token_id());
    let logits = model.forward(&batch, &mut ForwardCtx::eval()).unwrap();
    let labels = Tensor::new(&[0u32, 1, 2, 1], &Device::Cpu).unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, &labels).unwrap();
    let grads = loss.backward().unwrap();

    let mut count = 0;
    for (name, var, _) in model.params().vars() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{kind}: no gradient for {name}"));
        assert!(norm(g) > 0.0, "{kind}: zero gradient for {name}");
        count += 1;
    }
    // 4 heads tensors + 2 per adapted module (2 layers × 6 modules).
    assert_eq!(count, 4 + 2 * 12, "{kind}");
    for (name, t) in base.named_tensors() {
        assert!(!t.is_variable(), "{name} is a Var");
        assert!(
            grads.get(&t).is_none(),
            "{kind}: frozen {name} got a gradient"
        );
    }
    for (name, t) in model.adapters().shared_tensors() {
        assert!(
            !t.is_variable() && grads.get(t).is_none(),
            "shared {name} is tracked"
        );
    }
}

#[test]
fn every_trainable_gets_a_gradient_and_no_frozen_tensor_is_tracked() {
    for kind in ["lora", "rslora", "vera"] {
        check_model(&common::tiny_bert(), kind);
    }
    check_model(&common::tiny_roberta(), "lora");
}

#[test]
fn inference_gives_the_eval_logits_and_records_no_graph() {
    for kind in ["lora", "rslora", "vera"] {
        let base = common::base(&common::tiny_bert());
        let mut cfg = common::adapter(kind);
        cfg.target_modules = vec!["query".into(), "value".into(), "dense".into()];
        let spec = AdapterSpec::builtin(kind, &cfg).unwrap();
        let model = ClientModel::new(base.clone(), &spec, &cfg, 3, 11).unwrap();
        common::perturb(model.params(), 5);
        let examples = common::examples(5, 3);
        let refs: Vec<_> = examples.iter().collect();
        let batch = Batch::pad(&refs, base.pad_token_id());
        let tracked = model.forward(&batch, &mut ForwardCtx::eval()).unwrap();
        let inferred = model.infer(&batch).unwrap();
        assert!(
            tracked.track_op(),
            "{kind}: the eval forward is differentiable"
        );
        assert!(!inferred.track_op(), "{kind}: inference recorded a graph");
        close(&tracked, &inferred, 1e-5);
    }
}

/// The gradients of `Σ t ⊙ up`: an arbitrary upstream gradient `up` flowing into `t`.
fn grads_of(t: &Tensor, up: &Tensor) -> candle_core::backprop::GradStore {
    (t * up).unwrap().sum_all().unwrap().backward().unwrap()
}

fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = SeededRng::new(seed);
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.next_f64() as f32 * 2.0 - 1.0).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

#[test]
fn frozen_layer_input_gradients_match_composite_ops() {
    let x = Var::from_tensor(&random(&[2, 3, 6], 1)).unwrap();
    let up = random(&[2, 3, 6], 9);
    let w = random(&[6, 6], 2);
    let b = random(&[6], 3);
    let gamma = (random(&[6], 4) + 1.5).unwrap();

    let lin = FrozenLinear::new(w.clone(), Some(b.clone()));
    let ln = FrozenLayerNorm::new(gamma.clone(), b.clone(), 1e-5);
    let ours = ln.forward(&lin.forward(x.as_tensor()).unwrap()).unwrap();
    let ours = masked_softmax(&ours, None).unwrap();
    let reference = x
        .as_tensor()
        .broadcast_matmul(&w.t().unwrap())
        .unwrap()
        .broadcast_add(&b)
        .unwrap();
    let reference = candle_nn::ops::layer_norm_slow(&reference, &gamma, &b, 1e-5).unwrap();
    let reference = candle_nn::ops::softmax(&reference, D::Minus1).unwrap();
    close(&ours, &reference, 1e-5);

    let g_ours = grads_of(&ours, &up);
    let g_ref = grads_of(&reference, &up);
    close(
        g_ours.get(x.as_tensor()).unwrap(),
        g_ref.get(x.as_tensor()).unwrap(),
        1e-5,
    );
    assert!(g_ours.get(&w).is_none() && g_ours.get(&gamma).is_none());
}

#[test]
fn gelu_input_gradient_matches_candle() {
    let x = Var::from_tensor(&(random(&[3, 50], 6) * 4.0).unwrap()).unwrap();
    let up = random(&[3, 50], 8);
    let ours = fedsa_adapters::layers::gelu_erf(x.as_tensor()).unwrap();
    let reference = x.as_tensor().gelu_erf().unwrap();
    close(&ours, &reference, 1e-6);
    let g_ours = grads_of(&ours, &up);
    let g_ref = grads_of(&reference, &up);
    close(
        g_ours.get(x.as_tensor()).unwrap(),
        g_ref.get(x.as_tensor()).unwrap(),
        1e-4,
    );
}

#[test]
fn masked_keys_get_no_probability() {
    let scores = Var::from_tensor(&random(&[1, 1, 2, 3], 5)).unwrap();
    let bias = Tensor::new(&[0f32, 0.0, -1e9], &Device::Cpu)
        .unwrap()
        .reshape((1, 1, 1, 3))
        .unwrap();
    let p = masked_softmax(scores.as_tensor(), Some(&bias)).unwrap();
    let v: Vec<f32> = p.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!((v[2], v[5]), (0.0, 0.0));
    assert!((v[0] + v[1] - 1.0).abs() < 1e-6);
}

/// The plain-op attention the fused node replaces: head split, scaled scores, additive mask,
/// softmax, context, head merge, all through candle's autograd.
fn attention_reference(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, heads: usize) -> Tensor {
    let (b, s, h) = q.dims3().unwrap();
    let split = |t: &Tensor| {
        t.reshape((b, t.dim(1).unwrap(), heads, h / heads))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
    };
    let scale = 1.0 / ((h / heads) as f64).sqrt();
    let scores = (split(q) * scale)
        .unwrap()
        .matmul(&split(k).t().unwrap())
        .unwrap()
        .broadcast_add(mask)
        .unwrap();
    let probs = candle_nn::ops::softmax(&scores, D::Minus1).unwrap();
    probs
        .matmul(&split(v))
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .reshape((b, s, h))
        .unwrap()
}

#[test]
fn fused_attention_matches_plain_ops_in_value_and_gradient() {
    // Batch 3, 5 tokens, hidden 8 over 2 heads; the second sequence has two padded keys.
    let (b, s, h, heads) = (3, 5, 8, 2);
    let mut bias = vec![0f32; b * s];
    bias[s + 3] = -1e9;
    bias[s + 4] = -1e9;
    let mask = Tensor::from_vec(bias, (b, 1, 1, s), &Device::Cpu).unwrap();
    let up = random(&[b, s, h], 14);
    // A key mask per sequence and one shared by all run on the host kernels; the same mask
    // spelled out per query (`[b, 1, s, s]`) takes the path through candle's ops.
    let shared = mask.get(1).unwrap().unsqueeze(0).unwrap();
    let per_query = mask
        .broadcast_as((b, 1, s, s))
        .unwrap()
        .contiguous()
        .unwrap();
    // Every subset of tracked inputs: the op must send each gradient and only those asked for.
    for (tracked, mask) in (1..8u8).flat_map(|t| [(t, &mask), (t, &shared), (t, &per_query)]) {
        let input = |i: u8, seed| {
            let t = (random(&[b, s, h], seed) * 2.0).unwrap();
            (tracked & (1 << i) != 0)
                .then(|| Var::from_tensor(&t).unwrap())
                .map_or(t.clone(), |v| v.as_tensor().clone())
        };
        let (q, k, v) = (input(0, 11), input(1, 12), input(2, 13));
        let ours = attention(&q, &k, &v, Some(mask), heads).unwrap();
        let reference = attention_reference(&q, &k, &v, mask, heads);
        close(&ours, &reference, 1e-5);
        let g_ours = grads_of(&ours, &up);
        let g_ref = grads_of(&reference, &up);
        for (i, t) in [&q, &k, &v].into_iter().enumerate() {
            if tracked & (1 << i) != 0 {
                close(g_ours.get(t).unwrap(), g_ref.get(t).unwrap(), 1e-5);
            } else {
                assert!(g_ours.get(t).is_none(), "input {i} is not tracked");
            }
        }
    }
    // Fewer queries than keys (the first token attending to the whole sequence, as in a
    // classifier's last block), on the host kernels and through candle's ops.
    for queries in [1, 2] {
        let q = Var::from_tensor(&random(&[b, queries, h], 15)).unwrap();
        let (k, v) = (
            Var::from_tensor(&random(&[b, s, h], 16)).unwrap(),
            Var::from_tensor(&random(&[b, s, h], 17)).unwrap(),
        );
        let up = random(&[b, queries, h], 18);
        for mask in [&mask, &shared] {
            let (q, k, v) = (q.as_tensor(), k.as_tensor(), v.as_tensor());
            let ours = attention(q, k, v, Some(mask), heads).unwrap();
            let reference = attention_reference(q, k, v, mask, heads);
            close(&ours, &reference, 1e-5);
            let (g_ours, g_ref) = (grads_of(&ours, &up), grads_of(&reference, &up));
            for t in [q, k, v] {
                close(g_ours.get(t).unwrap(), g_ref.get(t).unwrap(), 1e-5);
            }
        }
    }
    // Padded keys get exactly no weight: their values cannot change the output.
    let q = random(&[b, s, h], 21);
    let v = random(&[b, s, h], 22);
    let mut v2 = v.to_vec3::<f32>().unwrap();
    v2[1][4] = vec![100.0; h];
    let v2 = Tensor::new(v2, &Device::Cpu).unwrap();
    let a = attention(&q, &q, &v, Some(&mask), heads).unwrap();
    let c = attention(&q, &q, &v2, Some(&mask), heads).unwrap();
    close(&a.get(1).unwrap(), &c.get(1).unwrap(), f32::MIN_POSITIVE);
}

#[test]
fn residual_layer_norm_matches_the_sum_then_the_norm() {
    let a = Var::from_tensor(&random(&[2, 3, 6], 31)).unwrap();
    let x = Var::from_tensor(&random(&[2, 3, 6], 32)).unwrap();
    let up = random(&[2, 3, 6], 33);
    let gamma = (random(&[6], 34) + 1.5).unwrap();
    let beta = random(&[6], 35);
    let ln = FrozenLayerNorm::new(gamma.clone(), beta.clone(), 1e-5);
    let ours = ln.forward_residual(a.as_tensor(), x.as_tensor()).unwrap();
    let sum = (a.as_tensor() + x.as_tensor()).unwrap();
    let reference = candle_nn::ops::layer_norm_slow(&sum, &gamma, &beta, 1e-5).unwrap();
    close(&ours, &reference, 1e-5);
    let g_ours = grads_of(&ours, &up);
    let g_ref = grads_of(&reference, &up);
    for t in [a.as_tensor(), x.as_tensor()] {
        close(g_ours.get(t).unwrap(), g_ref.get(t).unwrap(), 1e-5);
    }
    assert!(g_ours.get(&gamma).is_none() && g_ours.get(&beta).is_none());
    // An untracked residual gets nothing and the tracked summand still gets its gradient.
    let frozen = x.as_tensor().detach();
    let ours = ln.forward_residual(a.as_tensor(), &frozen).unwrap();
    let g = ours.sum_all().unwrap().backward().unwrap();
    assert!(g.get(a.as_tensor()).is_some() && g.get(&frozen).is_none());
}

#[test]
fn fused_feed_forward_norm_matches_its_layers() {
    let x = Var::from_tensor(&(random(&[2, 3, 6], 41) * 2.0).unwrap()).unwrap();
    let up = random(&[2, 3, 6], 42);
    let inter = FrozenLinear::new(random(&[10, 6], 43), Some(random(&[10], 44)));
    let out = FrozenLinear::new(random(&[6, 10], 45), Some(random(&[6], 46)));
    let norm = FrozenLayerNorm::new((random(&[6], 47) + 1.5).unwrap(), random(&[6], 48), 1e-5);
    let ours = frozen_feed_forward_norm(x.as_tensor(), &inter, &out, &norm).unwrap();
    let block = out
        .forward(&gelu_erf(&inter.forward(x.as_tensor()).unwrap()).unwrap())
        .unwrap();
    let reference = norm.forward_residual(&block, x.as_tensor()).unwrap();
    close(&ours, &reference, 1e-5);
    let g_ours = grads_of(&ours, &up);
    let g_ref = grads_of(&reference, &up);
    close(
        g_ours.get(x.as_tensor()).unwrap(),
        g_ref.get(x.as_tensor()).unwrap(),
        1e-5,
    );
    assert!(g_ours.get(inter.weight()).is_none() && g_ours.get(out.weight()).is_none());
}

#[test]
fn linear_residual_norm_matches_its_layers() {
    let up = random(&[2, 3, 6], 51);
    let lin = FrozenLinear::new(random(&[6, 5], 52), Some(random(&[6], 53)));
    let norm = FrozenLayerNorm::new((random(&[6], 54) + 1.5).unwrap(), random(&[6], 55), 1e-5);
    // Every subset of tracked inputs: each gets its gradient, an untracked one none.
    for tracked in 1..4u8 {
        let input = |i: u8, shape: &[usize], seed| {
            let t = random(shape, seed);
            (tracked & (1 << i) != 0)
                .then(|| Var::from_tensor(&t).unwrap())
                .map_or(t.clone(), |v| v.as_tensor().clone())
        };
        let (context, residual) = (input(0, &[2, 3, 5], 56), input(1, &[2, 3, 6], 57));
        let ours = norm
            .forward_linear_residual(&context, &lin, &residual)
            .unwrap();
        let reference = norm
            .forward_residual(&lin.forward(&context).unwrap(), &residual)
            .unwrap();
        close(&ours, &reference, 1e-5);
        let g_ours = grads_of(&ours, &up);
        let g_ref = grads_of(&reference, &up);
        for (i, t) in [&context, &residual].into_iter().enumerate() {
            if tracked & (1 << i) != 0 {
                close(g_ours.get(t).unwrap(), g_ref.get(t).unwrap(), 1e-5);
            } else {
                assert!(g_ours.get(t).is_none(), "input {i} is not tracked");
            }
        }
        assert!(g_ours.get(lin.weight()).is_none());
    }
}

#[test]
fn encoder_with_fused_blocks_gives_the_same_output_and_gradient() {
    let base = common::base(&common::tiny_bert());
    let examples = common::examples(3, 2);
    let refs: Vec<_> = examples.iter().collect();
    let input = base.inputs(&Batch::pad(&refs, 0)).unwrap();
    let h = base.config().hidden_size;
    // A trainable shift on every query output makes everything above it tracked.
    let shift = Var::from_tensor(&(random(&[h], 61) * 0.1).unwrap()).unwrap();
    let mut hook = |_, m: Module, _: &Tensor, y: Tensor, _: &Tensor| {
        Ok(if m == Module::Query {
            y.broadcast_add(shift.as_tensor()).unwrap()
        } else {
            y
        })
    };
    let layered = base.forward(&input, &mut hook).unwrap();
    // Only the queries adapted: the attention output and feed-forward blocks run fused.
    let fused = base
        .forward_adapted(&input, &mut hook, &|_, m| m == Module::Query)
        .unwrap();
    close(&fused, &layered, 1e-5);
    let up = random(layered.dims(), 62);
    let g_layered = grads_of(&layered, &up);
    let g_fused = grads_of(&fused, &up);
    let (a, b) = (
        g_layered.get(shift.as_tensor()).unwrap(),
        g_fused.get(shift.as_tensor()).unwrap(),
    );
    assert!(norm(a) > 0.0);
    close(a, b, 1e-4 * norm(a).max(1.0));
    // The first-token output (what the classifier reads) is the full output's first position,
    // and sends the same gradient back.
    let first = base
        .forward_first_token(&input, &mut hook, &|_, m| m == Module::Query)
        .unwrap();
    assert_eq!(first.dims(), [3, 1, h]);
    let want = layered.narrow(1, 0, 1).unwrap();
    close(&first, &want, 1e-5);
    let up = random(first.dims(), 63);
    let g_first = grads_of(&first, &up);
    let g_want = grads_of(&want, &up);
    let (a, b) = (
        g_want.get(shift.as_tensor()).unwrap(),
        g_first.get(shift.as_tensor()).unwrap(),
    );
    assert!(norm(a) > 0.0);
    close(a, b, 1e-4 * norm(a).max(1.0));
}

/// LoRA's program written so the fused low-rank path does not recognise it (the update's
/// weight merged first, `s · B A`, then one product): the op-by-op interpreter, the same
/// function.
const LORA_OP_BY_OP: &str = r#"{
  "name": "lora-op-by-op",
  "scale": "alpha/r",
  "params": [
    {"name": "lora_A", "peft_name": "lora_A.weight", "shape": ["r", "in"],
     "init": {"kind": "kaiming_uniform", "a": 2.23606797749979}, "role": "a"},
    {"name": "lora_B", "peft_name": "lora_B.weight", "shape": ["out", "r"],
     "init": {"kind": "zeros"}, "role": "b"}
  ],
  "program": [
    {"op": "matmul", "args": ["lora_B", "lora_A"], "out": "delta"},
    {"op": "scale", "args": ["delta"], "out": "delta"},
    {"op": "dropout", "args": ["x"], "out": "h"},
    {"op": "linear", "args": ["h", "delta"], "out": "h"},
    {"op": "add", "args": ["base", "h"], "out": "y"}
  ],
  "output": "y"
}"#;

#[test]
fn fused_low_rank_update_matches_the_op_by_op_program() {
    let base = common::base(&common::tiny_bert());
    let mut cfg = common::adapter("lora");
    cfg.dropout = 0.2;
    let fused = AdapterSpec::builtin("lora", &cfg).unwrap();
    let plain = AdapterSpec::from_text(LORA_OP_BY_OP, "lora-op-by-op.json").unwrap();
    assert_eq!(fused.plan_kind().unwrap(), PlanKind::FusedLowRank);
    assert_eq!(plain.plan_kind().unwrap(), PlanKind::OpList { ops: 5 });
    let examples = common::examples(4, 3);
    let refs: Vec<_> = examples.iter().collect();
    let batch = Batch::pad(&refs, base.pad_token_id());
    let labels = Tensor::new(&[0u32, 1, 2, 1], &Device::Cpu).unwrap();
    let run = |spec: &AdapterSpec| {
        // Training mode: both draw the same dropout masks from the same stream.
        let (model, logits) = common::train_mode_logits(&base, spec, &cfg, &batch);
        let loss = candle_nn::loss::cross_entropy(&logits, &labels).unwrap();
        let grads = loss.backward().unwrap();
        let named: Vec<(String, Tensor)> = model
            .params()
            .vars()
            .map(|(name, var, _)| {
                (
                    name.to_string(),
                    grads.get(var.as_tensor()).unwrap().clone(),
                )
            })
            .collect();
        (logits, named)
    };
    let (logits_fused, grads_fused) = run(&fused);
    let (logits_plain, grads_plain) = run(&plain);
    close(&logits_fused, &logits_plain, 1e-5);
    assert_eq!(grads_fused.len(), grads_plain.len());
    for ((name, g), (other, h)) in grads_fused.iter().zip(&grads_plain) {
        assert_eq!(name, other);
        assert!(norm(g) > 0.0, "zero gradient for {name}");
        close(g, h, 1e-5);
    }
}
