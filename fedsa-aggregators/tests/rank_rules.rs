//! The three rules that combine clients of different ranks, against hand computation on tiny
//! non-square layers (`out ≠ in`, so a transposed product cannot pass): FLoRA's stacking and
//! merge, FlexLoRA's truncation (Eckart–Young: a client's error is the norm of the singular
//! values it cannot hold), HetLoRA's padding, norm weights and truncation.

use fedsa_aggregators::methods::{
    NormWeightedPadding, StackedMerge, SvdTruncation, flexlora, hetlora, linalg::Mat,
};
use fedsa_aggregators::module_rule;
use fedsa_core::testing::FakeTrainer;
use fedsa_core::{
    ClientTrainer, ClientUpdate, Federation, FederationSettings, LowRankModule, ModuleRule,
    NoEvents, ParamSet, Role, Strategy, TensorData, WeightedMean, base_delta_name,
};

const MODULE: &str = "layer.0";

/// Client `client`'s module of rank `rank` and scale `scale`.
fn module(rank: usize, scale: f64) -> LowRankModule {
    LowRankModule {
        name: MODULE.into(),
        a: format!("{MODULE}.lora_A.weight"),
        b: format!("{MODULE}.lora_B.weight"),
        rank,
        scale,
    }
}

fn mat(rows: usize, cols: usize, values: &[f64]) -> Mat {
    assert_eq!(values.len(), rows * cols);
    Mat {
        rows,
        cols,
        data: values.to_vec(),
    }
}

fn tensor(m: &Mat) -> TensorData {
    TensorData::new(vec![m.rows, m.cols], m.to_f32()).unwrap()
}

fn matrix(t: &TensorData) -> Mat {
    Mat::from_f32(t.shape()[0], t.shape()[1], t.data())
}

/// An upload of factors `a` `[r, in]` and `b` `[out, r]` from `client` with `n` examples.
fn upload(client: usize, n: usize, a: &Mat, b: &Mat) -> ClientUpdate {
    let m = module(a.rows, 1.0);
    let mut params = ParamSet::new();
    params.insert_tensor(m.a, tensor(a));
    params.insert_tensor(m.b, tensor(b));
    ClientUpdate {
        client,
        num_examples: n,
        params,
    }
}

/// `b · a` by plain loops (not the library's product).
fn naive_product(b: &Mat, a: &Mat) -> Mat {
    let mut p = Mat::zeros(b.rows, a.cols);
    for i in 0..b.rows {
        for j in 0..a.cols {
            let v = (0..b.cols).map(|k| b.at(i, k) * a.at(k, j)).sum();
            p.set(i, j, v);
        }
    }
    p
}

fn frobenius(m: &Mat) -> f64 {
    m.data.iter().map(|v| v * v).sum::<f64>().sqrt()
}

fn difference(x: &Mat, y: &Mat) -> Mat {
    let mut d = x.clone();
    d.add_scaled(-1.0, y);
    d
}

fn assert_close(x: &Mat, y: &Mat, tol: f64) {
    assert_eq!((x.rows, x.cols), (y.rows, y.cols), "shapes");
    let err = frobenius(&difference(x, y));
    assert!(err < tol, "off by {err}: {x:?} vs {y:?}");
}

/// Two clients, ranks 1 and 2, on a 4 × 3 layer, with 10 and 30 examples and scales 2 and 1
/// (LoRA's α/r with α = 2).
fn two_clients() -> (Vec<Vec<LowRankModule>>, Vec<ClientUpdate>, Mat) {
    let a0 = mat(1, 3, &[1.0, -2.0, 0.5]);
    let b0 = mat(4, 1, &[1.0, 0.0, 2.0, -1.0]);
    let a1 = mat(2, 3, &[0.0, 1.0, 1.0, 2.0, 0.0, -1.0]);
    let b1 = mat(4, 2, &[1.0, 0.0, 0.0, 1.0, 3.0, -1.0, 0.5, 0.5]);
    let clients = vec![vec![module(1, 2.0)], vec![module(2, 1.0)]];
    let updates = vec![upload(0, 10, &a0, &b0), upload(1, 30, &a1, &b1)];
    // Σp_k s_k B_kA_k with p = (0.25, 0.75), s = (2, 1).
    let mut expected = naive_product(&b0, &a0);
    for v in &mut expected.data {
        *v *= 0.25 * 2.0;
    }
    expected.add_scaled(0.75, &naive_product(&b1, &a1));
    (clients, updates, expected)
}

/// Each upload's factors as the rules see them, with the weights `weights`.
fn client_factors(
    clients: &[Vec<LowRankModule>],
    updates: &[ClientUpdate],
    weights: [f64; 2],
) -> Vec<fedsa_aggregators::methods::ClientFactors> {
    updates
        .iter()
        .zip(clients)
        .zip(weights)
        .map(|((u, own), weight)| {
            let m = &own[0];
            fedsa_aggregators::methods::ClientFactors {
                client: u.client,
                a: matrix(u.params.get(&m.a).unwrap()),
                b: matrix(u.params.get(&m.b).unwrap()),
                scale: m.scale,
                weight,
            }
        })
        .collect()
}

#[test]
fn flora_stacked_product_is_the_weighted_sum_of_the_scaled_products() {
    let (clients, updates, expected) = two_clients();
    let factors = client_factors(&clients, &updates, [0.25, 0.75]);
    let (b, a) = fedsa_aggregators::methods::stack(&factors);
    assert_eq!((b.rows, b.cols, a.rows, a.cols), (4, 3, 3, 3));
    assert_close(&naive_product(&b, &a), &expected, 1e-5);
}

#[test]
fn flora_merges_the_sum_into_the_base_and_accumulates_it() {
    let (clients, updates, expected) = two_clients();
    let mut rule = StackedMerge::default();
    rule.set_clients(&clients);
    assert!(rule.aggregates_factors());
    let mut global = ParamSet::new();
    let changed = rule.apply(1, &clients[0], &mut global, &updates).unwrap();
    let name = base_delta_name(MODULE);
    assert_eq!(changed, vec![name.clone()]);
    // The corrected weight is W0 + the correction: the correction is the sum itself.
    let w0 = mat(4, 3, &[0.1; 12]);
    let mut merged = w0.clone();
    merged.add_scaled(1.0, &matrix(global.get(&name).unwrap()));
    let mut want = w0.clone();
    want.add_scaled(1.0, &expected);
    assert_close(&merged, &want, 1e-5);
    // A second merge adds its sum to the first.
    rule.apply(2, &clients[0], &mut global, &updates).unwrap();
    let mut twice = expected.clone();
    twice.add_scaled(1.0, &expected);
    assert_close(&matrix(global.get(&name).unwrap()), &twice, 1e-5);
    assert!(
        global.get(&clients[0][0].a).is_none(),
        "FLoRA holds no factor"
    );
}

/// `[u1 u2 u3]` (`4 × 3`) and `[v1 v2 v3]` (`5 × 3`) with orthonormal columns.
fn singular_vectors() -> (Mat, Mat) {
    let h = 0.5;
    let u = mat(4, 3, &[h, h, h, h, -h, h, h, h, -h, h, -h, -h]);
    let s = std::f64::consts::FRAC_1_SQRT_2;
    #[rustfmt::skip]
    let v = mat(5, 3, &[
        s, s, 0.0,
        s, -s, 0.0,
        0.0, 0.0, 0.6,
        0.0, 0.0, 0.8,
        0.0, 0.0, 0.0,
    ]);
    (u, v)
}

/// Column `j` of `m` as an `n × 1` matrix.
fn column(m: &Mat, j: usize) -> Mat {
    mat(
        m.rows,
        1,
        &(0..m.rows).map(|i| m.at(i, j)).collect::<Vec<_>>(),
    )
}

/// `Σ c_i u_i v_iᵀ` over `terms` `(i, c_i)`.
fn rank_sum(terms: &[(usize, f64)]) -> Mat {
    let (u, v) = singular_vectors();
    let mut out = Mat::zeros(4, 5);
    for &(i, c) in terms {
        out.add_scaled(
            c,
            &naive_product(&column(&u, i), &column(&v, i).transpose()),
        );
    }
    out
}

/// FlexLoRA's fixture: ΔW = 5·u1v1ᵀ + 3·u2v2ᵀ + 1·u3v3ᵀ (σ = 5, 3, 1) split over three
/// clients of ranks 1, 2 and 3 (scales α/r with α = 6, equal examples, so p = 1/3), whose
/// factors are mixed by an invertible matrix so that none is already in SVD form.
fn flexlora_clients() -> (Vec<Vec<LowRankModule>>, Vec<ClientUpdate>, Mat) {
    let (u, v) = singular_vectors();
    let scales = [6.0, 3.0, 2.0];
    let p = 1.0 / 3.0;
    // Client 0: 2.5·u1v1ᵀ; client 1: 2.5·u1v1ᵀ + 3·u2v2ᵀ; client 2: u3v3ᵀ (its other two
    // columns of B still zero, as LoRA's B starts).
    let factor_a = |rows: &[usize], k: f64| {
        let mut a = Mat::zeros(rows.len(), 5);
        for (r, &i) in rows.iter().enumerate() {
            for j in 0..5 {
                a.set(r, j, v.at(j, i) / k);
            }
        }
        a
    };
    let a0 = factor_a(&[0], p * scales[0]);
    let b0 = mat(4, 1, &(0..4).map(|i| 2.5 * u.at(i, 0)).collect::<Vec<_>>());
    // B1 = [2.5u1, 3u2]·G, A1 = G⁻¹·[v1 v2]ᵀ / (p s_1).
    let g = mat(2, 2, &[1.0, 0.5, 0.0, 2.0]);
    let g_inv = mat(2, 2, &[1.0, -0.25, 0.0, 0.5]);
    let b1_plain = mat(
        4,
        2,
        &(0..4)
            .flat_map(|i| [2.5 * u.at(i, 0), 3.0 * u.at(i, 1)])
            .collect::<Vec<_>>(),
    );
    let b1 = naive_product(&b1_plain, &g);
    let a1 = naive_product(&g_inv, &factor_a(&[0, 1], p * scales[1]));
    let mut a2 = factor_a(&[2], p * scales[2]);
    a2 = mat(
        3,
        5,
        &a2.data
            .iter()
            .copied()
            .chain([0.3, -0.1, 0.2, 0.0, 0.4, 0.1, 0.1, 0.0, -0.5, 0.2])
            .collect::<Vec<_>>(),
    );
    let mut b2 = Mat::zeros(4, 3);
    (0..4).for_each(|i| b2.set(i, 0, u.at(i, 2)));
    let clients = (0..3)
        .map(|k| vec![module(k + 1, scales[k])])
        .collect::<Vec<_>>();
    let updates = vec![
        upload(0, 8, &a0, &b0),
        upload(1, 8, &a1, &b1),
        upload(2, 8, &a2, &b2),
    ];
    (clients, updates, rank_sum(&[(0, 5.0), (1, 3.0), (2, 1.0)]))
}

#[test]
fn flexlora_gives_each_client_the_best_approximation_of_its_rank() {
    let (clients, updates, delta_w) = flexlora_clients();
    let mut rule = SvdTruncation::default();
    rule.set_clients(&clients);
    let largest = &clients[2][0];
    let mut global = ParamSet::new();
    let changed = rule.apply(1, &clients[0], &mut global, &updates).unwrap();
    assert_eq!(changed, vec![largest.a.clone(), largest.b.clone()]);
    let (ga, gb) = (
        global.get(&largest.a).unwrap(),
        global.get(&largest.b).unwrap(),
    );
    assert_eq!((ga.shape(), gb.shape()), (&[3, 5][..], &[4, 3][..]));
    // A's rows are orthonormal.
    let a = matrix(ga);
    let mut eye = Mat::zeros(3, 3);
    (0..3).for_each(|i| eye.set(i, i, 1.0));
    assert_close(&naive_product(&a, &a.transpose()), &eye, 1e-5);
    // Eckart–Young: the error of rank r is the norm of σ beyond r; the approximation itself
    // is the sum of the leading terms.
    let sigma: [f64; 3] = [5.0, 3.0, 1.0];
    for (c, own) in clients.iter().enumerate() {
        let own = &own[0];
        let ca = rule.client_factor(c, 0, Role::A, ga).unwrap();
        let cb = rule.client_factor(c, 0, Role::B, gb).unwrap();
        assert_eq!(
            (ca.shape(), cb.shape()),
            (&[own.rank, 5][..], &[4, own.rank][..])
        );
        let mut update = naive_product(&matrix(&cb), &matrix(&ca));
        update.data.iter_mut().for_each(|v| *v *= own.scale);
        let dropped = sigma[own.rank..].iter().map(|s| s * s).sum::<f64>().sqrt();
        let err = frobenius(&difference(&delta_w, &update));
        assert!(
            (err - dropped).abs() < 1e-5,
            "client {c}: error {err}, dropped {dropped}"
        );
        let leading: Vec<(usize, f64)> = (0..own.rank).map(|i| (i, sigma[i])).collect();
        assert_close(&update, &rank_sum(&leading), 1e-5);
    }
}

#[test]
fn flexlora_refuses_a_rank_larger_than_the_layer() {
    let b = mat(2, 1, &[1.0, 1.0]);
    let a = mat(1, 3, &[1.0, 0.0, 0.0]);
    let e = flexlora::truncate(&b, &a, 3, 1.0).unwrap_err();
    assert!(e.contains("rank 3 exceeds"), "{e}");
}

#[test]
fn flexlora_completes_a_with_orthonormal_rows_where_the_update_has_lower_rank() {
    // A rank-1 update asked at rank 3: B has one non-zero column, A three orthonormal rows.
    let b = mat(4, 1, &[1.0, 2.0, 0.0, 0.0]);
    let a = mat(1, 5, &[0.0, 3.0, 4.0, 0.0, 0.0]);
    let (na, nb) = flexlora::truncate(&b, &a, 3, 2.0).unwrap();
    let mut eye = Mat::zeros(3, 3);
    (0..3).for_each(|i| eye.set(i, i, 1.0));
    assert_close(&naive_product(&na, &na.transpose()), &eye, 1e-9);
    let mut product = naive_product(&nb, &na);
    product.data.iter_mut().for_each(|v| *v *= 2.0);
    assert_close(&product, &naive_product(&b, &a), 1e-9);
}

/// HetLoRA's fixture on a 2 × 3 layer: client 0 (rank 1, s = 1) with ‖B0A0‖ = 5, client 1
/// (rank 2, s = 3) with ‖B1A1‖ = 5, so the norms of the updates are 5 and 15.
fn hetlora_clients(zero: bool) -> (Vec<Vec<LowRankModule>>, Vec<ClientUpdate>) {
    let k = if zero { 0.0 } else { 1.0 };
    let a0 = mat(1, 3, &[3.0, 4.0, 0.0]);
    let b0 = mat(2, 1, &[k, 0.0]);
    let a1 = mat(2, 3, &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    let b1 = mat(2, 2, &[0.0, 0.0, 0.0, 5.0 * k]);
    let clients = vec![vec![module(1, 1.0)], vec![module(2, 3.0)]];
    (
        clients,
        vec![upload(0, 10, &a0, &b0), upload(1, 30, &a1, &b1)],
    )
}

#[test]
fn hetlora_pads_weights_by_update_norm_and_truncates_on_the_way_down() {
    let (clients, updates) = hetlora_clients(false);
    let mut rule = NormWeightedPadding::default();
    rule.set_clients(&clients);
    let mut global = ParamSet::new();
    rule.apply(1, &clients[0], &mut global, &updates).unwrap();
    let m = &clients[1][0];
    let (ga, gb) = (global.get(&m.a).unwrap(), global.get(&m.b).unwrap());
    // w = (5, 15) / 20 = (0.25, 0.75).
    // A = 0.25·[3 4 0; 0 0 0] + 0.75·[1 0 0; 0 1 0]; B = 0.25·[1 0; 0 0] + 0.75·[0 0; 0 5].
    assert_close(
        &matrix(ga),
        &mat(2, 3, &[1.5, 1.0, 0.0, 0.0, 0.75, 0.0]),
        1e-6,
    );
    assert_close(&matrix(gb), &mat(2, 2, &[0.25, 0.0, 0.0, 3.75]), 1e-6);
    let a0 = rule.client_factor(0, 0, Role::A, ga).unwrap();
    let b0 = rule.client_factor(0, 0, Role::B, gb).unwrap();
    assert_close(&matrix(&a0), &mat(1, 3, &[1.5, 1.0, 0.0]), 1e-6);
    assert_close(&matrix(&b0), &mat(2, 1, &[0.25, 0.0]), 1e-6);
    let a1 = rule.client_factor(1, 0, Role::A, ga).unwrap();
    assert_eq!(a1.data(), ga.data());
}

#[test]
fn hetlora_falls_back_to_example_weights_when_every_update_is_zero() {
    let (clients, updates) = hetlora_clients(true);
    let factors = client_factors(&clients, &updates, [0.25, 0.75]);
    assert_eq!(hetlora::norm_weights(&factors), vec![0.25, 0.75]);
    let (a, _) = hetlora::padded_sum(&factors, &[0.25, 0.75], 2);
    assert_close(&a, &mat(2, 3, &[1.5, 1.0, 0.0, 0.0, 0.75, 0.0]), 1e-9);
}

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

/// Fake clients of ranks `ranks` (A `[r, 3]`, B `[4, r]`), scale `2/r`, 10·(k+1) examples.
fn fakes(ranks: &[usize]) -> Vec<FakeTrainer> {
    ranks
        .iter()
        .enumerate()
        .map(|(id, &r)| {
            FakeTrainer::with_rank(id, 10 * (id + 1), 1, r, 99).with_scale(2.0 / r as f64)
        })
        .collect()
}

fn federation(strategy: &Strategy, ranks: &[usize]) -> Federation {
    let boxed: Vec<Box<dyn ClientTrainer>> = fakes(ranks)
        .into_iter()
        .map(|c| Box::new(c) as Box<dyn ClientTrainer>)
        .collect();
    let mut fed = Federation::new(
        settings(ranks.len(), 3),
        strategy.clone(),
        Box::new(WeightedMean),
        boxed,
        Box::new(NoEvents),
    )
    .unwrap();
    fed.set_module_rule(module_rule(strategy.server).expect("a rule"))
        .unwrap();
    fed
}

fn factor(fed: &Federation, c: usize, role: &str) -> TensorData {
    let name = format!("layer.0.lora_{role}.weight");
    fed.clients()[c]
        .params(std::slice::from_ref(&name))
        .unwrap()
        .get(&name)
        .unwrap()
        .clone()
}

#[test]
fn each_rank_rule_runs_a_federation_of_different_ranks_with_bytes_by_rank() {
    let ranks = [1usize, 2, 3];
    for strategy in [Strategy::flora(), Strategy::flexlora(), Strategy::hetlora()] {
        let mut fed = federation(&strategy, &ranks);
        for _ in 0..3 {
            let record = fed.run_round().unwrap();
            assert!(record.aggregated, "{}", strategy.name);
            // Up: A [r, 3] and B [4, r] plus the 2-value head, in f32, summed over clients.
            let want: u64 = ranks.iter().map(|&r| 4 * (7 * r as u64 + 2)).sum();
            assert_eq!(record.bytes_up, want, "{}", strategy.name);
        }
        for (c, &r) in ranks.iter().enumerate() {
            let (a, b) = (factor(&fed, c, "A"), factor(&fed, c, "B"));
            assert_eq!((a.shape(), b.shape()), (&[r, 3][..], &[4, r][..]));
        }
    }
}

#[test]
fn flora_clients_hold_the_merged_sum_and_restart_their_factors() {
    let strategy = Strategy::flora();
    let ranks = [1, 2];
    // What each client sends after its first round, trained alone from the same start.
    let alone: Vec<ParamSet> = fakes(&ranks)
        .into_iter()
        .map(|mut c| {
            c.configure(&strategy).unwrap();
            c.train(1).unwrap();
            c.all_params().clone()
        })
        .collect();
    let a = "layer.0.lora_A.weight";
    let b = "layer.0.lora_B.weight";
    let mut expected = Mat::zeros(4, 3);
    let p = [10.0 / 30.0, 20.0 / 30.0];
    for (k, params) in alone.iter().enumerate() {
        let product = naive_product(
            &matrix(params.get(b).unwrap()),
            &matrix(params.get(a).unwrap()),
        );
        expected.add_scaled(p[k] * 2.0 / ranks[k] as f64, &product);
    }
    assert!(frobenius(&expected) > 0.1, "the fixture trains B");
    let mut fed = federation(&strategy, &ranks);
    fed.run_round().unwrap();
    let name = base_delta_name("layer.0");
    assert_close(&matrix(fed.global().get(&name).unwrap()), &expected, 1e-5);
    // Every client (synced for evaluation) restarted: B zero, so its product is zero, and A
    // drawn afresh at its own rank.
    for (c, &r) in ranks.iter().enumerate() {
        let (fa, fb) = (factor(&fed, c, "A"), factor(&fed, c, "B"));
        assert_eq!(fa.shape(), &[r, 3]);
        assert!(fb.data().iter().all(|v| *v == 0.0), "client {c}: {fb:?}");
        assert_ne!(fa.data(), alone[c].get(a).unwrap().data(), "client {c}");
    }
}
