//! Every layer with a host kernel against its candle fallback: the same call on `f64` tensors,
//! which the routing rule never sends to the host, must give the host kernel's `f32` result
//! (values, and gradients where the op has one).

use candle_core::{DType, Device, Tensor, Var};

use crate::kernels::route::{Grads, on_host};
use crate::layers::activation::{gelu_erf_grad, gelu_erf_value};
use crate::layers::attention::attention;
use crate::layers::causal_attention::{Heads, causal_attention};
use crate::layers::linear::{input_grad, input_grad_plus, linear, linear_plus};
use crate::layers::norm::layer_norm_grad;
use crate::layers::rms_norm::rms_norm_grad;
use crate::layers::rope::RotaryTables;
use crate::layers::softmax::{masked_softmax_fwd, softmax_grad};
use crate::layers::swiglu::swiglu;

/// The same values as an `f32` tensor (host kernels) and an `f64` one (candle's ops).
struct Pair {
    host: Tensor,
    fallback: Tensor,
}

/// Spread, sign-changing values of shape `dims`, distinct per `seed`.
fn pair(dims: &[usize], seed: usize) -> Pair {
    let n: usize = dims.iter().product();
    let values: Vec<f64> = (0..n)
        .map(|i| 2.5 * ((i * 7 + seed * 13) as f64 * 0.37).sin())
        .collect();
    let fallback = Tensor::from_vec(values, dims, &Device::Cpu).unwrap();
    let host = fallback.to_dtype(DType::F32).unwrap();
    assert!(on_host([&host], Grads::Dropped) && !on_host([&fallback], Grads::Attached));
    Pair { host, fallback }
}

/// `host` (an `f32` result) within `tol` of `fallback` (which must be an `f64` result, i.e. it
/// went through candle's ops), relative to the fallback's largest value.
fn close(what: &str, host: &Tensor, fallback: &Tensor, tol: f64) {
    assert_eq!(host.dtype(), DType::F32, "{what}: host result");
    assert_eq!(fallback.dtype(), DType::F64, "{what}: fallback result");
    assert_eq!(host.dims(), fallback.dims(), "{what}");
    let h = host.to_dtype(DType::F64).unwrap();
    let scale = fallback
        .abs()
        .and_then(|t| t.max_all())
        .and_then(|t| t.to_scalar::<f64>())
        .unwrap()
        .max(1.0);
    let diff = (h - fallback)
        .and_then(|t| t.abs())
        .and_then(|t| t.max_all())
        .and_then(|t| t.to_scalar::<f64>())
        .unwrap();
    assert!(
        diff <= tol * scale,
        "{what}: host and fallback differ by {diff}"
    );
}

#[test]
fn gelu_fallback_matches_the_host_kernel() {
    let x = pair(&[3, 5, 37], 1);
    let dy = pair(&[3, 5, 37], 2);
    close(
        "gelu",
        &gelu_erf_value(&x.host).unwrap(),
        &gelu_erf_value(&x.fallback).unwrap(),
        1e-6,
    );
    close(
        "gelu gradient",
        &gelu_erf_grad(&x.host, &dy.host).unwrap(),
        &gelu_erf_grad(&x.fallback, &dy.fallback).unwrap(),
        1e-6,
    );
}

#[test]
fn norm_gradient_fallbacks_match_the_host_kernels() {
    let x = pair(&[2, 3, 24], 3);
    let dy = pair(&[2, 3, 24], 4);
    let gamma = pair(&[24], 5);
    close(
        "layer norm gradient",
        &layer_norm_grad(&x.host, &dy.host, &gamma.host, 1e-5).unwrap(),
        &layer_norm_grad(&x.fallback, &dy.fallback, &gamma.fallback, 1e-5).unwrap(),
        1e-5,
    );
    close(
        "rms norm gradient",
        &rms_norm_grad(&x.host, &dy.host, &gamma.host, 1e-6).unwrap(),
        &rms_norm_grad(&x.fallback, &dy.fallback, &gamma.fallback, 1e-6).unwrap(),
        1e-5,
    );
}

#[test]
fn softmax_fallbacks_match_the_host_kernels() {
    let scores = pair(&[2, 3, 4, 9], 6);
    let dy = pair(&[2, 3, 4, 9], 7);
    // A key mask per sequence (the second hides its last three keys), one for all, and none.
    let mut bias = vec![0.0f64; 18];
    for v in &mut bias[15..] {
        *v = -1e4;
    }
    let per_sequence = Tensor::from_vec(bias, (2, 1, 1, 9), &Device::Cpu).unwrap();
    let one_row = pair(&[1, 1, 1, 9], 8);
    let masks = [
        Some(Pair {
            host: per_sequence.to_dtype(DType::F32).unwrap(),
            fallback: per_sequence,
        }),
        Some(one_row),
        None,
    ];
    for mask in &masks {
        let y_host = masked_softmax_fwd(&scores.host, mask.as_ref().map(|m| &m.host)).unwrap();
        let y_fallback =
            masked_softmax_fwd(&scores.fallback, mask.as_ref().map(|m| &m.fallback)).unwrap();
        close("masked softmax", &y_host, &y_fallback, 1e-6);
        close(
            "softmax gradient",
            &softmax_grad(&y_host, &dy.host).unwrap(),
            &softmax_grad(&y_fallback, &dy.fallback).unwrap(),
            1e-5,
        );
    }
}

#[test]
fn linear_fallbacks_match_the_host_kernels() {
    let x = pair(&[2, 5, 12], 9);
    let w = pair(&[7, 12], 10);
    let b = pair(&[7], 11);
    let plus = pair(&[2, 5, 7], 12);
    let dy = pair(&[2, 5, 7], 13);
    let dx_plus = pair(&[2, 5, 12], 14);
    close(
        "linear",
        &linear(&x.host, &w.host, Some(&b.host)).unwrap(),
        &linear(&x.fallback, &w.fallback, Some(&b.fallback)).unwrap(),
        1e-5,
    );
    close(
        "linear plus",
        &linear_plus(&x.host, &w.host, Some(&b.host), &plus.host).unwrap(),
        &linear_plus(&x.fallback, &w.fallback, Some(&b.fallback), &plus.fallback).unwrap(),
        1e-5,
    );
    close(
        "linear input gradient",
        &input_grad(&dy.host, &w.host).unwrap(),
        &input_grad(&dy.fallback, &w.fallback).unwrap(),
        1e-5,
    );
    close(
        "linear input gradient plus",
        &input_grad_plus(&dy.host, &w.host, &dx_plus.host).unwrap(),
        &input_grad_plus(&dy.fallback, &w.fallback, &dx_plus.fallback).unwrap(),
        1e-5,
    );
}

#[test]
fn attention_fallback_matches_the_host_kernels_in_value_and_gradient() {
    let (batch, seq, hidden, heads) = (2, 6, 16, 4);
    let inputs: Vec<Pair> = (0..3)
        .map(|i| pair(&[batch, seq, hidden], 15 + i))
        .collect();
    let up = pair(&[batch, seq, hidden], 18);
    let mut bias = vec![0.0f64; batch * seq];
    bias[seq - 1] = -1e4;
    let mask = Tensor::from_vec(bias, (batch, 1, 1, seq), &Device::Cpu).unwrap();
    let mask = Pair {
        host: mask.to_dtype(DType::F32).unwrap(),
        fallback: mask,
    };
    // The inputs as variables, so the op's own backward runs on both paths.
    let run = |vals: [&Tensor; 3], mask: &Tensor, up: &Tensor| {
        let vars: Vec<Var> = vals.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
        let out = attention(&vars[0], &vars[1], &vars[2], Some(mask), heads).unwrap();
        let grads = (&out * up).unwrap().sum_all().unwrap().backward().unwrap();
        let g: Vec<Tensor> = vars
            .iter()
            .map(|v| grads.get(v.as_tensor()).unwrap().clone())
            .collect();
        (out, g)
    };
    let (out_host, g_host) = run(
        [&inputs[0].host, &inputs[1].host, &inputs[2].host],
        &mask.host,
        &up.host,
    );
    let (out_fallback, g_fallback) = run(
        [
            &inputs[0].fallback,
            &inputs[1].fallback,
            &inputs[2].fallback,
        ],
        &mask.fallback,
        &up.fallback,
    );
    close("attention", &out_host, &out_fallback, 1e-5);
    for (name, (h, f)) in ["query", "key", "value"]
        .iter()
        .zip(g_host.iter().zip(&g_fallback))
    {
        close(&format!("attention {name} gradient"), h, f, 1e-4);
    }
}

#[test]
fn causal_attention_fallback_matches_the_host_kernel_in_value_and_gradient() {
    let (batch, seq, dim) = (2, 7, 8);
    // Right padding in the second sequence: its last two keys are hidden.
    let mut keys = vec![1u32; batch * seq];
    keys[2 * seq - 2..].fill(0);
    let tables = RotaryTables::new(dim, 10_000.0, 16, &Device::Cpu).unwrap();
    for (heads, kv_heads) in [(4, 2), (3, 3), (4, 1)] {
        let h = Heads {
            heads,
            kv_heads,
            dim,
        };
        let q = pair(&[batch, seq, heads * dim], 21);
        let k = pair(&[batch, seq, kv_heads * dim], 22);
        let v = pair(&[batch, seq, kv_heads * dim], 23);
        let up = pair(&[batch, seq, heads * dim], 24);
        let run = |vals: [&Tensor; 3], up: &Tensor, tables: &RotaryTables| {
            let vars: Vec<Var> = vals.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
            let out =
                causal_attention(&vars[0], &vars[1], &vars[2], Some(&keys), tables, h).unwrap();
            let grads = (&out * up).unwrap().sum_all().unwrap().backward().unwrap();
            let g: Vec<Tensor> = vars
                .iter()
                .map(|v| grads.get(v.as_tensor()).unwrap().clone())
                .collect();
            (out, g)
        };
        let (out_host, g_host) = run([&q.host, &k.host, &v.host], &up.host, &tables);
        let tables64 = tables.to_dtype(DType::F64).unwrap();
        let (out_fallback, g_fallback) = run(
            [&q.fallback, &k.fallback, &v.fallback],
            &up.fallback,
            &tables64,
        );
        let what = format!("causal attention, {heads} heads on {kv_heads}");
        close(&what, &out_host, &out_fallback, 1e-5);
        for (name, (hg, fg)) in ["query", "key", "value"]
            .iter()
            .zip(g_host.iter().zip(&g_fallback))
        {
            close(&format!("{what}: {name} gradient"), hg, fg, 1e-4);
        }
    }
}

#[test]
fn causal_attention_hides_later_and_padded_keys() {
    // Changing a later token, or a padded one, leaves an earlier real query's output as it is.
    let (seq, dim) = (5, 4);
    let h = Heads {
        heads: 2,
        kv_heads: 1,
        dim,
    };
    let tables = RotaryTables::new(dim, 10_000.0, 8, &Device::Cpu).unwrap();
    let q = pair(&[1, seq, 2 * dim], 31).host;
    let k = pair(&[1, seq, dim], 32).host;
    let v = pair(&[1, seq, dim], 33).host;
    let keys = [1, 1, 1, 0, 0];
    let out = causal_attention(&q, &k, &v, Some(&keys), &tables, h).unwrap();
    let v2 = v
        .slice_assign(
            &[0..1, 2..5, 0..dim],
            &Tensor::ones((1, 3, dim), DType::F32, &Device::Cpu).unwrap(),
        )
        .unwrap();
    let out2 = causal_attention(&q, &k, &v2, Some(&keys), &tables, h).unwrap();
    let first = |t: &Tensor| t.narrow(1, 0, 2).unwrap();
    close_f32("earlier queries", &first(&out), &first(&out2));
    let later = |t: &Tensor| {
        t.narrow(1, 2, 1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert_ne!(later(&out), later(&out2), "query 2 sees its own value");
    // Queries 3 and 4 (padding) see keys 0..=2 only, so only value 2 moves them too.
    let v3 = v
        .slice_assign(
            &[0..1, 3..5, 0..dim],
            &Tensor::ones((1, 2, dim), DType::F32, &Device::Cpu).unwrap(),
        )
        .unwrap();
    let out3 = causal_attention(&q, &k, &v3, Some(&keys), &tables, h).unwrap();
    close_f32("padded values", &out, &out3);
}

/// Two `f32` results equal to rounding.
fn close_f32(what: &str, a: &Tensor, b: &Tensor) {
    let d = (a - b)
        .and_then(|t| t.abs())
        .and_then(|t| t.max_all())
        .and_then(|t| t.to_scalar::<f32>())
        .unwrap();
    assert!(d <= 1e-6, "{what}: differ by {d}");
}

#[test]
fn swiglu_fallback_matches_the_host_kernels_in_value_and_gradient() {
    let gate = pair(&[3, 4, 37], 41);
    let up = pair(&[3, 4, 37], 42);
    let dy = pair(&[3, 4, 37], 43);
    let run = |g: &Tensor, u: &Tensor, dy: &Tensor| {
        let (gv, uv) = (Var::from_tensor(g).unwrap(), Var::from_tensor(u).unwrap());
        let out = swiglu(&gv, &uv).unwrap();
        let grads = (&out * dy).unwrap().sum_all().unwrap().backward().unwrap();
        let pick = |v: &Var| grads.get(v.as_tensor()).unwrap().clone();
        (out, pick(&gv), pick(&uv))
    };
    let host = run(&gate.host, &up.host, &dy.host);
    let fallback = run(&gate.fallback, &up.fallback, &dy.fallback);
    close("swiglu", &host.0, &fallback.0, 1e-6);
    close("swiglu gate gradient", &host.1, &fallback.1, 1e-5);
    close("swiglu up gradient", &host.2, &fallback.2, 1e-6);
    // The candle form is candle's own composition, differentiated by candle.
    let (gv, uv) = (
        Var::from_tensor(&gate.fallback).unwrap(),
        Var::from_tensor(&up.fallback).unwrap(),
    );
    let composed = (gv.as_tensor().silu().unwrap() * uv.as_tensor()).unwrap();
    let grads = (&composed * &dy.fallback)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let gate_ref = grads.get(gv.as_tensor()).unwrap();
    close(
        "swiglu gate gradient against candle's",
        &host.1,
        gate_ref,
        1e-5,
    );
}
