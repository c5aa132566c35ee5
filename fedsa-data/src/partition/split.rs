//! A client's own train/test split, stratified by label: the client's examples are shuffled,
//! ordered by label, and every `n / n_test`-th one is held out, so each label's share of the
//! test split is within one example of its share of the client.

use fedsa_core::SeededRng;

use super::ClientSplit;

pub(super) fn train_test(
    examples: &[usize],
    labels: &[u32],
    test_fraction: f64,
    rng: &mut SeededRng,
) -> ClientSplit {
    let n = examples.len();
    if n < 2 {
        return ClientSplit {
            train: examples.to_vec(),
            test: Vec::new(),
        };
    }
    let n_test = ((n as f64 * test_fraction).round() as usize).clamp(1, n - 1);
    let mut order = examples.to_vec();
    rng.shuffle(&mut order);
    // Stable sort: within a label the shuffled order remains.
    order.sort_by_key(|&i| labels[i]);
    let step = n as f64 / n_test as f64;
    let mut held_out = vec![false; n];
    for j in 0..n_test {
        // step > 1, so these positions are distinct and below n.
        let pos = ((j as f64 + 0.5) * step) as usize;
        held_out[pos.min(n - 1)] = true;
    }
    let (mut train, mut test) = (Vec::with_capacity(n - n_test), Vec::with_capacity(n_test));
    for (i, &example) in order.iter().enumerate() {
        if held_out[i] {
            test.push(example);
        } else {
            train.push(example);
        }
    }
    train.sort_unstable();
    test.sort_unstable();
    ClientSplit { train, test }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_and_sized() {
        // 30 of label 0, 10 of label 1: a 25% test split holds 10, about 7-8 and 2-3.
        let labels: Vec<u32> = (0..40).map(|i| u32::from(i >= 30)).collect();
        let examples: Vec<usize> = (0..40).collect();
        let s = train_test(&examples, &labels, 0.25, &mut SeededRng::new(1));
        assert_eq!((s.train.len(), s.test.len()), (30, 10));
        let ones = s.test.iter().filter(|&&i| labels[i] == 1).count();
        assert!((2..=3).contains(&ones), "{ones}");
        let mut all = [s.train, s.test].concat();
        all.sort_unstable();
        assert_eq!(all, examples);
    }

    #[test]
    fn tiny_clients_keep_both_splits_non_empty() {
        let labels = [0, 1, 0];
        for n in 2..=3 {
            let examples: Vec<usize> = (0..n).collect();
            let s = train_test(&examples, &labels, 0.01, &mut SeededRng::new(2));
            assert!(!s.train.is_empty() && !s.test.is_empty(), "{s:?}");
            let s = train_test(&examples, &labels, 0.99, &mut SeededRng::new(2));
            assert!(!s.train.is_empty() && !s.test.is_empty(), "{s:?}");
        }
    }
}
