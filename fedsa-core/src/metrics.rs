//! Per-client and per-round records: what the federation reports, what `metrics.jsonl` holds.

use serde::{Deserialize, Serialize};

use crate::{EvalMetrics, TrainStats};

/// One client in one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientRoundRecord {
    pub round: usize,
    pub client: usize,
    /// Sampled for training this round.
    pub sampled: bool,
    /// Local training, if the client was sampled and succeeded.
    pub train: Option<TrainStats>,
    /// Why the client failed, if it did.
    pub failure: Option<String>,
    /// Evaluation on the client's own test split, if evaluated this round.
    pub eval: Option<EvalMetrics>,
    pub num_train_examples: usize,
    /// Payload bytes the server sent this client this round.
    pub bytes_down: u64,
    /// Payload bytes this client sent the server this round.
    pub bytes_up: u64,
    pub train_seconds: f64,
}

/// One round over all clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    pub round: usize,
    pub sampled: Vec<usize>,
    pub succeeded: Vec<usize>,
    pub failed: Vec<usize>,
    /// Whether the global shared state changed this round.
    pub aggregated: bool,
    /// Why it did not, when it did not.
    pub note: Option<String>,
    /// Plain means over the clients evaluated this round.
    pub mean_accuracy: Option<f64>,
    pub mean_f1: Option<f64>,
    pub mean_loss: Option<f64>,
    /// Mean training loss over the clients that trained.
    pub mean_train_loss: Option<f64>,
    /// Means over the clients evaluated this round, each client weighted by its number of
    /// test examples (the paper's headline is the plain mean; both are reported).
    #[serde(default)]
    pub weighted_accuracy: Option<f64>,
    #[serde(default)]
    pub weighted_f1: Option<f64>,
    /// Differential privacy spent up to and including this round, when the run has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<PrivacySpent>,
    pub bytes_down: u64,
    pub bytes_up: u64,
    pub seconds: f64,
}

/// The privacy a differentially private run has spent so far: `(epsilon, delta)`-DP over the
/// `releases` noisy aggregates made.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrivacySpent {
    pub epsilon: f64,
    pub delta: f64,
    pub releases: usize,
}

/// The outcome of a whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub rounds: usize,
    pub strategy: String,
    /// Final evaluation per client (index = client id).
    pub clients: Vec<Option<EvalMetrics>>,
    pub mean_accuracy: Option<f64>,
    pub mean_f1: Option<f64>,
    pub best_mean_accuracy: Option<f64>,
    /// Accuracy and macro-F1, unweighted and example-weighted client means, at the last and
    /// at the best round (see [`MeanFigures`]); absent in a summary written before it existed.
    #[serde(default)]
    pub means: Option<MeanFigures>,
    pub total_bytes_down: u64,
    pub total_bytes_up: u64,
    pub failures: usize,
    pub seconds: f64,
    /// Why the run counts as failed, when it does (see the README's exit codes); absent in
    /// a run that succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// One client mean across a run's evaluated rounds: at the last of them, and at the best.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct MeanFigure {
    /// The value at the last evaluated round.
    pub last: Option<f64>,
    /// The highest value over the evaluated rounds; `None` when one of them lacks it (a
    /// record from before the figure existed), since the best of a part is not the best.
    pub best: Option<f64>,
    /// The round of `best`: the earliest, on ties.
    pub best_round: Option<usize>,
}

/// A run's headline figures, as the FedSA-LoRA paper reports them: the clients' accuracy and
/// macro-F1 on their own test splits, averaged unweighted (each client counts once: the
/// paper's headline, taken at the best round) and weighted by each client's number of test
/// examples, each at the last evaluated round and at the best one.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct MeanFigures {
    /// The last evaluated round.
    pub last_round: Option<usize>,
    pub accuracy: MeanFigure,
    pub macro_f1: MeanFigure,
    pub weighted_accuracy: MeanFigure,
    pub weighted_f1: MeanFigure,
}

impl MeanFigures {
    /// The figures of `rounds` (in any order). A round is evaluated when it has a mean
    /// accuracy; rounds without evaluation are skipped. Best is the maximum (NaN loses to any
    /// number, as in `f64::max`), ties going to the earliest round.
    pub fn from_rounds(rounds: &[RoundRecord]) -> MeanFigures {
        let mut evaluated: Vec<&RoundRecord> = rounds
            .iter()
            .filter(|r| r.mean_accuracy.is_some())
            .collect();
        evaluated.sort_by_key(|r| r.round);
        let figure = |value: fn(&RoundRecord) -> Option<f64>| {
            let mut best: Option<(f64, usize)> = None;
            let mut complete = true;
            for r in &evaluated {
                let Some(v) = value(r) else {
                    complete = false;
                    continue;
                };
                if best.is_none_or(|(b, _)| v > b || (b.is_nan() && !v.is_nan())) {
                    best = Some((v, r.round));
                }
            }
            let best = best.filter(|_| complete);
            MeanFigure {
                last: evaluated.last().and_then(|r| value(r)),
                best: best.map(|(v, _)| v),
                best_round: best.map(|(_, round)| round),
            }
        };
        MeanFigures {
            last_round: evaluated.last().map(|r| r.round),
            accuracy: figure(|r| r.mean_accuracy),
            macro_f1: figure(|r| r.mean_f1),
            weighted_accuracy: figure(|r| r.weighted_accuracy),
            weighted_f1: figure(|r| r.weighted_f1),
        }
    }
}

/// Mean of the present `(value, weight)` pairs weighted by `weight`; `None` when there are none
/// or every weight is zero.
pub fn weighted_mean_of(values: impl IntoIterator<Item = (f64, f64)>) -> Option<f64> {
    let (sum, total) = values
        .into_iter()
        .fold((0.0, 0.0), |(s, t), (v, w)| (s + v * w, t + w));
    (total > 0.0).then(|| sum / total)
}

/// Plain mean of the present values, `None` when there are none.
pub fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Round `round` with clients' `(accuracy, macro_f1, test examples)`, its means made as the
    /// federation makes them; no clients: a round without evaluation.
    fn round(round: usize, clients: &[(f64, f64, usize)]) -> RoundRecord {
        let weighted = |f: fn(&(f64, f64, usize)) -> f64| {
            weighted_mean_of(clients.iter().map(|c| (f(c), c.2 as f64)))
        };
        RoundRecord {
            round,
            sampled: vec![],
            succeeded: vec![],
            failed: vec![],
            aggregated: true,
            note: None,
            mean_accuracy: mean(clients.iter().map(|c| c.0)),
            mean_f1: mean(clients.iter().map(|c| c.1)),
            mean_loss: None,
            mean_train_loss: None,
            weighted_accuracy: weighted(|c| c.0),
            weighted_f1: weighted(|c| c.1),
            privacy: None,
            bytes_down: 0,
            bytes_up: 0,
            seconds: 0.0,
        }
    }

    fn figure(last: f64, best: f64, best_round: usize) -> MeanFigure {
        MeanFigure {
            last: Some(last),
            best: Some(best),
            best_round: Some(best_round),
        }
    }

    /// Two clients, the second with three times the test examples (dyadic values: the means
    /// are exact). Rounds 2 and 5 are not evaluated.
    fn rounds() -> Vec<RoundRecord> {
        vec![
            // acc 0.5 / weighted 0.375; F1 0.5 / 0.5.
            round(1, &[(0.75, 0.5, 1), (0.25, 0.5, 3)]),
            round(2, &[]),
            // acc 0.75 / 0.625; F1 0.5 (ties round 1) / 0.625.
            round(3, &[(1.0, 0.25, 1), (0.5, 0.75, 3)]),
            // acc 0.75 (ties round 3) / 0.875; F1 0.375 / 0.3125.
            round(4, &[(0.5, 0.5, 1), (1.0, 0.25, 3)]),
            round(5, &[]),
        ]
    }

    #[test]
    fn mean_figures_take_the_last_evaluated_round_and_the_earliest_best() {
        let rounds = rounds();
        assert_eq!(rounds[0].weighted_accuracy, Some(0.375));
        assert_eq!(rounds[3].weighted_f1, Some(0.3125));
        let expected = MeanFigures {
            last_round: Some(4),
            accuracy: figure(0.75, 0.75, 3),
            macro_f1: figure(0.375, 0.5, 1),
            weighted_accuracy: figure(0.875, 0.875, 4),
            weighted_f1: figure(0.3125, 0.625, 3),
        };
        assert_eq!(MeanFigures::from_rounds(&rounds), expected);
        // The order the rounds come in does not matter.
        let mut reversed = rounds;
        reversed.reverse();
        assert_eq!(MeanFigures::from_rounds(&reversed), expected);
    }

    #[test]
    fn mean_figures_of_no_evaluated_round_are_absent() {
        assert_eq!(MeanFigures::from_rounds(&[]), MeanFigures::default());
        assert_eq!(
            MeanFigures::from_rounds(&[round(1, &[]), round(2, &[])]),
            MeanFigures::default()
        );
    }

    #[test]
    fn weighted_figures_missing_from_old_records_are_absent_never_guessed() {
        // Records written before the weighted means existed.
        let old: Vec<RoundRecord> = rounds()
            .into_iter()
            .map(|r| RoundRecord {
                weighted_accuracy: None,
                weighted_f1: None,
                ..r
            })
            .collect();
        let figures = MeanFigures::from_rounds(&old);
        assert_eq!(figures.accuracy, figure(0.75, 0.75, 3));
        assert_eq!(figures.weighted_accuracy, MeanFigure::default());
        assert_eq!(figures.weighted_f1, MeanFigure::default());
        // A run resumed by a newer version: the last round has the figure, but a best over
        // only the newer rounds would not be the run's best.
        let mut mixed = old;
        mixed[3] = rounds()[3].clone();
        let figures = MeanFigures::from_rounds(&mixed);
        assert_eq!(
            figures.weighted_accuracy,
            MeanFigure {
                last: Some(0.875),
                best: None,
                best_round: None,
            }
        );
    }

    #[test]
    fn the_best_ignores_nan_like_f64_max() {
        let mut rounds = rounds();
        rounds[0].mean_accuracy = Some(f64::NAN);
        let figures = MeanFigures::from_rounds(&rounds);
        assert_eq!(figures.accuracy, figure(0.75, 0.75, 3));
    }

    #[test]
    fn a_summary_without_means_still_reads() {
        let summary = RunSummary {
            rounds: 1,
            strategy: "fedsa".into(),
            clients: vec![],
            mean_accuracy: Some(0.5),
            mean_f1: None,
            best_mean_accuracy: Some(0.5),
            means: Some(MeanFigures::from_rounds(&rounds())),
            total_bytes_down: 0,
            total_bytes_up: 0,
            failures: 0,
            seconds: 1.0,
            failed: None,
        };
        let mut json: serde_json::Value = serde_json::to_value(&summary).unwrap();
        let back: RunSummary = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, summary);
        json.as_object_mut().unwrap().remove("means");
        let old: RunSummary = serde_json::from_value(json).unwrap();
        assert_eq!(old.means, None);
        assert_eq!(old.mean_accuracy, Some(0.5));
    }
}
