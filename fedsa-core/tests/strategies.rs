//! The strategies whose plan is more than one fixed row — RoLoRA's alternation and the
//! released FedSA code's shared-model mode — on the deterministic fake clients.

use std::sync::atomic::AtomicBool;

mod common;

use common::{client_params, clients, names_with_role, settings};

use fedsa_core::testing::FakeTrainer;
use fedsa_core::{ClientTrainer, Federation, FederationSettings, ParamSet, Role, Strategy};

fn federation(strategy: Strategy, s: FederationSettings) -> Federation {
    let n = s.num_clients;
    common::federation(strategy, s, clients(n))
}

#[test]
fn rolora_freezes_the_other_factor_and_aggregates_exactly() {
    let n = 3;
    let mut fed = federation(Strategy::rolora(), settings(n, n, 4));
    let (a, b) = (
        names_with_role(&fed, Role::A),
        names_with_role(&fed, Role::B),
    );
    for round in 1..=4 {
        let before: Vec<(ParamSet, ParamSet)> = (0..n)
            .map(|c| (client_params(&fed, c, &a), client_params(&fed, c, &b)))
            .collect();
        let record = fed.run_round().unwrap();
        let frozen = if round % 2 == 1 { &b } else { &a };
        for (c, (pa, pb)) in before.iter().enumerate() {
            let was = if round % 2 == 1 { pb } else { pa };
            assert_eq!(
                &client_params(&fed, c, frozen),
                was,
                "round {round}, client {c}"
            );
        }
        // Only the trained factor (2 layers) and the head go up: A is 2x3, B 4x2.
        let factor_bytes = if round % 2 == 1 { 2 * 6 * 4 } else { 2 * 8 * 4 };
        assert_eq!(
            record.bytes_up,
            (n * (factor_bytes + 8)) as u64,
            "round {round}"
        );
    }
}

#[test]
fn rolora_mean_of_the_trained_factor_is_the_mean_of_the_products() {
    let n = 3;
    let mut fed = federation(Strategy::rolora(), settings(n, n, 1));
    let (a_names, b_names) = (
        names_with_role(&fed, Role::A),
        names_with_role(&fed, Role::B),
    );
    let b0 = client_params(&fed, 0, &b_names);
    // Each client's A after round 1, trained apart from any federation.
    let alone: Vec<ParamSet> = (0..n)
        .map(|id| {
            let mut c = FakeTrainer::new(id, 10 * (id + 1), 2, 99);
            c.configure(&Strategy::rolora()).unwrap();
            c.set_trained_roles(&Strategy::rolora().plan(1).trained_roles())
                .unwrap();
            c.train(1).unwrap();
            c.params(&a_names).unwrap()
        })
        .collect();
    fed.run_round().unwrap();
    let weights = [10.0 / 60.0, 20.0 / 60.0, 30.0 / 60.0];
    for name in &a_names {
        let got = fed.global().require(name).unwrap().data().to_vec();
        for (i, g) in got.iter().enumerate() {
            let want: f64 = alone
                .iter()
                .zip(weights)
                .map(|(p, w)| w * f64::from(p.require(name).unwrap().data()[i]))
                .sum();
            assert!(
                (f64::from(*g) - want).abs() < 1e-6,
                "{name}[{i}]: {g} vs {want}"
            );
        }
    }
    // With B common, Σp_k B·A_k = B·(Σp_k A_k): the mean of the trained factor is the exact
    // mean of the products, because every client's B is still the common one.
    for c in 0..n {
        assert_eq!(client_params(&fed, c, &b_names), b0);
    }
}

#[test]
fn rolora_sends_down_only_what_changed() {
    let n = 2;
    let mut fed = federation(Strategy::rolora(), settings(n, n, 3));
    fed.run(&AtomicBool::new(false), &mut |_, _| Ok(()))
        .unwrap();
    let h = fed.history();
    // Round 1: everything the server holds (A, B, head) goes to each client before training;
    // for evaluation, only what round 1 changed: A and the head.
    let all = 2 * (6 + 8) * 4 + 8;
    let a_head = 2 * 6 * 4 + 8;
    let b_head = 2 * 8 * 4 + 8;
    assert_eq!(h[0].bytes_down, (n * (all + a_head)) as u64);
    // Round 2: the clients hold all of it; B and the head change, and go down for evaluation.
    assert_eq!(h[1].bytes_down, (n * b_head) as u64);
    assert_eq!(h[2].bytes_down, (n * a_head) as u64);
}

#[test]
fn shared_model_mode_hands_b_and_head_from_client_to_client() {
    let strategy = Strategy {
        shared_model: true,
        ..Strategy::fedsa()
    };
    let mut fed = federation(strategy, settings(2, 2, 1));
    let b = names_with_role(&fed, Role::B);
    let record = fed.run_round().unwrap();
    let (first, second) = (record.sampled[0], record.sampled[1]);
    // The fake pulls each trained value half way to its client's target: B targets are
    // 1 + id. The first client trains from the zero init: 0.5·t_first. The second starts
    // from what the first left: 0.5·t_first + 0.5·(t_second − 0.5·t_first).
    let t = |c: usize| 1.0 + c as f32;
    let want = 0.5 * t(first) + 0.5 * (t(second) - 0.5 * t(first));
    // Every client is evaluated with the last B: the second's.
    for c in 0..2 {
        for v in client_params(&fed, c, &b)
            .iter()
            .flat_map(|(_, t)| t.data().to_vec())
        {
            assert!((v - want).abs() < 1e-6, "client {c}: {v} vs {want}");
        }
    }
    // Without the mode each client keeps its own B.
    let mut own = federation(Strategy::fedsa(), settings(2, 2, 1));
    own.run_round().unwrap();
    for c in 0..2 {
        for v in client_params(&own, c, &b)
            .iter()
            .flat_map(|(_, t)| t.data().to_vec())
        {
            assert!((v - 0.5 * t(c)).abs() < 1e-6, "client {c}: {v}");
        }
    }
}

#[test]
fn shared_model_mode_resumes_exactly() {
    let strategy = Strategy {
        shared_model: true,
        ..Strategy::fedsa()
    };
    let strip = |fed: &Federation| {
        fed.history()
            .iter()
            .map(|r| fedsa_core::RoundRecord {
                seconds: 0.0,
                ..r.clone()
            })
            .collect::<Vec<_>>()
    };
    let mut full = federation(strategy.clone(), settings(3, 2, 4));
    full.run(&AtomicBool::new(false), &mut |_, _| Ok(()))
        .unwrap();
    let mut first = federation(strategy.clone(), settings(3, 2, 4));
    first.run_round().unwrap();
    first.run_round().unwrap();
    let server = first.server_state().unwrap();
    let states: Vec<ParamSet> = first
        .clients()
        .iter()
        .map(|c| c.save_state().unwrap())
        .collect();
    let mut resumed = federation(strategy, settings(3, 2, 4));
    resumed.restore_server_state(server).unwrap();
    for (c, s) in resumed.clients_mut().iter_mut().zip(&states) {
        c.load_state(s).unwrap();
    }
    resumed
        .run(&AtomicBool::new(false), &mut |_, _| Ok(()))
        .unwrap();
    assert_eq!(strip(&full), strip(&resumed));
}
