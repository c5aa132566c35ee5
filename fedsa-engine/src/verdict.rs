//! Whether a run that went through all its rounds counts as a success. Batch jobs read the exit
//! code, so a run whose every client failed, or whose figures are not numbers, must not look
//! like one that learned. The rules, in the order they are checked:
//!
//! 1. some client trained successfully in some round;
//! 2. when the strategy shares anything, some round aggregated (the global state changed);
//! 3. every figure of the summary is finite (each client's loss, accuracy, F1 and extras, and
//!    the means);
//! 4. when `federation.max_failure_rate` is set, failed client-rounds are at most that share of
//!    the sampled ones.

use std::fmt;
use std::path::PathBuf;

use fedsa_core::{RoundRecord, RunSummary};

/// A run that finished its rounds but counts as failed: the reason in one line, the summary it
/// wrote, and the run folder kept for inspection.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedRun {
    pub reason: String,
    pub summary: RunSummary,
    pub run_dir: PathBuf,
}

impl fmt::Display for FailedRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the run failed: {} (run folder kept: {})",
            self.reason,
            self.run_dir.display()
        )
    }
}

impl std::error::Error for FailedRun {}

/// Why the run of `summary` with round records `history` counts as failed, or `None`.
/// `shares` says whether the strategy sends anything up; `max_failure_rate` is the config's.
pub fn judge(
    summary: &RunSummary,
    history: &[RoundRecord],
    shares: bool,
    max_failure_rate: Option<f64>,
) -> Option<String> {
    let sampled: usize = history.iter().map(|r| r.sampled.len()).sum();
    let failed: usize = history.iter().map(|r| r.failed.len()).sum();
    if history.iter().all(|r| r.succeeded.is_empty()) {
        return Some(format!(
            "no client trained successfully in any of {} rounds ({failed} of {sampled} sampled \
             client-rounds failed)",
            history.len()
        ));
    }
    if shares && !history.iter().any(|r| r.aggregated) {
        return Some(format!(
            "no round aggregated in {} rounds: the global state never changed",
            history.len()
        ));
    }
    if let Some(what) = first_non_finite(summary) {
        return Some(format!("{what} is not a finite number"));
    }
    if let Some(limit) = max_failure_rate
        && sampled > 0
    {
        let rate = failed as f64 / sampled as f64;
        if rate > limit {
            return Some(format!(
                "{failed} of {sampled} sampled client-rounds failed ({:.1}%), above \
                 federation.max_failure_rate = {limit}",
                100.0 * rate
            ));
        }
    }
    None
}

/// The first figure of `summary` that is NaN or infinite, named.
fn first_non_finite(summary: &RunSummary) -> Option<String> {
    for (k, eval) in summary.clients.iter().enumerate() {
        let Some(m) = eval else { continue };
        let named = [
            ("loss", m.loss),
            ("accuracy", m.accuracy),
            ("macro_f1", m.macro_f1),
        ];
        let extras = m.extra.iter().map(|(name, v)| (name.as_str(), *v));
        if let Some((name, v)) = named
            .into_iter()
            .chain(extras)
            .find(|(_, v)| !v.is_finite())
        {
            return Some(format!("client {k}'s final {name} ({v})"));
        }
    }
    [
        ("mean_accuracy", summary.mean_accuracy),
        ("mean_f1", summary.mean_f1),
        ("best_mean_accuracy", summary.best_mean_accuracy),
    ]
    .into_iter()
    .find_map(|(name, v)| {
        v.filter(|v| !v.is_finite())
            .map(|v| format!("the summary's {name} ({v})"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fedsa_core::EvalMetrics;

    fn round(sampled: &[usize], failed: &[usize], aggregated: bool) -> RoundRecord {
        RoundRecord {
            round: 1,
            sampled: sampled.to_vec(),
            succeeded: sampled
                .iter()
                .copied()
                .filter(|c| !failed.contains(c))
                .collect(),
            failed: failed.to_vec(),
            aggregated,
            note: None,
            mean_accuracy: Some(0.5),
            mean_f1: Some(0.5),
            mean_loss: Some(0.7),
            mean_train_loss: Some(0.7),
            weighted_accuracy: None,
            weighted_f1: None,
            privacy: None,
            bytes_down: 0,
            bytes_up: 0,
            seconds: 0.0,
        }
    }

    fn summary(loss: f64) -> RunSummary {
        RunSummary {
            rounds: 2,
            strategy: "fedsa".into(),
            clients: vec![
                Some(EvalMetrics {
                    loss: 0.6,
                    accuracy: 0.7,
                    macro_f1: 0.6,
                    num_examples: 10,
                    extra: std::collections::BTreeMap::new(),
                }),
                Some(EvalMetrics {
                    loss,
                    accuracy: 0.7,
                    macro_f1: 0.6,
                    num_examples: 10,
                    extra: std::collections::BTreeMap::new(),
                }),
            ],
            mean_accuracy: Some(0.7),
            mean_f1: Some(0.6),
            best_mean_accuracy: Some(0.7),
            means: None,
            total_bytes_down: 0,
            total_bytes_up: 0,
            failures: 0,
            seconds: 1.0,
            failed: None,
        }
    }

    #[test]
    fn a_run_that_learned_passes() {
        let history = [round(&[0, 1], &[1], true), round(&[0, 1], &[], true)];
        assert_eq!(judge(&summary(0.5), &history, true, None), None);
        assert_eq!(judge(&summary(0.5), &history, true, Some(0.25)), None);
    }

    #[test]
    fn every_client_failing_in_every_round_fails() {
        let history = [round(&[0, 1], &[0, 1], false), round(&[1], &[1], false)];
        let why = judge(&summary(0.5), &history, true, None).unwrap();
        assert!(
            why.contains("no client trained successfully in any of 2 rounds"),
            "{why}"
        );
        assert!(why.contains("3 of 3"), "{why}");
    }

    #[test]
    fn a_shared_state_that_never_changed_fails_but_local_training_does_not() {
        let history = [round(&[0, 1], &[], false)];
        let why = judge(&summary(0.5), &history, true, None).unwrap();
        assert!(why.contains("no round aggregated"), "{why}");
        assert_eq!(judge(&summary(0.5), &history, false, None), None);
    }

    #[test]
    fn a_non_finite_figure_fails_naming_it() {
        let history = [round(&[0, 1], &[], true)];
        let why = judge(&summary(f64::NAN), &history, true, None).unwrap();
        assert_eq!(why, "client 1's final loss (NaN) is not a finite number");
        let mut s = summary(0.5);
        s.mean_f1 = Some(f64::INFINITY);
        let why = judge(&s, &history, true, None).unwrap();
        assert!(why.contains("mean_f1 (inf)"), "{why}");
    }

    #[test]
    fn failures_above_the_configured_share_fail() {
        let history = [round(&[0, 1], &[1], true), round(&[0, 1], &[], true)];
        let why = judge(&summary(0.5), &history, true, Some(0.2)).unwrap();
        assert!(
            why.contains("1 of 4 sampled client-rounds failed (25.0%)")
                && why.contains("federation.max_failure_rate = 0.2"),
            "{why}"
        );
    }
}
