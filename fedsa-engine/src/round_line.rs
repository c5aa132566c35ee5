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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_rounds_line_carries_its_epsilon() {
        let mut record = RoundRecord {
            round: 3,
            sampled: vec![0, 1],
            succeeded: vec![0, 1],
            failed: vec![],
            aggregated: true,
            note: None,
            mean_accuracy: Some(0.8),
            mean_f1: Some(0.5),
            mean_loss: Some(0.4),
            mean_train_loss: Some(0.45),
            weighted_accuracy: None,
            weighted_f1: None,
            privacy: None,
            bytes_down: 2048,
            bytes_up: 1024,
            seconds: 1.5,
        };
        assert_eq!(
            round_line(&record, 8),
            "round 3/8: mean acc 80.00%  mean F1 50.00%  train loss 0.4500  up 1.0 KiB  down 2.0 KiB  failed 0  1.5s"
        );
        record.privacy = Some(fedsa_core::PrivacySpent {
            epsilon: 7.143_56,
            delta: 1e-5,
            releases: 3,
        });
        assert!(
            round_line(&record, 8).ends_with("failed 0  ε 7.14 (δ 1e-5)  1.5s"),
            "{}",
            round_line(&record, 8)
        );
    }
}
