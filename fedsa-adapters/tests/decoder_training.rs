//! Training the decoder's adapters: the loss counts response tokens only; gradients reach every
//! trainable tensor and no frozen one; the frozen layers' hand-written input gradients equal
//! candle's composite ops; a few steps lower the loss for LoRA, rsLoRA and VeRA; evaluation
//! and exact resume of the generation trainer.

mod common;
mod decoder_common;

use candle_core::{Device, Tensor, Var};
use common::{max_diff, perturb};
use decoder_common::{model, sequences, tiny};
use fedsa_adapters::adapter::ForwardCtx;
use fedsa_adapters::layers::{FrozenRmsNorm, RotaryTables, rms_norm_composed};
use fedsa_adapters::{AdapterSpec, DecoderClient, GenerationTrainer};
use fedsa_core::{ClientTrainer, EncodedSequence, SeededRng, SequenceBatch};

const ALL: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

fn client(kind: &str, targets: &[&str]) -> DecoderClient {
    let cfg = decoder_common::adapter(kind, targets);
    let spec = AdapterSpec::builtin(kind, &cfg).unwrap();
    DecoderClient::new(model(&tiny()), &spec, &cfg, 5).unwrap()
}

fn loss(client: &DecoderClient, examples: &[EncodedSequence]) -> f32 {
    let refs: Vec<&EncodedSequence> = examples.iter().collect();
    let batch = SequenceBatch::pad(&refs, 0);
    client
        .loss(&batch, &mut ForwardCtx::eval())
        .unwrap()
        .to_scalar()
        .unwrap()
}

#[test]
fn only_response_tokens_count_in_the_loss() {
    let c = client("lora", &["q_proj", "v_proj"]);
    perturb(c.params(), 1);
    let examples = sequences(3, 4);
    let base = loss(&c, &examples);
    let refs: Vec<&EncodedSequence> = examples.iter().collect();
    let mut batch = SequenceBatch::pad(&refs, 0);
    // Row 0, position 1 predicts the third prompt token (prompts have at least 3 tokens).
    let prompt_position = 1;
    assert_eq!(batch.loss_mask[prompt_position], 0.0);
    batch.targets[prompt_position] = (batch.targets[prompt_position] + 7) % 128;
    let masked: f32 = c
        .loss(&batch, &mut ForwardCtx::eval())
        .unwrap()
        .to_scalar()
        .unwrap();
    assert_eq!(masked, base, "a prompt target must not count");
    // Row 0, the last prompt position predicts the first response token.
    let response_position = examples[0].prompt_len - 1;
    assert_eq!(batch.loss_mask[response_position], 1.0);
    batch.targets[response_position] = (batch.targets[response_position] + 7) % 128;
    let counted: f32 = c
        .loss(&batch, &mut ForwardCtx::eval())
        .unwrap()
        .to_scalar()
        .unwrap();
    assert_ne!(counted, base, "a response target must count");
    // Through the data path: a different last response token changes the loss.
    let mut changed = examples.clone();
    let last = changed[1].input_ids.len() - 2;
    changed[1].input_ids[last] = (changed[1].input_ids[last] + 1) % 128;
    assert_ne!(loss(&c, &changed), base);
}

#[test]
fn every_trainable_gets_a_gradient_and_no_frozen_tensor_is_tracked() {
    for kind in ["lora", "rslora", "vera"] {
        let c = client(kind, &ALL);
        perturb(c.params(), 2);
        let examples = sequences(4, 6);
        let refs: Vec<&EncodedSequence> = examples.iter().collect();
        let batch = SequenceBatch::pad(&refs, 0);
        let l = c.loss(&batch, &mut ForwardCtx::eval()).unwrap();
        let grads = l.backward().unwrap();
        let mut count = 0;
        for (name, var, _) in c.params().vars() {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{kind}: no gradient for {name}"));
            let norm: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
            assert!(norm > 0.0, "{kind}: zero gradient for {name}");
            count += 1;
        }
        assert_eq!(count, 2 * 7 * 2, "{kind}");
        for (name, t) in c.base().named_tensors() {
            assert!(!t.is_variable(), "{name} is a Var");
            assert!(
                grads.get(&t).is_none(),
                "{kind}: frozen {name} got a gradient"
            );
        }
        for (name, t) in c.adapters().shared_tensors() {
            assert!(grads.get(t).is_none(), "{kind}: shared {name} is tracked");
        }
    }
}

fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = SeededRng::new(seed);
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.next_f64() as f32 * 2.0 - 1.0).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn input_grad(y: &Tensor, x: &Var, up: &Tensor) -> Tensor {
    let g = (y * up).unwrap().sum_all().unwrap().backward().unwrap();
    g.get(x.as_tensor()).unwrap().clone()
}

#[test]
fn rms_norm_and_rope_input_gradients_match_composite_ops() {
    let x = Var::from_tensor(&random(&[2, 3, 16], 1)).unwrap();
    let w = (random(&[16], 2) + 1.5).unwrap();
    let up = random(&[2, 3, 16], 3);
    let ours = FrozenRmsNorm::new(w.clone(), 1e-5)
        .forward(x.as_tensor())
        .unwrap();
    let reference = rms_norm_composed(x.as_tensor(), &w, 1e-5).unwrap();
    assert!(max_diff(&ours, &reference) < 1e-5);
    let d = max_diff(
        &input_grad(&ours, &x, &up),
        &input_grad(&reference, &x, &up),
    );
    assert!(d < 1e-5, "rms norm gradient differs by {d}");

    let q = Var::from_tensor(&random(&[2, 2, 5, 8], 4)).unwrap();
    let up = random(&[2, 2, 5, 8], 5);
    let tables = RotaryTables::new(8, 10_000.0, 16, &Device::Cpu).unwrap();
    // Positions 3..8, against candle's slow rope (composed of differentiable ops).
    let ours = tables.apply(q.as_tensor(), 3).unwrap();
    let (cos, sin) = cos_sin(8, 3, 5);
    let slow = candle_nn::rotary_emb::rope_slow(q.as_tensor(), &cos, &sin).unwrap();
    assert!(max_diff(&ours, &slow) < 1e-5);
    let d = max_diff(&input_grad(&ours, &q, &up), &input_grad(&slow, &q, &up));
    assert!(d < 1e-5, "rope gradient differs by {d}");
}

/// Rope tables for positions `offset..offset + n` computed independently.
fn cos_sin(dim: usize, offset: usize, n: usize) -> (Tensor, Tensor) {
    let (mut c, mut s) = (Vec::new(), Vec::new());
    for p in offset..offset + n {
        for i in 0..dim / 2 {
            let a = p as f64 / 10_000f64.powf((2 * i) as f64 / dim as f64);
            c.push(a.cos() as f32);
            s.push(a.sin() as f32);
        }
    }
    let t = |v| Tensor::from_vec(v, (n, dim / 2), &Device::Cpu).unwrap();
    (t(c), t(s))
}

fn trainer(kind: &str, dropout: f64, data: Vec<EncodedSequence>) -> GenerationTrainer {
    let mut cfg = decoder_common::adapter(kind, &["q_proj", "v_proj"]);
    cfg.dropout = dropout;
    let mut training = decoder_common::training();
    if kind == "vera" {
        // VeRA trains vectors over frozen random projections: more layers, rank and lr.
        cfg.rank = 16;
        cfg.target_modules = ALL.iter().map(|t| (*t).to_string()).collect();
        training.lr = 5e-2;
    }
    let spec = AdapterSpec::builtin(kind, &cfg).unwrap();
    GenerationTrainer::new(
        0,
        model(&tiny()),
        &spec,
        &cfg,
        &training,
        data.clone(),
        data,
        6,
        Box::new(|ids: &[u32]| ids.first().map(u32::to_string)),
        11,
        10,
    )
    .unwrap()
}

#[test]
fn a_few_steps_on_a_fixed_batch_lower_the_loss_for_every_variant() {
    for kind in ["lora", "rslora", "vera"] {
        let mut t = trainer(kind, 0.0, sequences(8, 1));
        let before = t.evaluate().unwrap().loss;
        for round in 0..8 {
            t.train(round).unwrap();
        }
        let after = t.evaluate().unwrap().loss;
        println!("{kind}: loss {before} -> {after}");
        assert!(after < before - 0.05, "{kind}: loss {before} -> {after}");
    }
}

#[test]
fn evaluation_reports_exact_match_and_token_accuracy() {
    let mut data = sequences(4, 2);
    let t = trainer("lora", 0.0, data.clone());
    // Reference of example 0: the first token the model generates; example 1: impossible.
    let first = t.generate(data[0].prompt(), None).unwrap();
    data[0].reference = first.first().map(u32::to_string);
    data[1].reference = Some("not a token".into());
    let mut t = trainer("lora", 0.0, data);
    let m = t.evaluate().unwrap();
    assert_eq!(m.extra["exact_match"], 0.5);
    assert_eq!((m.accuracy, m.macro_f1, m.num_examples), (0.5, 0.5, 4));
    assert!((0.0..=1.0).contains(&m.extra["token_accuracy"]));
    // A random model over 128 tokens: loss near ln 128.
    assert!((m.loss - 128f64.ln()).abs() < 0.5, "{}", m.loss);
    assert_eq!(t.roles().len(), 2 * 2 * 2);
}

#[test]
fn resuming_from_a_saved_state_is_exact() {
    let data = sequences(8, 3);
    let mut a = trainer("lora", 0.1, data.clone());
    a.train(0).unwrap();
    let saved = a.save_state().unwrap();
    a.train(1).unwrap();
    a.train(2).unwrap();
    let mut b = trainer("lora", 0.1, data);
    b.load_state(&saved).unwrap();
    b.train(1).unwrap();
    b.train(2).unwrap();
    assert_eq!(a.evaluate().unwrap(), b.evaluate().unwrap());
    assert_eq!(a.save_state().unwrap(), b.save_state().unwrap());
}

#[test]
fn restarting_the_factors_zeroes_the_product_and_refuses_vera() {
    let mut t = trainer("lora", 0.0, sequences(8, 4));
    let fresh_loss = t.evaluate().unwrap().loss;
    t.train(0).unwrap();
    let names: Vec<String> = t.roles().into_keys().collect();
    let trained = t.params(&names).unwrap();
    t.restart_factors(99).unwrap();
    let restarted = t.params(&names).unwrap();
    for (name, value) in restarted.iter() {
        assert_eq!(value.shape(), trained.get(name).unwrap().shape(), "{name}");
        if name.contains("lora_B") {
            assert!(value.data().iter().all(|v| *v == 0.0), "{name}");
        } else {
            assert_ne!(value.data(), trained.get(name).unwrap().data(), "{name}");
        }
    }
    // B zero: the model is the base again, whatever A holds.
    assert!((t.evaluate().unwrap().loss - fresh_loss).abs() < 1e-9);
    t.train(1).unwrap();
    let mut vera = trainer("vera", 0.0, sequences(4, 4));
    let e = vera.restart_factors(1).unwrap_err().to_string();
    assert!(e.contains("low-rank product"), "{e}");
}

#[test]
fn the_merged_decoder_folds_the_scaled_product_into_each_adapted_weight() {
    let mut c = client("lora", &["q_proj", "down_proj"]);
    // Non-zero B, so the product is not zero.
    let mut rng = SeededRng::new(8);
    let roles = c.params().roles();
    for (name, role) in &roles {
        if *role == fedsa_core::Role::B {
            let t = c.params().tensor(name).unwrap();
            let values: Vec<f32> = (0..t.elem_count())
                .map(|_| rng.next_f64() as f32 - 0.5)
                .collect();
            let mut set = fedsa_core::ParamSet::new();
            set.insert(name.clone(), t.dims().to_vec(), values).unwrap();
            c.params_mut().import(&set).unwrap();
        }
    }
    let merged: std::collections::BTreeMap<String, Tensor> =
        c.merged_tensors().unwrap().into_iter().collect();
    let frozen: std::collections::BTreeMap<String, Tensor> =
        c.base().named_tensors().into_iter().collect();
    assert_eq!(merged.len(), frozen.len(), "LLaMA's linears gain no bias");
    let cfg = decoder_common::adapter("lora", &[]);
    let scale = cfg.alpha / cfg.rank as f64;
    for module in ["self_attn.q_proj", "mlp.down_proj"] {
        let stem = format!("model.layers.0.{module}");
        let a = c.params().tensor(&format!("{stem}.lora_A.weight")).unwrap();
        let b = c.params().tensor(&format!("{stem}.lora_B.weight")).unwrap();
        let want = (&frozen[&format!("{stem}.weight")] + (b.matmul(&a).unwrap() * scale).unwrap())
            .unwrap();
        let err = max_diff(&merged[&format!("{stem}.weight")], &want);
        assert!(err < 1e-4, "{stem}: {err}");
    }
    let untouched = "model.layers.0.self_attn.k_proj.weight";
    assert_eq!(max_diff(&merged[untouched], &frozen[untouched]), 0.0);
}

#[test]
fn generating_for_many_prompts_keeps_their_order_and_each_ones_tokens() {
    // Nine prompts of 3 to 6 tokens in batches of eval_batch_size 4, sorted by length inside.
    let data = sequences(9, 4);
    let mut t = trainer("lora", 0.0, data.clone());
    t.train(0).unwrap();
    let prompts: Vec<&[u32]> = data.iter().map(EncodedSequence::prompt).collect();
    let all = t.generate_all(&prompts, None).unwrap();
    let alone: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| t.generate(p, None).unwrap())
        .collect();
    assert_eq!(all, alone);
    assert!(all.iter().any(|g| !g.is_empty()));
}
