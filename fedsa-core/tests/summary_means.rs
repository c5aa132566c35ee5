//! The run summary's mean figures: what the federation's own history says, unweighted and
//! example-weighted, at the last and the best evaluated round.

use std::sync::atomic::AtomicBool;

use fedsa_core::testing::FakeTrainer;
use fedsa_core::{
    ClientTrainer, Federation, FederationSettings, MeanFigures, NoEvents, Strategy, WeightedMean,
};

#[test]
fn the_summary_carries_the_mean_figures_of_its_history() {
    // Clients of 10, 40 and 90 examples; evaluated in rounds 2, 4 and 5 (the last).
    let clients: Vec<Box<dyn ClientTrainer>> = [10, 40, 90]
        .into_iter()
        .enumerate()
        .map(|(id, n)| Box::new(FakeTrainer::new(id, n, 2, 5)) as Box<dyn ClientTrainer>)
        .collect();
    let settings = FederationSettings {
        num_clients: 3,
        clients_per_round: 2,
        rounds: 5,
        seed: 3,
        failure_rate: 0.0,
        eval_every: 2,
    };
    let mut fed = Federation::new(
        settings,
        Strategy::fedsa(),
        Box::new(WeightedMean),
        clients,
        Box::new(NoEvents),
    )
    .unwrap();
    let summary = fed
        .run(&AtomicBool::new(false), &mut |_, _| Ok(()))
        .unwrap();
    let means = summary.means.expect("a new summary has its means");
    assert_eq!(means, MeanFigures::from_rounds(fed.history()));
    assert_eq!(means.last_round, Some(5));
    // The figures the summary already had are the unweighted ones.
    assert_eq!(means.accuracy.last, summary.mean_accuracy);
    assert_eq!(means.macro_f1.last, summary.mean_f1);
    assert_eq!(means.accuracy.best, summary.best_mean_accuracy);
    let evaluated: Vec<usize> = fed
        .history()
        .iter()
        .filter(|r| r.mean_accuracy.is_some())
        .map(|r| r.round)
        .collect();
    assert_eq!(evaluated, [2, 4, 5]);
    for m in [
        means.accuracy,
        means.macro_f1,
        means.weighted_accuracy,
        means.weighted_f1,
    ] {
        assert!(evaluated.contains(&m.best_round.unwrap()), "{m:?}");
        assert!(m.best.unwrap() >= m.last.unwrap());
    }
    // Unequal clients: the weighted mean is another number.
    assert_ne!(means.weighted_accuracy.last, means.accuracy.last);
}
