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
    pub total_bytes_down: u64,
    pub total_bytes_up: u64,
    pub failures: usize,
    pub seconds: f64,
    /// Why the run counts as failed, when it does (see the README's exit codes); absent in
    /// a run that succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
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
