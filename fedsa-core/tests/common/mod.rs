//! The fake federation the loop's tests share: settings, clients, and what a client holds.
#![allow(dead_code)]

use fedsa_core::testing::FakeTrainer;
use fedsa_core::{
    ClientTrainer, Federation, FederationSettings, NoEvents, ParamSet, Role, Strategy, WeightedMean,
};

pub fn settings(n: usize, per_round: usize, rounds: usize) -> FederationSettings {
    FederationSettings {
        num_clients: n,
        clients_per_round: per_round,
        rounds,
        seed: 7,
        failure_rate: 0.0,
        eval_every: 1,
    }
}

pub fn clients(n: usize) -> Vec<FakeTrainer> {
    (0..n)
        .map(|id| FakeTrainer::new(id, 10 * (id + 1), 2, 99))
        .collect()
}

pub fn federation(strategy: Strategy, s: FederationSettings, cs: Vec<FakeTrainer>) -> Federation {
    let boxed: Vec<Box<dyn ClientTrainer>> = cs
        .into_iter()
        .map(|c| Box::new(c) as Box<dyn ClientTrainer>)
        .collect();
    Federation::new(
        s,
        strategy,
        Box::new(WeightedMean),
        boxed,
        Box::new(NoEvents),
    )
    .unwrap()
}

pub fn names_with_role(fed: &Federation, role: Role) -> Vec<String> {
    fed.roles()
        .into_iter()
        .filter(|(_, r)| *r == role)
        .map(|(n, _)| n)
        .collect()
}

pub fn client_params(fed: &Federation, c: usize, names: &[String]) -> ParamSet {
    fed.clients()[c].params(names).unwrap()
}
