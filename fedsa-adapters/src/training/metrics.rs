//! Classification metrics: accuracy and macro-F1 (sklearn's `f1_score(average="macro")`: the
//! mean over the labels present in the truth or the predictions).

use std::collections::BTreeSet;

/// Share of predictions equal to the label; 0 for no examples.
pub fn accuracy(predictions: &[u32], labels: &[u32]) -> f64 {
    if labels.is_empty() {
        return 0.0;
    }
    let right = predictions
        .iter()
        .zip(labels)
        .filter(|(p, l)| p == l)
        .count();
    right as f64 / labels.len() as f64
}

/// Unweighted mean of per-label F1 = 2·tp / (2·tp + fp + fn).
pub fn macro_f1(predictions: &[u32], labels: &[u32]) -> f64 {
    let classes: BTreeSet<u32> = predictions.iter().chain(labels).copied().collect();
    if classes.is_empty() {
        return 0.0;
    }
    let total: f64 = classes
        .iter()
        .map(|&c| {
            let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
            for (&p, &l) in predictions.iter().zip(labels) {
                match (p == c, l == c) {
                    (true, true) => tp += 1,
                    (true, false) => fp += 1,
                    (false, true) => fn_ += 1,
                    _ => {}
                }
            }
            let denom = 2 * tp + fp + fn_;
            if denom == 0 {
                0.0
            } else {
                2.0 * tp as f64 / denom as f64
            }
        })
        .sum();
    total / classes.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_computed_values() {
        // Labels 0: tp 1, fp 1, fn 1 → F1 0.5; label 1: tp 1, fp 1, fn 1 → 0.5; label 2: tp 1 → 1.
        let pred = [0, 1, 1, 0, 2];
        let gold = [0, 0, 1, 1, 2];
        assert!((accuracy(&pred, &gold) - 0.6).abs() < 1e-12);
        assert!((macro_f1(&pred, &gold) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(macro_f1(&[1, 1], &[1, 1]), 1.0);
        assert_eq!(accuracy(&[], &[]), 0.0);
    }
}
