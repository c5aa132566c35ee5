//! The federation loop's rules, proved with the deterministic fake client.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

mod common;

use common::{client_params, clients, federation, names_with_role, settings};
use fedsa_core::testing::{FakeFaults, FakeTrainer};
use fedsa_core::{
    ClientTrainer, Event, Federation, NoEvents, ParamSet, Role, RoundRecord, Strategy, WeightedMean,
};

fn run_all(fed: &mut Federation) {
    fed.run(&AtomicBool::new(false), &mut |_, _| Ok(()))
        .unwrap();
}

#[test]
fn fedsa_sends_only_a_and_keeps_b_personal() {
    let mut fed = federation(Strategy::fedsa(), settings(3, 3, 3), clients(3));
    let a_names = names_with_role(&fed, Role::A);
    let b_names = names_with_role(&fed, Role::B);
    assert_eq!(fed.shared_names(), a_names.as_slice());

    let record = fed.run_round().unwrap();
    // Only A-role tensors leave a client: 2 layers x 2x3 f32 = 48 bytes per client.
    assert_eq!(record.bytes_up, 3 * 48);
    run_all(&mut fed);

    let b0 = client_params(&fed, 0, &b_names);
    let b1 = client_params(&fed, 1, &b_names);
    assert_ne!(b0, b1, "B must stay different per client under FedSA");
    // A is the server's aggregate on every client.
    for c in 0..3 {
        assert_eq!(&client_params(&fed, c, &a_names), fed.global());
    }
}

#[test]
fn fedit_leaves_every_client_with_identical_a_and_b() {
    let mut fed = federation(Strategy::fedit(), settings(3, 3, 2), clients(3));
    run_all(&mut fed);
    let all: Vec<String> = fed.roles().into_keys().collect();
    let first = client_params(&fed, 0, &all);
    for c in 1..3 {
        assert_eq!(client_params(&fed, c, &all), first);
    }
    // Everything crossed: A (2x3) + B (4x2) per layer, 2 layers, + head = 48 + 64 + 8 bytes
    // per client.
    assert_eq!(fed.history()[0].bytes_up, 3 * 120);
}

#[test]
fn ffa_never_changes_a() {
    let mut fed = federation(Strategy::ffa(), settings(3, 2, 4), clients(3));
    let a_names = names_with_role(&fed, Role::A);
    let before: Vec<ParamSet> = (0..3).map(|c| client_params(&fed, c, &a_names)).collect();
    run_all(&mut fed);
    for (c, b) in before.iter().enumerate() {
        assert_eq!(&client_params(&fed, c, &a_names), b);
    }
    assert!(!fed.shared_names().iter().any(|n| a_names.contains(n)));
}

#[test]
fn aggregate_is_the_example_weighted_mean() {
    // FedIT, one round: each client's head moves halfway from 0 to -id, so client c sends
    // [-c/2, -c/2]; weights 10, 20, 30 give -(0*10 + 0.5*20 + 1*30)/60 = -2/3.
    let mut fed = federation(Strategy::fedit(), settings(3, 3, 1), clients(3));
    fed.run_round().unwrap();
    let head = fed.global().get("classifier.weight").unwrap().data();
    for v in head {
        assert!((v - (-2.0 / 3.0)).abs() < 1e-6, "{v}");
    }
}

#[test]
fn failing_client_is_excluded_and_reported() {
    let mut cs = clients(3);
    cs[1] = cs[1].clone().with_faults(FakeFaults {
        fail_rounds: BTreeSet::from([1]),
        nan_rounds: BTreeSet::new(),
    });
    cs[2] = cs[2].clone().with_faults(FakeFaults {
        fail_rounds: BTreeSet::new(),
        nan_rounds: BTreeSet::from([1]),
    });
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let boxed: Vec<Box<dyn ClientTrainer>> = cs
        .into_iter()
        .map(|c| Box::new(c) as Box<dyn ClientTrainer>)
        .collect();
    let mut fed = Federation::new(
        settings(3, 3, 2),
        Strategy::fedit(),
        Box::new(WeightedMean),
        boxed,
        Box::new(move |e: Event| sink.lock().unwrap().push(e)),
    )
    .unwrap();
    let record = fed.run_round().unwrap();
    assert_eq!(record.succeeded, [0]);
    assert_eq!(record.failed, [1, 2]);
    assert!(record.aggregated);
    // Only client 0 (head -> [0, 0]) contributed.
    assert_eq!(
        fed.global().get("classifier.weight").unwrap().data(),
        [0.0, 0.0]
    );
    let failures: Vec<(usize, String)> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::ClientFailed { client, error, .. } => Some((*client, error.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(failures.len(), 2);
    assert!(failures[0].1.contains("simulated crash"), "{failures:?}");
    assert!(failures[1].1.contains("non-finite"), "{failures:?}");
    // The next round goes on with everyone.
    assert_eq!(fed.run_round().unwrap().succeeded, [0, 1, 2]);
}

#[test]
fn round_without_success_keeps_the_global_state_and_says_so() {
    let cs: Vec<FakeTrainer> = clients(2)
        .into_iter()
        .map(|c| {
            c.with_faults(FakeFaults {
                fail_rounds: BTreeSet::from([1]),
                nan_rounds: BTreeSet::new(),
            })
        })
        .collect();
    let mut fed = federation(Strategy::fedsa(), settings(2, 2, 2), cs);
    let before = fed.global().clone();
    let record = fed.run_round().unwrap();
    assert!(!record.aggregated);
    assert!(
        record
            .note
            .as_deref()
            .unwrap()
            .contains("previous global state is kept")
    );
    assert_eq!(fed.global(), &before);
}

#[test]
fn local_strategy_exchanges_nothing() {
    let mut fed = federation(Strategy::local(), settings(3, 3, 2), clients(3));
    run_all(&mut fed);
    assert!(
        fed.history()
            .iter()
            .all(|r| r.bytes_up == 0 && r.bytes_down == 0)
    );
}

#[test]
fn same_seed_gives_the_same_run_and_sampling_respects_clients_per_round() {
    let run = |seed: u64| {
        let mut s = settings(6, 2, 5);
        s.seed = seed;
        s.failure_rate = 0.3;
        let mut fed = federation(Strategy::fedsa(), s, clients(6));
        run_all(&mut fed);
        fed.history()
            .iter()
            .map(|r| RoundRecord {
                seconds: 0.0,
                ..r.clone()
            })
            .collect::<Vec<_>>()
    };
    let a = run(1);
    assert_eq!(a, run(1));
    assert_ne!(
        a.iter().map(|r| r.sampled.clone()).collect::<Vec<_>>(),
        run(2).iter().map(|r| r.sampled.clone()).collect::<Vec<_>>()
    );
    assert!(a.iter().all(|r| r.sampled.len() == 2));
}

#[test]
fn injected_failures_are_reported_over_many_rounds() {
    let mut s = settings(5, 5, 10);
    s.failure_rate = 0.3;
    let mut fed = federation(Strategy::fedsa(), s, clients(5));
    run_all(&mut fed);
    let failed: usize = fed.history().iter().map(|r| r.failed.len()).sum();
    // 50 draws at 0.3: the seeded run injects a plausible number, and every one is reported.
    assert!((5..=25).contains(&failed), "{failed}");
    let summary = fed.summary(0.0);
    assert_eq!(summary.failures, failed);
    assert_eq!(summary.rounds, 10);
}

#[test]
fn resumed_from_server_and_client_state_matches_uninterrupted_run() {
    let strip = |h: &[RoundRecord]| {
        h.iter()
            .map(|r| RoundRecord {
                seconds: 0.0,
                ..r.clone()
            })
            .collect::<Vec<_>>()
    };
    let mut full = federation(Strategy::fedsa(), settings(4, 2, 6), clients(4));
    run_all(&mut full);

    let mut first = federation(Strategy::fedsa(), settings(4, 2, 6), clients(4));
    for _ in 0..3 {
        first.run_round().unwrap();
    }
    let server = first.server_state().unwrap();
    let states: Vec<ParamSet> = first
        .clients()
        .iter()
        .map(|c| c.save_state().unwrap())
        .collect();

    let mut resumed = federation(Strategy::fedsa(), settings(4, 2, 6), clients(4));
    resumed.restore_server_state(server).unwrap();
    for (c, st) in resumed.clients_mut().iter_mut().zip(&states) {
        c.load_state(st).unwrap();
    }
    run_all(&mut resumed);
    assert_eq!(strip(full.history()), strip(resumed.history()));
    assert_eq!(full.global(), resumed.global());
}

#[test]
fn non_finite_aggregate_stops_the_run() {
    struct Poison;
    impl fedsa_core::Aggregator for Poison {
        fn name(&self) -> &'static str {
            "poison"
        }
        fn aggregate(
            &mut self,
            _round: usize,
            global: &ParamSet,
            _updates: &[fedsa_core::ClientUpdate],
            _failures: &[fedsa_core::ClientFailure],
        ) -> fedsa_core::Result<Option<ParamSet>> {
            let mut g = global.clone();
            let name = g.names().next().unwrap().clone();
            g.get_mut(&name).unwrap().data_mut()[0] = f32::INFINITY;
            Ok(Some(g))
        }
    }
    let boxed: Vec<Box<dyn ClientTrainer>> = clients(2)
        .into_iter()
        .map(|c| Box::new(c) as Box<dyn ClientTrainer>)
        .collect();
    let mut fed = Federation::new(
        settings(2, 2, 3),
        Strategy::fedsa(),
        Box::new(Poison),
        boxed,
        Box::new(NoEvents),
    )
    .unwrap();
    let before = fed.global().clone();
    let err = fed
        .run(&AtomicBool::new(false), &mut |_, _| Ok(()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not finite") && err.contains("poison"),
        "{err}"
    );
    assert_eq!(fed.global(), &before);
    assert_eq!(fed.completed_rounds(), 0);
}

#[test]
fn bad_settings_name_the_field() {
    let boxed: Vec<Box<dyn ClientTrainer>> = clients(2)
        .into_iter()
        .map(|c| Box::new(c) as Box<dyn ClientTrainer>)
        .collect();
    let err = Federation::new(
        settings(2, 3, 1),
        Strategy::fedsa(),
        Box::new(WeightedMean),
        boxed,
        Box::new(NoEvents),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("federation.clients_per_round"), "{err}");
}
