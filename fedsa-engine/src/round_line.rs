//! The one line a front end prints after each round (`fedsa run`, the Flower server), so
//! every front end reports a round the same way.

use fedsa_core::RoundRecord;

use crate::units::{epsilon_text, human_bytes};

/// The line printed after each round: the means, the traffic, the failures, the privacy spent
/// when the run is differentially private, the time.
pub fn round_line(record: &RoundRecord, rounds: usize) -> String {
    let acc = record
        .mean_accuracy
        .map_or_else(|| "-".into(), |a| format!("{:.2}%", a * 100.0));
    let f1 = record
        .mean_f1
        .map_or_else(|| "-".into(), |a| format!("{:.2}%", a * 100.0));
    let loss = record
        .mean_train_loss
        .map_or_else(|| "-".into(), |l| format!("{l:.4}"));
    let privacy = record
        .privacy
        .map_or_else(String::new, |p| format!("  {}", epsilon_text(&p)));
    format!(
        "round {}/{rounds}: mean acc {acc}  mean F1 {f1}  train loss {loss}  up {}  down {}  failed {}{privacy}  {:.1}s",
        record.round,
        human_bytes(record.bytes_up),
        human_bytes(record.bytes_down),
        record.failed.len(),
        record.seconds
    )
}
