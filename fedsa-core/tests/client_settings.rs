//! Per-client settings (`[clients]`): the config's checks and overrides, and the loop's
//! refusal of clients of different ranks under a strategy that needs one layout.

mod common;

use fedsa_core::testing::FakeTrainer;
use fedsa_core::{
    ClientTrainer, Config, Error, Federation, NoEvents, Strategy, TensorData, WeightedMean,
    slice_factor,
};

const BASE: &str = r#"
    [model]
    path = "m"
    [data]
    format = "rotten_tomatoes"
    path = "d.csv"
    [federation]
    num_clients = 3
    clients_per_round = 3
"#;

fn load(extra: &str) -> fedsa_core::Result<Config> {
    Config::from_toml_str(&format!("{BASE}\n{extra}"), "c.toml")
}

fn refused(extra: &str) -> (String, String) {
    match load(extra) {
        Err(Error::Config { field, message, .. }) => (field, message),
        other => panic!("{extra:?}: expected a config error, got {other:?}"),
    }
}

#[test]
fn client_lists_override_the_run_wide_values() {
    let c = load("[clients]\nrank = [4, 4, 4]\nlocal_steps = [2, 5, 9]\nbatch_size = [8, 16, 4]")
        .unwrap();
    assert_eq!(c.client_ranks(), vec![4, 4, 4]);
    assert!(!c.heterogeneous_ranks());
    assert_eq!(c.client_adapter(1).rank, 4);
    assert_eq!(c.adapter.rank, 8, "the run-wide rank stays as written");
    let t = c.client_training(2);
    assert_eq!((t.local_steps, t.batch_size), (9, 4));
    assert_eq!(c.client_training(0).lr, c.training.lr);
    assert_eq!(
        c.client_settings_lines(),
        vec![
            "client 0: rank 4, 2 steps, batch 8",
            "client 1: rank 4, 5 steps, batch 16",
            "client 2: rank 4, 9 steps, batch 4",
        ]
    );
    // Written back into a run folder, the lists survive.
    let again = Config::from_toml_str(&c.to_toml_string().unwrap(), "again.toml").unwrap();
    assert_eq!(again, c);
}

#[test]
fn without_client_lists_every_client_is_alike() {
    let c = load("").unwrap();
    assert!(c.clients.is_empty() && c.client_settings_lines().is_empty());
    assert_eq!(c.client_ranks(), vec![8, 8, 8]);
    assert_eq!(c.client_training(1), c.training);
    assert!(!c.to_toml_string().unwrap().contains("[clients]"));
}

#[test]
fn bad_client_lists_name_their_field() {
    let (field, message) = refused("[clients]\nrank = [4, 8]");
    assert_eq!(field, "clients.rank");
    assert!(
        message.contains("2 entries") && message.contains("num_clients = 3"),
        "{message}"
    );
    let (field, message) = refused("[clients]\nbatch_size = [8, 0, 8]");
    assert_eq!(field, "clients.batch_size");
    assert!(message.contains("client 1"), "{message}");
    assert_eq!(
        refused("[clients]\nlocal_steps = [1, 2, 3, 4]").0,
        "clients.local_steps"
    );
    assert_eq!(refused("[clients]\nranks = [4, 4, 4]").0, "clients.ranks");
}

#[test]
fn differing_ranks_are_refused_before_training() {
    for strategy in [
        "fedsa", "fedit", "ffa", "fedex", "rolora", "fedsvd", "feddpa",
    ] {
        let (field, message) = refused(&format!(
            "[clients]\nrank = [4, 8, 16]\n[strategy]\nname = \"{strategy}\""
        ));
        assert_eq!(field, "clients.rank", "{strategy}");
        assert!(
            message.contains(strategy)
                && message.contains("[4, 8, 16]")
                && message.contains("flora, flexlora, hetlora"),
            "{message}"
        );
    }
}

#[test]
fn differing_ranks_are_accepted_where_the_strategy_can_combine_them() {
    for strategy in ["flora", "flexlora", "hetlora", "local"] {
        let c = load(&format!(
            "[clients]\nrank = [4, 8, 16]\n[strategy]\nname = \"{strategy}\""
        ))
        .unwrap_or_else(|e| panic!("{strategy}: {e}"));
        assert_eq!(c.client_ranks(), vec![4, 8, 16]);
    }
    // The released code's shared model hands B from client to client: one rank only.
    let mut shared = Strategy::local();
    assert!(shared.accepts_differing_ranks());
    shared.shared_model = true;
    assert!(!shared.accepts_differing_ranks());
    assert!(!Strategy::feddpa().accepts_differing_ranks());
}

fn boxed(cs: Vec<FakeTrainer>) -> Vec<Box<dyn ClientTrainer>> {
    cs.into_iter()
        .map(|c| Box::new(c) as Box<dyn ClientTrainer>)
        .collect()
}

#[test]
fn the_loop_refuses_clients_of_different_ranks_under_fedsa() {
    let ranks = [2, 3];
    let cs = ranks
        .iter()
        .enumerate()
        .map(|(id, &r)| FakeTrainer::with_rank(id, 10, 2, r, 99))
        .collect();
    let err = Federation::new(
        common::settings(2, 2, 1),
        Strategy::fedsa(),
        Box::new(WeightedMean),
        boxed(cs),
        Box::new(NoEvents),
    )
    .err()
    .expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("clients.rank") && text.contains("client 1 has rank 3"),
        "{text}"
    );
}

#[test]
fn clients_of_one_larger_rank_federate_as_before() {
    let cs = (0..3)
        .map(|id| FakeTrainer::with_rank(id, 10 * (id + 1), 2, 3, 99))
        .collect();
    let mut fed = Federation::new(
        common::settings(3, 3, 2),
        Strategy::fedit(),
        Box::new(WeightedMean),
        boxed(cs),
        Box::new(NoEvents),
    )
    .unwrap();
    assert!(fed.client_modules(2).iter().all(|m| m.rank == 3));
    let record = fed.run_round().unwrap();
    // Up per client: 2 layers × (A 3×3 + B 4×3) + head 2, in f32.
    assert_eq!(record.bytes_up, 3 * 4 * (2 * (9 + 12) + 2));
}

#[test]
fn a_slice_of_a_factor_is_its_leading_components() {
    let a = TensorData::new(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let one = slice_factor("a", fedsa_core::Role::A, &a, 1).unwrap();
    assert_eq!(one.data(), &[1.0, 2.0]);
    let err = slice_factor("a", fedsa_core::Role::A, &a, 3).unwrap_err();
    assert!(err.to_string().contains("rank 3"), "{err}");
}
