//! A small seeded RNG with a plain `u64` state, so runs are reproducible across versions of
//! external crates and the state can be checkpointed as one number.

use serde::{Deserialize, Serialize};

/// SplitMix64's state increment per draw.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64: fast, statistically sound for sampling and shuffling, trivially serialisable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// An independent stream derived from `seed` and a list of labels (e.g. round, purpose):
    /// resuming at round k needs no stored state for streams derived this way.
    pub fn derive(seed: u64, labels: &[u64]) -> Self {
        let mut rng = Self::new(seed ^ 0x5851_F42D_4C95_7F2D);
        for &l in labels {
            rng.state ^= l.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            rng.next_u64();
        }
        rng
    }

    pub fn state(&self) -> u64 {
        self.state
    }

    /// The generator as it will be after `n` more draws, without making them: the state
    /// advances by a constant per draw, so a long stream can be cut into blocks that are
    /// generated independently (in parallel) and give exactly the sequential draws.
    #[must_use]
    pub fn skipped(&self, n: u64) -> Self {
        Self {
            state: self.state.wrapping_add(n.wrapping_mul(GAMMA)),
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in 0..n (n > 0), without modulo bias.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0)");
        let n = n as u64;
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return (v % n) as usize;
            }
        }
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// `k` distinct indices of `0..n`, sorted.
    pub fn sample_indices(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..n).collect();
        let k = k.min(n);
        for i in 0..k {
            let j = i + self.below(n - i);
            all.swap(i, j);
        }
        let mut picked = all[..k].to_vec();
        picked.sort_unstable();
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipping_ahead_gives_the_later_draws() {
        let mut a = SeededRng::new(11);
        let start = a.clone();
        let draws: Vec<u64> = (0..10).map(|_| a.next_u64()).collect();
        for (k, d) in draws.iter().enumerate() {
            assert_eq!(start.skipped(k as u64).next_u64(), *d);
        }
        assert_eq!(start.skipped(10), a);
    }

    #[test]
    fn same_seed_same_stream() {
        let mut a = SeededRng::new(7);
        let mut b = SeededRng::new(7);
        for _ in 0..10 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(
            SeededRng::derive(7, &[1]).next_u64(),
            SeededRng::derive(7, &[2]).next_u64()
        );
    }

    #[test]
    fn sample_indices_are_distinct_sorted_and_in_range() {
        let mut r = SeededRng::new(3);
        for k in 0..=10 {
            let s = r.sample_indices(10, k);
            assert_eq!(s.len(), k);
            assert!(s.windows(2).all(|w| w[0] < w[1]));
            assert!(s.iter().all(|&i| i < 10));
        }
    }

    #[test]
    fn floats_are_in_unit_interval_and_roughly_uniform() {
        let mut r = SeededRng::new(11);
        let n = 20_000;
        let mean: f64 = (0..n).map(|_| r.next_f64()).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
    }
}
