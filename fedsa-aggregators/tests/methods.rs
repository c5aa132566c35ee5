//! The field's server rules against hand-computed numbers on the fake clients of
//! `fedsa_core::testing` (A `[2, 3]`, B `[4, 2]`: a non-square layer, so a transposed residual
//! cannot pass), and FedSVD's re-factorisation on its own.

use fedsa_aggregators::methods::refactor;
use fedsa_aggregators::module_rule;
use fedsa_core::testing::FakeTrainer;
use fedsa_core::{
    ClientTrainer, Federation, FederationSettings, NoEvents, ParamSet, Strategy, WeightedMean,
    base_delta_name,
};

fn settings(n: usize, rounds: usize) -> FederationSettings {
    FederationSettings {
        num_clients: n,
        clients_per_round: n,
        rounds,
        seed: 7,
        failure_rate: 0.0,
        eval_every: 1,
    }
}

fn clients(n: usize) -> Vec<FakeTrainer> {
    (0..n)
        .map(|id| FakeTrainer::new(id, 10 * (id + 1), 2, 99))
        .collect()
}

fn federation(strategy: &Strategy, n: usize, rounds: usize) -> Federation {
    let boxed: Vec<Box<dyn ClientTrainer>> = clients(n)
        .into_iter()
        .map(|c| Box::new(c) as Box<dyn ClientTrainer>)
        .collect();
    let mut fed = Federation::new(
        settings(n, rounds),
        strategy.clone(),
        Box::new(WeightedMean),
        boxed,
        Box::new(NoEvents),
    )
    .unwrap();
    if let Some(rule) = module_rule(strategy.server) {
        fed.set_module_rule(rule).unwrap();
    }
    fed
}

/// `rows × cols` row-major product of `b` `[out, r]` and `a` `[r, in]`.
fn product(b: &[f32], a: &[f32], out: usize, r: usize, inp: usize) -> Vec<f64> {
    let mut p = vec![0.0; out * inp];
    for i in 0..out {
        for k in 0..r {
            for j in 0..inp {
                p[i * inp + j] += f64::from(b[i * r + k]) * f64::from(a[k * inp + j]);
            }
        }
    }
    p
}

/// What each client holds after its first round of local training, trained apart from any
/// federation (the fake trains deterministically from the common init).
fn trained_alone(strategy: &Strategy, n: usize) -> Vec<ParamSet> {
    clients(n)
        .into_iter()
        .map(|mut c| {
            c.configure(strategy).unwrap();
            c.train(1).unwrap();
            c.all_params().clone()
        })
        .collect()
}

#[test]
fn fedex_makes_every_clients_model_the_mean_of_the_clients_models() {
    let strategy = Strategy::fedex();
    let n = 3;
    let mut fed = federation(&strategy, n, 1);
    fed.run_round().unwrap();
    let alone = trained_alone(&strategy, n);
    let weights: Vec<f64> = (0..n).map(|k| (10.0 * (k as f64 + 1.0)) / 60.0).collect();
    let (out, r, inp) = (4, 2, 3);
    let s = FakeTrainer::SCALE;
    for layer in 0..2 {
        let (a, b) = (
            format!("layer.{layer}.lora_A.weight"),
            format!("layer.{layer}.lora_B.weight"),
        );
        // Σp_k(W0 + s·B_kA_k) with W0 = 0.
        let mut expected = vec![0.0; out * inp];
        for (params, w) in alone.iter().zip(&weights) {
            let p = product(
                params.require(&b).unwrap().data(),
                params.require(&a).unwrap().data(),
                out,
                r,
                inp,
            );
            for (e, v) in expected.iter_mut().zip(p) {
                *e += w * s * v;
            }
        }
        for c in 0..n {
            let fake = fed.clients()[c].params(&[a.clone(), b.clone()]).unwrap();
            let delta_name = base_delta_name(&format!("layer.{layer}"));
            let delta = fed.global().require(&delta_name).unwrap();
            assert_eq!(delta.shape(), &[out, inp], "the residual is [out, in]");
            let merged = product(
                fake.require(&b).unwrap().data(),
                fake.require(&a).unwrap().data(),
                out,
                r,
                inp,
            );
            for ((m, d), e) in merged.iter().zip(delta.data()).zip(&expected) {
                let got = f64::from(*d) + s * m;
                assert!(
                    (got - e).abs() < 1e-5,
                    "client {c} layer {layer}: {got} vs {e}"
                );
            }
        }
    }
    // The residual goes down with the factors: A + B + head + residual per client.
    let record = fed.history()[0].clone();
    let factors_and_head = 2 * (6 + 8) * 4 + 2 * 4;
    assert_eq!(record.bytes_up, (n * factors_and_head) as u64);
    assert!(record.bytes_down > record.bytes_up, "{record:?}");
}

#[test]
fn fedex_residual_is_stored_once_and_received_by_every_client() {
    let strategy = Strategy::fedex();
    let mut fed = federation(&strategy, 3, 2);
    fed.run_round().unwrap();
    fed.run_round().unwrap();
    let deltas: Vec<_> = fed
        .global()
        .names()
        .filter(|n| n.contains("base_delta"))
        .collect();
    assert_eq!(deltas.len(), 2, "one per module: {deltas:?}");
}

fn random(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut rng = fedsa_core::SeededRng::new(seed);
    (0..rows * cols)
        .map(|_| rng.next_f64() as f32 - 0.5)
        .collect()
}

#[test]
fn fedsvd_refactor_keeps_the_product_and_orthonormalises_a() {
    use fedsa_aggregators::methods::linalg::Mat;
    for (r, inp, out, seed) in [(2, 5, 3, 1), (4, 16, 8, 2), (3, 3, 7, 3)] {
        let a = Mat::from_f32(r, inp, &random(r, inp, seed));
        let b = Mat::from_f32(out, r, &random(out, r, seed + 10));
        let before = b.matmul(&a);
        let (na, nb) = refactor(&a, &b).unwrap();
        let after = nb.matmul(&na);
        for (x, y) in before.data.iter().zip(&after.data) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
        let gram = na.matmul(&na.transpose());
        for i in 0..r {
            for j in 0..r {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!(
                    (gram.at(i, j) - want).abs() < 1e-5,
                    "AAᵀ[{i}][{j}] = {}",
                    gram.at(i, j)
                );
            }
        }
    }
}

#[test]
fn fedsvd_in_a_federation_keeps_the_mean_product_and_sends_a_when_refreshed() {
    let strategy = Strategy::fedsvd();
    let n = 3;
    let mut fed = federation(&strategy, n, 1);
    let initial_a = fed
        .global()
        .require("layer.0.lora_A.weight")
        .unwrap()
        .clone();
    fed.run_round().unwrap();
    let alone = trained_alone(&strategy, n);
    let weights: Vec<f64> = (0..n).map(|k| (10.0 * (k as f64 + 1.0)) / 60.0).collect();
    // B̄·A before the refresh, from the clients' Bs and the common A.
    let mut b_bar = vec![0.0f32; 8];
    for (p, w) in alone.iter().zip(&weights) {
        for (m, v) in b_bar
            .iter_mut()
            .zip(p.require("layer.0.lora_B.weight").unwrap().data())
        {
            *m += (*w as f32) * v;
        }
    }
    let before = product(&b_bar, initial_a.data(), 4, 2, 3);
    let g = fed.global();
    let (a, b) = (
        g.require("layer.0.lora_A.weight").unwrap(),
        g.require("layer.0.lora_B.weight").unwrap(),
    );
    assert_ne!(a, &initial_a, "the refresh rewrote A");
    let after = product(b.data(), a.data(), 4, 2, 3);
    for (x, y) in before.iter().zip(&after) {
        assert!((x - y).abs() < 1e-5, "{x} vs {y}");
    }
    // Every client holds the refreshed factors after the round's evaluation.
    for c in 0..n {
        let held = fed.clients()[c]
            .params(&["layer.0.lora_A.weight".to_string()])
            .unwrap();
        assert_eq!(held.require("layer.0.lora_A.weight").unwrap(), a);
    }
    // A is not sent up (frozen on the clients), only B and the head.
    assert_eq!(fed.history()[0].bytes_up, (n * (2 * 8 * 4 + 2 * 4)) as u64);
}

#[test]
fn fedsvd_refreshes_only_every_p_aggregations() {
    let strategy = Strategy::fedsvd_every(2);
    let mut fed = federation(&strategy, 2, 3);
    let a0 = fed
        .global()
        .require("layer.0.lora_A.weight")
        .unwrap()
        .clone();
    fed.run_round().unwrap();
    assert_eq!(fed.global().require("layer.0.lora_A.weight").unwrap(), &a0);
    fed.run_round().unwrap();
    assert_ne!(fed.global().require("layer.0.lora_A.weight").unwrap(), &a0);
}
