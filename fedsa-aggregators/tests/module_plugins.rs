//! Aggregator plugins with a module-level rule (plugin ABI version 2): the example
//! `product_mean` plugin against hand-computed factorisations and in a federation of fake
//! clients, a version-1 plugin that still loads and runs tensor by tensor, and the host's checks
//! on what a module rule returns.

mod common;

use common::{federation, plugins, run, set, updates};
use fedsa_aggregators::{LoadedPlugin, PluginKind, PluginRegistry, build_aggregator};
use fedsa_core::{Error, LowRankModule, ModuleUpdate, ParamSet, TensorData, WeightedMean};

fn registry() -> PluginRegistry {
    let built = plugins();
    PluginRegistry::discover_with(
        &[
            built.product_mean().to_path_buf(),
            built.trimmed_mean().to_path_buf(),
            built.library("fedsa_test_abi_v1").to_path_buf(),
            built.library("fedsa_test_module_faulty").to_path_buf(),
        ],
        None,
    )
    .unwrap()
}

fn module(name: &str) -> LowRankModule {
    LowRankModule {
        name: name.into(),
        a: format!("{name}.lora_A.weight"),
        b: format!("{name}.lora_B.weight"),
        rank: 2,
        scale: 2.0,
    }
}

fn tensor(shape: &[usize], values: &[f32]) -> TensorData {
    TensorData::new(shape.to_vec(), values.to_vec()).unwrap()
}

/// `B·A` of an `[out, r]` and an `[r, in]` tensor, row-major `[out, in]`, in f64.
fn product(a: &TensorData, b: &TensorData) -> Vec<f64> {
    let (r, inp) = (a.shape()[0], a.shape()[1]);
    let out = b.shape()[0];
    assert_eq!(b.shape()[1], r);
    let mut m = vec![0.0; out * inp];
    for i in 0..out {
        for t in 0..inp {
            m[i * inp + t] = (0..r)
                .map(|j| f64::from(b.data()[i * r + j]) * f64::from(a.data()[j * inp + t]))
                .sum();
        }
    }
    m
}

fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol,
            "entry {i}: {g} vs {w}\n{got:?}\n{want:?}"
        );
    }
}

/// The largest deviation of `A·Aᵀ` from the identity.
fn orthonormality_error(a: &TensorData) -> f64 {
    let (r, inp) = (a.shape()[0], a.shape()[1]);
    let mut worst = 0.0f64;
    for i in 0..r {
        for j in 0..r {
            let d: f64 = (0..inp)
                .map(|t| f64::from(a.data()[i * inp + t]) * f64::from(a.data()[j * inp + t]))
                .sum();
            worst = worst.max((d - if i == j { 1.0 } else { 0.0 }).abs());
        }
    }
    worst
}

#[test]
fn a_version_two_plugin_carries_its_module_rule_and_others_need_not() {
    let reg = registry();
    let pm = reg.get("product_mean").unwrap();
    assert_eq!((pm.kind(), pm.abi_version()), (PluginKind::Aggregator, 2));
    assert!(pm.descriptor().aggregate_module.is_some());
    assert!(
        build_aggregator("product_mean", "", &reg)
            .unwrap()
            .combines_modules()
    );
    // A version-2 plugin without a module rule leaves the entry empty.
    let tm = reg.get("trimmed_mean_plugin").unwrap();
    assert_eq!(tm.abi_version(), 2);
    assert!(tm.descriptor().aggregate_module.is_none());
    assert!(
        !build_aggregator("trimmed_mean_plugin", "", &reg)
            .unwrap()
            .combines_modules()
    );
}

#[test]
fn a_version_one_plugin_still_loads_and_runs_tensor_by_tensor() {
    let path = plugins().library("fedsa_test_abi_v1");
    let p = LoadedPlugin::load(path).unwrap();
    assert_eq!(
        (p.kind(), p.name(), p.abi_version()),
        (PluginKind::Aggregator, "test_abi_v1", 1)
    );
    // The word after its table is not read as a module entry.
    assert!(p.descriptor().aggregate_module.is_none());
    let reg = registry();
    let info = reg
        .list()
        .into_iter()
        .find(|i| i.name == "test_abi_v1")
        .unwrap();
    assert_eq!(info.abi_version, 1);

    let mut agg = build_aggregator("test_abi_v1", "", &reg).unwrap();
    assert!(!agg.combines_modules());
    let out = agg
        .aggregate(
            1,
            &set(&[0.0, 0.0]),
            &updates(&[&[1.0, 2.0], &[3.0, 6.0]], &[1, 3]),
            &[],
        )
        .unwrap()
        .unwrap();
    assert_eq!(out.get("w").unwrap().data(), [1002.5, 1005.0]);
    let m = module("m");
    let (a, b) = (tensor(&[1, 1], &[1.0]), tensor(&[1, 1], &[1.0]));
    let e = agg
        .aggregate_module(1, &m, &a, &b, &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "aggregator `test_abi_v1`: round 1, module `m`: the plugin has no module-level rule"
        ),
        "{e}"
    );

    // In a federation every shared tensor, A and B included, went through its `aggregate`.
    let mut fed = federation(build_aggregator("test_abi_v1", "", &reg).unwrap(), 1);
    run(&mut fed).unwrap();
    for (name, t) in fed.global().iter() {
        assert!(
            t.data().iter().all(|v| *v > 900.0),
            "{name}: {:?}",
            t.data()
        );
    }
}

#[test]
fn product_mean_keeps_the_best_rank_one_approximation_by_hand() {
    // Rank 1: client 0 (3 examples) has B·A = e1 e1ᵀ, client 1 (1 example) e2 e2ᵀ, so
    // M = diag(0.75, 0.25) and its best rank-1 approximation is 0.75 e1 e1ᵀ: A = [1, 0],
    // B = [0.75, 0]ᵀ.
    let mut agg = build_aggregator("product_mean", "", &registry()).unwrap();
    let m = module("layer.0");
    let global_a = tensor(&[1, 2], &[0.3, 0.3]);
    let global_b = tensor(&[2, 1], &[0.0, 0.0]);
    let (a0, b0) = (tensor(&[1, 2], &[1.0, 0.0]), tensor(&[2, 1], &[1.0, 0.0]));
    let (a1, b1) = (tensor(&[1, 2], &[0.0, 2.0]), tensor(&[2, 1], &[0.0, 0.5]));
    let ups = [
        ModuleUpdate {
            client: 0,
            num_examples: 3,
            a: &a0,
            b: &b0,
        },
        ModuleUpdate {
            client: 1,
            num_examples: 1,
            a: &a1,
            b: &b1,
        },
    ];
    let (a, b) = agg
        .aggregate_module(1, &m, &global_a, &global_b, &ups)
        .unwrap()
        .expect("replaced");
    assert_eq!(
        (a.shape(), a.data()),
        (&[1usize, 2][..], &[1.0f32, 0.0][..])
    );
    assert_eq!(
        (b.shape(), b.data()),
        (&[2usize, 1][..], &[0.75f32, 0.0][..])
    );
}

#[test]
fn product_mean_refactorises_a_single_client_exactly() {
    let mut agg = build_aggregator("product_mean", "", &registry()).unwrap();
    let m = module("encoder.layer.0.attention.self.query");
    let (r, inp, out) = (3, 7, 5);
    let a: Vec<f32> = (0..r * inp)
        .map(|i| ((i * 13 % 17) as f32 - 8.0) / 5.0)
        .collect();
    let b: Vec<f32> = (0..out * r)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0)
        .collect();
    let (a, b) = (tensor(&[r, inp], &a), tensor(&[out, r], &b));
    let ups = [ModuleUpdate {
        client: 4,
        num_examples: 0,
        a: &a,
        b: &b,
    }];
    let (na, nb) = agg
        .aggregate_module(2, &m, &a, &b, &ups)
        .unwrap()
        .expect("replaced");
    assert_close(&product(&na, &nb), &product(&a, &b), 1e-5);
    assert!(orthonormality_error(&na) < 1e-5);
}

/// What a fake client uploads from `start` (its A or B before training): every value moves
/// half way to its target, 1 on A and `1 + id` on B (see `fedsa_core::testing::FakeTrainer`).
fn trained(start: &TensorData, target: f32) -> TensorData {
    let data = start
        .data()
        .iter()
        .map(|v| v + 0.5 * (target - v))
        .collect();
    TensorData::new(start.shape().to_vec(), data).unwrap()
}

/// `Σ p_k B_k A_k` of the fake clients' uploads from the global factors `(a, b)`, with the
/// federation's example shares (client `k` has `10 (k + 1)` examples).
fn expected_mean_product(a: &TensorData, b: &TensorData, clients: usize) -> Vec<f64> {
    let total: usize = (1..=clients).map(|k| 10 * k).sum();
    let mut m = vec![0.0; b.shape()[0] * a.shape()[1]];
    for k in 0..clients {
        let p = (10 * (k + 1)) as f64 / total as f64;
        let prod = product(&trained(a, 1.0), &trained(b, 1.0 + k as f32));
        for (x, y) in m.iter_mut().zip(prod) {
            *x += p * y;
        }
    }
    m
}

#[test]
fn a_federation_aggregates_each_module_through_the_plugin() {
    let reg = registry();
    let mut fed = federation(build_aggregator("product_mean", "", &reg).unwrap(), 2);
    let modules = fed.low_rank_modules().to_vec();
    assert_eq!(modules.len(), 2);
    let start: ParamSet = fed.global().clone();
    fed.run_round().unwrap();
    let after_one = fed.global().clone();

    let mut avg = federation(Box::new(WeightedMean), 1);
    avg.run_round().unwrap();

    for m in &modules {
        let (a, b) = (
            after_one.require(&m.a).unwrap(),
            after_one.require(&m.b).unwrap(),
        );
        let want = expected_mean_product(
            start.require(&m.a).unwrap(),
            start.require(&m.b).unwrap(),
            5,
        );
        assert_close(&product(a, b), &want, 1e-5);
        // The plugin's factorisation, A = V_rᵀ with orthonormal rows: not the mean of the
        // factors, although here (the fake clients share their A) it has the same product.
        assert!(orthonormality_error(a) < 1e-5, "{m:?}: {:?}", a.data());
        let avg_a = avg.global().require(&m.a).unwrap();
        assert!(orthonormality_error(avg_a) > 0.1, "{:?}", avg_a.data());
        assert_close(
            &product(avg_a, avg.global().require(&m.b).unwrap()),
            &want,
            1e-5,
        );
    }
    // The head is not part of a module: it got the plugin's weighted mean, as under FedAvg.
    let head = after_one.require("classifier.weight").unwrap();
    assert_eq!(head, avg.global().require("classifier.weight").unwrap());

    // Round 2 starts every client from the plugin's factors: its result is the rule applied to
    // uploads trained from them.
    fed.run_round().unwrap();
    for m in &modules {
        let want = expected_mean_product(
            after_one.require(&m.a).unwrap(),
            after_one.require(&m.b).unwrap(),
            5,
        );
        let g = fed.global();
        assert_close(
            &product(g.require(&m.a).unwrap(), g.require(&m.b).unwrap()),
            &want,
            1e-4,
        );
    }
}

#[test]
fn what_a_module_rule_returns_is_checked() {
    let reg = registry();
    let faulty = |mode: &str| -> fedsa_core::Result<()> {
        let agg = build_aggregator("test_module_faulty", &format!("mode = \"{mode}\"\n"), &reg)?;
        let mut fed = federation(agg, 1);
        run(&mut fed).map(|_| ())
    };
    let e = faulty("error").unwrap_err();
    assert!(matches!(e, Error::Aggregation { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "aggregator `test_module_faulty`: round 1, module `layer.0`: test_module_faulty refuses `layer.0` in round 1"
    );
    let e = faulty("panic").unwrap_err();
    assert!(matches!(e, Error::Plugin { .. }), "{e:?}");
    assert!(
        e.to_string().contains(
            "aggregator `test_module_faulty` panicked: module rule of `layer.0` exploded (round 1, module `layer.0`)"
        ),
        "{e}"
    );
    let e = faulty("nan").unwrap_err().to_string();
    assert_eq!(
        e,
        "aggregator `test_module_faulty`: round 1, module `layer.0`: the new B holds NaN at index 7; stopping with the last good state"
    );

    // `keep` leaves both factors as they were; the head is still aggregated.
    let mut fed = federation(
        build_aggregator("test_module_faulty", "mode = \"keep\"\n", &reg).unwrap(),
        1,
    );
    let start = fed.global().clone();
    run(&mut fed).unwrap();
    for m in fed.low_rank_modules() {
        assert_eq!(fed.global().get(&m.a), start.get(&m.a));
        assert_eq!(fed.global().get(&m.b), start.get(&m.b));
    }
    assert_ne!(
        fed.global().get("classifier.weight"),
        start.get("classifier.weight")
    );

    // `scale` gets the module's scale and returns B times it, A as it was.
    let mut agg = build_aggregator("test_module_faulty", "", &reg).unwrap();
    let m = module("m");
    let (a, b) = (
        tensor(&[1, 2], &[1.0, 2.0]),
        tensor(&[3, 1], &[1.0, -1.0, 0.5]),
    );
    let ups = [ModuleUpdate {
        client: 0,
        num_examples: 1,
        a: &a,
        b: &b,
    }];
    let (na, nb) = agg.aggregate_module(1, &m, &a, &b, &ups).unwrap().unwrap();
    assert_eq!((na.data(), nb.data()), (a.data(), &[2.0f32, -2.0, 1.0][..]));

    // A client whose factor does not match the module is refused before the plugin is called.
    let wrong = tensor(&[1, 3], &[1.0, 2.0, 3.0]);
    let bad = [
        ups[0],
        ModuleUpdate {
            client: 3,
            num_examples: 1,
            a: &wrong,
            b: &b,
        },
    ];
    let e = agg
        .aggregate_module(4, &m, &a, &b, &bad)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "aggregator `test_module_faulty`: round 4, module `m`: client 3 sent A of shape [1, 3], expected [1, 2]"
    );
    let e = agg
        .aggregate_module(4, &m, &a, &b, &[])
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("module `m`: no updates to aggregate"), "{e}");
}
