//! Snapshots of the command line's tables: the end-of-run summary of `fedsa run` and the
//! tables of `fedsa compare`, with the client means unweighted and example-weighted, at the
//! last and the best round; a run from before the weighted means shows `-` for them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use fedsa_core::{
    EvalMetrics, MeanFigures, RoundRecord, RunSummary, TaskKind, mean, weighted_mean_of,
};
use fedsa_engine::runs::RunHistory;
use fedsa_tui::cli::progress::summary_table;
use fedsa_tui::cli::tables::comparison_table;
use insta::assert_snapshot;

/// Test examples of the three clients: unequal, as in the quickstart.
const EXAMPLES: [usize; 3] = [234, 85, 82];

fn eval(accuracy: f64, macro_f1: f64, num_examples: usize) -> EvalMetrics {
    EvalMetrics {
        loss: 1.0 - accuracy,
        accuracy,
        macro_f1,
        num_examples,
        extra: BTreeMap::new(),
    }
}

/// The clients' evaluations after round `round`: client 0 (the largest) is worse and peaks
/// late, clients 1 and 2 peak in round 3.
fn evals(round: usize) -> Vec<EvalMetrics> {
    let r = round as f64;
    let peak = 1.0 - 0.02 * (r - 3.0).abs();
    vec![
        eval(0.55 + 0.02 * r, 0.5 + 0.03 * r, EXAMPLES[0]),
        eval(0.9 * peak, 0.48 * peak, EXAMPLES[1]),
        eval(0.92 * peak, 0.47 + 0.01 * r, EXAMPLES[2]),
    ]
}

/// Round `round`, evaluated unless `evaluated` is false; its means as the federation makes them.
fn round(round: usize, evaluated: bool) -> RoundRecord {
    let evals = if evaluated { evals(round) } else { vec![] };
    let weighted = |f: fn(&EvalMetrics) -> f64| {
        weighted_mean_of(evals.iter().map(|e| (f(e), e.num_examples as f64)))
    };
    RoundRecord {
        round,
        sampled: vec![0, 1, 2],
        succeeded: vec![0, 1, 2],
        failed: vec![],
        aggregated: true,
        note: None,
        mean_accuracy: mean(evals.iter().map(|e| e.accuracy)),
        mean_f1: mean(evals.iter().map(|e| e.macro_f1)),
        mean_loss: mean(evals.iter().map(|e| e.loss)),
        mean_train_loss: Some(0.4),
        weighted_accuracy: weighted(|e| e.accuracy),
        weighted_f1: weighted(|e| e.macro_f1),
        privacy: None,
        bytes_down: 6144,
        bytes_up: 3072,
        seconds: 10.0,
    }
}

/// Five rounds, round 4 not evaluated.
fn rounds() -> Vec<RoundRecord> {
    (1..=5).map(|r| round(r, r != 4)).collect()
}

fn summary(rounds: &[RoundRecord]) -> RunSummary {
    let last = rounds.iter().rev().find(|r| r.mean_accuracy.is_some());
    RunSummary {
        rounds: rounds.len(),
        strategy: "fedsa".into(),
        clients: evals(5).into_iter().map(Some).collect(),
        mean_accuracy: last.and_then(|r| r.mean_accuracy),
        mean_f1: last.and_then(|r| r.mean_f1),
        best_mean_accuracy: rounds
            .iter()
            .filter_map(|r| r.mean_accuracy)
            .reduce(f64::max),
        means: Some(MeanFigures::from_rounds(rounds)),
        total_bytes_down: rounds.iter().map(|r| r.bytes_down).sum(),
        total_bytes_up: rounds.iter().map(|r| r.bytes_up).sum(),
        failures: 0,
        seconds: 50.0,
        failed: None,
    }
}

fn history(name: &str, strategy: &str, rounds: Vec<RoundRecord>) -> RunHistory {
    RunHistory {
        name: name.into(),
        path: PathBuf::from("runs").join(name),
        strategy: Some(strategy.into()),
        adapter: Some("lora".into()),
        num_clients: Some(3),
        rounds,
        ..RunHistory::default()
    }
}

#[test]
fn the_run_summary_gives_the_means_at_the_last_and_the_best_round() {
    let rounds = rounds();
    let summary = summary(&rounds);
    let means = summary.means.unwrap();
    // The figures the table prints: the weighted mean is another number, its best another round.
    assert_eq!(means.last_round, Some(5));
    assert_eq!(means.accuracy.best_round, Some(3));
    assert_eq!(means.weighted_accuracy.best_round, Some(5));
    assert_ne!(means.weighted_accuracy.last, means.accuracy.last);
    assert_snapshot!(summary_table(&summary, TaskKind::Classification));
}

#[test]
fn a_summary_without_means_prints_as_before() {
    let mut summary = summary(&rounds());
    summary.means = None;
    let table = summary_table(&summary, TaskKind::Classification);
    assert!(!table.contains("client means"), "{table}");
    assert!(table.contains("best mean accuracy"), "{table}");
}

#[test]
fn compare_gives_every_runs_means_and_dashes_for_what_an_old_run_lacks() {
    let new = rounds();
    let mut finished = history("fedsa-alpha0.5", "fedsa", new.clone());
    finished.summary = Some(summary(&new));
    // Written before the weighted means existed, and stopped: no summary.
    let old = history(
        "fedit-old",
        "fedit",
        rounds()
            .into_iter()
            .map(|r| RoundRecord {
                weighted_accuracy: None,
                weighted_f1: None,
                ..r
            })
            .collect(),
    );
    let mut generation = history("gen-fedsa", "fedsa", rounds());
    generation.task = TaskKind::Generation;
    let figures = [finished.figures(), old.figures(), generation.figures()];
    assert_eq!(figures[0].means, finished.summary.unwrap().means.unwrap());
    assert_eq!(figures[1].means.accuracy, figures[0].means.accuracy);
    assert_eq!(figures[1].means.weighted_accuracy.best, None);
    let table = comparison_table(&figures);
    let means = table
        .lines()
        .skip_while(|l| !l.starts_with("client means"))
        .take_while(|l| !l.is_empty());
    for line in means {
        assert!(
            line.chars().count() <= 80,
            "wider than 80 columns: {line:?}"
        );
    }
    assert_snapshot!(table);
}
