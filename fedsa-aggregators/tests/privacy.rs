//! DP-FedAvg and its accountant: clipping, equal weights, the noise's spread and seeding, the
//! checkpointed release count, a federation resumed mid-run, and ε against Opacus.

mod common;

use common::{federation, max_diff, run, set, updates};
use fedsa_aggregators::{
    DpFedAvg, DpSettings, FedAdam, FedAdamSettings, RdpAccountant, compute_rdp, default_orders,
    with_privacy,
};
use fedsa_core::{Aggregator, ClientUpdate, Config, Error, ParamSet, PrivacySpent, WeightedMean};

fn settings(clip_norm: f64, noise_multiplier: f64) -> DpSettings {
    DpSettings {
        clip_norm,
        noise_multiplier,
        delta: 1e-5,
        sample_rate: 1.0,
        seed: 11,
    }
}

fn dp(clip_norm: f64, noise_multiplier: f64) -> DpFedAvg {
    DpFedAvg::new(
        Box::new(WeightedMean),
        settings(clip_norm, noise_multiplier),
    )
    .unwrap()
}

/// Two tensors, `a` and `b`, so that norms are taken over the whole upload.
fn two(a: &[f32], b: &[f32]) -> ParamSet {
    let mut p = ParamSet::new();
    p.insert("a", vec![a.len()], a.to_vec()).unwrap();
    p.insert("b", vec![b.len()], b.to_vec()).unwrap();
    p
}

fn update(client: usize, num_examples: usize, params: ParamSet) -> ClientUpdate {
    ClientUpdate {
        client,
        num_examples,
        params,
    }
}

/// `x - y` over every tensor, as one vector in name order.
fn delta(x: &ParamSet, y: &ParamSet) -> Vec<f64> {
    x.iter()
        .flat_map(|(n, t)| {
            t.data()
                .iter()
                .zip(y.get(n).unwrap().data())
                .map(|(a, b)| f64::from(*a) - f64::from(*b))
        })
        .collect()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

#[test]
fn clipping_bounds_the_whole_update_and_keeps_small_ones() {
    let global = two(&[0.5, -1.0, 2.0], &[0.25, 0.0]);
    let mut agg = dp(1.0, 0.0);
    // Each tensor's change alone is below C (0.8 each), the upload's is not (1.13): the clip is
    // over all shared tensors together.
    let big = two(&[1.3, -1.0, 2.0], &[0.25, 0.8]);
    let out = agg
        .aggregate(1, &global, &[update(0, 10, big.clone())], &[])
        .unwrap()
        .unwrap();
    let (d, raw) = (delta(&out, &global), delta(&big, &global));
    assert!(norm(&d) <= 1.0 + 1e-6, "{}", norm(&d));
    assert!(
        (norm(&d) - 1.0).abs() < 1e-6,
        "clipped to C exactly: {}",
        norm(&d)
    );
    // Scaled, not bent: the same direction as the raw update.
    for (c, r) in d.iter().zip(&raw) {
        assert!((c - r / norm(&raw)).abs() < 1e-6, "{c} {r}");
    }
    // Far larger updates too, from several clients at once.
    let huge = [
        update(0, 1, two(&[100.0, 3.0, -50.0], &[7.0, 9.0])),
        update(1, 1, two(&[-80.0, 0.0, 0.0], &[0.0, -60.0])),
    ];
    let out = agg.aggregate(2, &global, &huge, &[]).unwrap().unwrap();
    assert!(norm(&delta(&out, &global)) <= 1.0 + 1e-6);
    // An update inside the ball comes back exactly as sent.
    let small = two(&[0.6, -0.9, 2.1], &[0.35, 0.2]);
    assert!(norm(&delta(&small, &global)) < 1.0);
    let out = agg
        .aggregate(3, &global, &[update(0, 10, small.clone())], &[])
        .unwrap()
        .unwrap();
    assert_eq!(out, small);
}

#[test]
fn the_mean_gives_every_client_the_same_weight() {
    let mut agg = dp(10.0, 0.0);
    let global = set(&[0.0, 0.0]);
    let ups = updates(&[&[1.0, 2.0], &[3.0, -4.0]], &[1, 1000]);
    let out = agg.aggregate(1, &global, &ups, &[]).unwrap().unwrap();
    // Equal weights: (1 + 3)/2, (2 - 4)/2; the example-weighted mean would be near client 1's.
    assert_eq!(out.get("w").unwrap().data(), [2.0, -1.0]);
    let weighted = WeightedMean
        .aggregate(1, &global, &ups, &[])
        .unwrap()
        .unwrap();
    assert!(max_diff(&out, &weighted) > 0.9);
}

/// The noisy release of `m` updates that all equal the global state: pure noise.
fn noise_of(agg: &mut DpFedAvg, round: usize, m: usize, len: usize) -> Vec<f64> {
    let global = set(&vec![0.0; len]);
    let ups: Vec<ClientUpdate> = (0..m).map(|c| update(c, 5, global.clone())).collect();
    let out = agg.aggregate(round, &global, &ups, &[]).unwrap().unwrap();
    delta(&out, &global)
}

#[test]
fn the_noise_has_standard_deviation_sigma_c_over_m() {
    let n = 20_000;
    for (clip_norm, sigma, m) in [(1.0, 1.0, 1), (0.5, 1.3, 4), (2.0, 0.7, 10)] {
        let mut agg = dp(clip_norm, sigma);
        let noise = noise_of(&mut agg, 1, m, n);
        let mean = noise.iter().sum::<f64>() / n as f64;
        let std = (noise.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        let want = sigma * clip_norm / m as f64;
        // The sample std of 20k normals is within 0.5% of the true one (one standard error).
        assert!(
            (std / want - 1.0).abs() < 0.03,
            "C {clip_norm} σ {sigma} m {m}: {std} vs {want}"
        );
        assert!(mean.abs() < 0.03 * want, "{mean}");
        // Gaussian, not just the right spread: 68.27% within one standard deviation.
        let inside = noise.iter().filter(|x| x.abs() < want).count() as f64 / n as f64;
        assert!((inside - 0.6827).abs() < 0.012, "{inside}");
    }
}

#[test]
fn the_noise_is_a_function_of_seed_and_round() {
    let (mut a, mut b) = (dp(1.0, 1.0), dp(1.0, 1.0));
    // Same round, fresh aggregators (a resumed run): the same noise.
    assert_eq!(noise_of(&mut a, 3, 2, 64), noise_of(&mut b, 3, 2, 64));
    // Another round, or another seed: other noise.
    assert_ne!(noise_of(&mut a, 4, 2, 64), noise_of(&mut b, 3, 2, 64));
    let mut other = DpFedAvg::new(
        Box::new(WeightedMean),
        DpSettings {
            seed: 12,
            ..settings(1.0, 1.0)
        },
    )
    .unwrap();
    assert_ne!(noise_of(&mut other, 3, 2, 64), noise_of(&mut b, 3, 2, 64));
}

#[test]
fn fedadam_steps_on_the_noisy_release() {
    let global = set(&[0.5, -0.5, 1.0]);
    let ups = updates(&[&[0.7, -0.1, 1.2], &[0.1, -0.9, 0.6]], &[3, 30]);
    let adam = FedAdamSettings::default();
    let mut wrapped = DpFedAvg::new(Box::new(FedAdam::new(adam)), settings(0.5, 0.8)).unwrap();
    assert_eq!(wrapped.name(), "dp-fedadam");
    let release = wrapped.release(1, &global, &ups).unwrap();
    let mut alone = FedAdam::new(adam);
    let want = alone
        .aggregate(1, &global, &[update(0, 1, release)], &[])
        .unwrap()
        .unwrap();
    let got = wrapped.aggregate(1, &global, &ups, &[]).unwrap().unwrap();
    assert_eq!(got, want);
    // The state holds the count and FedAdam's moments, under their own names.
    let state = wrapped.state().unwrap();
    let names: Vec<&String> = state.names().collect();
    assert_eq!(names, ["dp/releases", "inner/m/w", "inner/v/w"]);
    assert_eq!(state.get("inner/m/w"), alone.state().unwrap().get("m/w"));
}

#[test]
fn state_round_trips_the_releases_and_the_epsilon() {
    let mut agg = DpFedAvg::new(
        Box::new(WeightedMean),
        DpSettings {
            sample_rate: 0.3,
            ..settings(1.0, 1.0)
        },
    )
    .unwrap();
    assert_eq!(
        agg.privacy_spent(),
        Some(PrivacySpent {
            epsilon: 0.0,
            delta: 1e-5,
            releases: 0
        })
    );
    for round in 1..=8 {
        noise_of(&mut agg, round, 3, 4);
    }
    let spent = agg.privacy_spent().unwrap();
    assert_eq!(spent.releases, 8);
    // Opacus: q 0.3, σ 1.0, 8 releases, δ 1e-5 (the first row of OPACUS_EPSILON).
    assert!(
        (spent.epsilon / 7.143_560_250_939_117 - 1.0).abs() < 1e-3,
        "{spent:?}"
    );

    let state = agg.state().unwrap();
    let mut fresh = DpFedAvg::new(
        Box::new(WeightedMean),
        DpSettings {
            sample_rate: 0.3,
            ..settings(1.0, 1.0)
        },
    )
    .unwrap();
    fresh.load_state(&state).unwrap();
    assert_eq!(fresh.releases(), 8);
    assert_eq!(fresh.privacy_spent(), Some(spent));
    // An empty state is a run before its first checkpointed round.
    fresh.load_state(&ParamSet::new()).unwrap();
    assert_eq!(fresh.releases(), 0);
    // Damaged or foreign states are refused, naming the aggregator.
    for (name, value) in [("dp/releases", 2.5), ("dp/releases", -1.0), ("m/w", 0.0)] {
        let mut bad = ParamSet::new();
        bad.insert(name, vec![1], vec![value]).unwrap();
        let e = fresh.load_state(&bad).unwrap_err().to_string();
        assert!(e.starts_with("aggregator `dp-fedavg`: "), "{e}");
    }
}

#[test]
fn without_noise_no_privacy_is_claimed() {
    let mut agg = dp(1.0, 0.0);
    noise_of(&mut agg, 1, 2, 4);
    assert_eq!(agg.releases(), 1);
    assert_eq!(agg.privacy_spent(), None);
}

#[test]
fn bad_settings_name_the_config_field() {
    for (s, field) in [
        (settings(0.0, 1.0), "privacy.clip_norm"),
        (settings(f64::INFINITY, 1.0), "privacy.clip_norm"),
        (settings(1.0, -1.0), "privacy.noise_multiplier"),
        (
            DpSettings {
                delta: 1.0,
                ..settings(1.0, 1.0)
            },
            "privacy.delta",
        ),
        (
            DpSettings {
                sample_rate: 0.0,
                ..settings(1.0, 1.0)
            },
            "federation.clients_per_round",
        ),
    ] {
        match DpFedAvg::new(Box::new(WeightedMean), s) {
            Err(Error::Config { field: f, .. }) => assert_eq!(f, field),
            Err(other) => panic!("{field}: {other}"),
            Ok(_) => panic!("{field}: accepted"),
        }
    }
}

/// A federation of five fake clients (FedIT: every role shared), every one every round.
fn private_federation(rounds: usize) -> fedsa_core::Federation {
    federation(Box::new(dp(0.5, 1.0)), rounds)
}

#[test]
fn a_federation_reports_epsilon_and_resumes_with_the_same_noise() {
    let mut whole = private_federation(4);
    run(&mut whole).unwrap();
    let accountant = RdpAccountant::new(1.0, 1.0, 1e-5);
    for (t, record) in whole.history().iter().enumerate() {
        let spent = record.privacy.expect("every round reports its privacy");
        assert_eq!(spent.releases, t + 1);
        assert_eq!(spent.epsilon, accountant.epsilon(t + 1).0);
    }
    // ε grows with every release.
    let eps: Vec<f64> = whole
        .history()
        .iter()
        .map(|r| r.privacy.unwrap().epsilon)
        .collect();
    assert!(eps.windows(2).all(|w| w[0] < w[1]), "{eps:?}");

    // Interrupted after two rounds and resumed from the checkpointed states in a fresh
    // federation: the same global state, so the same noise was drawn.
    let mut before = private_federation(4);
    before.run_round().unwrap();
    before.run_round().unwrap();
    let server = before.server_state().unwrap();
    let mut after = private_federation(4);
    after.restore_server_state(server).unwrap();
    for (c, client) in before.clients().iter().enumerate() {
        let state = client.save_state().unwrap();
        after.clients_mut()[c].load_state(&state).unwrap();
    }
    run(&mut after).unwrap();
    assert_eq!(after.global(), whole.global());
    let privacy = |f: &fedsa_core::Federation| -> Vec<Option<PrivacySpent>> {
        f.history().iter().map(|r| r.privacy).collect()
    };
    assert_eq!(privacy(&after), privacy(&whole));

    // The noise moved the model: the same run without noise ends elsewhere.
    let mut clipped_only = federation(Box::new(dp(0.5, 0.0)), 4);
    run(&mut clipped_only).unwrap();
    assert!(max_diff(clipped_only.global(), whole.global()) > 1e-3);
}

#[test]
fn the_config_wraps_only_when_it_asks_for_privacy() {
    let base = "[model]\npath = \"m\"\n[data]\nformat = \"rotten_tomatoes\"\npath = \"d.csv\"\n[federation]\nnum_clients = 10\nclients_per_round = 3\n";
    let plain = Config::from_toml_str(base, "t.toml").unwrap();
    assert_eq!(
        with_privacy(Box::new(WeightedMean), &plain).unwrap().name(),
        "fedavg"
    );
    let private = Config::from_toml_str(
        &format!("{base}[privacy]\nclip_norm = 1.0\nnoise_multiplier = 1.0\n"),
        "t.toml",
    )
    .unwrap();
    let mut agg = with_privacy(Box::new(WeightedMean), &private).unwrap();
    assert_eq!(agg.name(), "dp-fedavg");
    noise_of_boxed(agg.as_mut());
    // q = 3/10, the run's seed: Opacus' ε for one release at q 0.3, σ 1.
    let want = RdpAccountant::new(0.3, 1.0, 1e-5).epsilon(1).0;
    assert_eq!(agg.privacy_spent().unwrap().epsilon, want);
    let e = with_privacy(Box::new(fedsa_aggregators::Median), &private)
        .err()
        .unwrap();
    assert!(
        matches!(&e, Error::Config { field, .. } if field == "strategy.aggregator"),
        "{e}"
    );
}

fn noise_of_boxed(agg: &mut dyn Aggregator) {
    let global = set(&[0.0; 4]);
    let ups = [update(0, 1, global.clone()), update(1, 1, global.clone())];
    agg.aggregate(1, &global, &ups, &[]).unwrap();
}

/// ε from Opacus 1.6.0's `compute_rdp` + `get_privacy_spent` over its default orders, printed
/// by `scripts/dp-reference.py`: (q, σ, releases, δ, ε, best order).
const OPACUS_EPSILON: [(f64, f64, usize, f64, f64, f64); 7] = [
    (0.3, 1.0, 8, 1e-05, 7.143_560_250_939_117, 3.2),
    (1.0, 1.1, 100, 1e-05, 83.099_779_499_436_18, 1.5),
    (0.01, 1.3, 1000, 1e-05, 1.262_807_267_273_403_2, 13.0),
    (0.1, 0.7, 50, 0.001, 8.585_616_354_780_425, 2.2),
    (0.5, 2.0, 20, 1e-06, 6.933_417_289_500_69, 4.4),
    (0.5, 1.0, 8, 1e-05, 10.329_924_500_489_437, 2.8),
    (1.0, 1.0, 8, 1e-05, 16.512_875_946_682_54, 2.6),
];

/// RDP of one release at single orders, from the same script: (q, σ, order, RDP).
const OPACUS_RDP: [(f64, f64, f64, f64); 6] = [
    (0.3, 1.0, 1.5, 0.093_563_666_488_377_22),
    (0.3, 1.0, 2.0, 0.143_793_253_156_339_98),
    (0.3, 1.0, 10.9, 4.124_542_802_180_097),
    (0.01, 1.3, 32.0, 4.713_732_662_629_803),
    (0.1, 0.7, 4.7, 1.877_668_054_228_630_4),
    (0.9, 0.5, 1.1, 1.870_209_790_023_420_5),
];

#[test]
fn epsilon_matches_opacus() {
    for (q, sigma, releases, delta, want, want_order) in OPACUS_EPSILON {
        let (eps, order) = RdpAccountant::new(q, sigma, delta).epsilon(releases);
        assert!(
            (eps / want - 1.0).abs() < 1e-3,
            "q {q} σ {sigma} T {releases} δ {delta}: {eps} vs Opacus {want}"
        );
        assert_eq!(order, want_order, "q {q} σ {sigma} T {releases}");
    }
}

#[test]
fn rdp_per_order_matches_opacus() {
    assert_eq!(default_orders().len(), 151);
    for (q, sigma, order, want) in OPACUS_RDP {
        let got = compute_rdp(q, sigma, order);
        assert!(
            (got / want - 1.0).abs() < 1e-9,
            "q {q} σ {sigma} α {order}: {got} vs Opacus {want}"
        );
    }
}
