//! Gradient flow: after one backward every trainable tensor has a non-zero gradient and no
//! frozen tensor is tracked; the hand-written input gradients of the frozen layers equal those
//! of candle's composite (differentiable) ops.

mod common;

use candle_core::{D, Device, Tensor, Var};
use fedsa_adapters::adapter::ForwardCtx;
use fedsa_adapters::layers::{FrozenLayerNorm, FrozenLinear, masked_softmax};
use fedsa_adapters::model::ClientModel;
use fedsa_adapters::{AdapterSpec, EncoderConfig};
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

    let g_ours = (ours * &up).unwrap().sum_all().unwrap().backward().unwrap();
    let g_ref = (reference * &up)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
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
    let g_ours = (ours * &up).unwrap().sum_all().unwrap().backward().unwrap();
    let g_ref = (reference * &up)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
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
