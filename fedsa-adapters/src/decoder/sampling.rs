//! Choosing the next token from a logits row: greedy (argmax), or temperature + nucleus (top-p)
//! sampling from the client's seeded RNG, so generations are reproducible.

use fedsa_core::SeededRng;

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Sampling {
    /// The most likely token (the first on ties).
    Greedy,
    /// Softmax at `temperature`, keep the most likely tokens whose probabilities first sum to
    /// at least `top_p`, draw from them with a [`SeededRng`] seeded by `seed`.
    TopP {
        temperature: f64,
        top_p: f64,
        seed: u64,
    },
}

/// Index of the largest value (the first on ties).
pub fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |(a, m), (i, &v)| {
                if v > m { (i, v) } else { (a, m) }
            },
        )
        .0
}

/// A draw from the nucleus of `softmax(row / temperature)`; a temperature of 0 (or below) is
/// greedy, a `top_p` of 1 or more keeps every token.
pub fn sample_top_p(row: &[f32], temperature: f64, top_p: f64, rng: &mut SeededRng) -> usize {
    if temperature <= 0.0 || row.is_empty() {
        return argmax(row);
    }
    let max = f64::from(row[argmax(row)]);
    let mut probs: Vec<(usize, f64)> = row
        .iter()
        .enumerate()
        .map(|(i, &v)| (i, ((f64::from(v) - max) / temperature).exp()))
        .collect();
    let total: f64 = probs.iter().map(|p| p.1).sum();
    // Stable sort: equal probabilities keep id order, so a draw depends on the seed alone.
    probs.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut kept = 0;
    let mut mass = 0.0;
    for (_, p) in &probs {
        kept += 1;
        mass += p / total;
        if mass >= top_p {
            break;
        }
    }
    let nucleus = &probs[..kept.max(1)];
    let nucleus_mass: f64 = nucleus.iter().map(|p| p.1).sum();
    let mut u = rng.next_f64() * nucleus_mass;
    for (i, p) in nucleus {
        if u < *p {
            return *i;
        }
        u -= p;
    }
    nucleus[nucleus.len() - 1].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nucleus_excludes_the_tail_and_draws_are_seeded() {
        // Probabilities ∝ e^3, e^2, e^0, e^-5: top-p 0.9 keeps the first two only.
        let row = [2.0f32, 3.0, 0.0, -5.0];
        let mut rng = SeededRng::new(1);
        let draws: Vec<usize> = (0..200)
            .map(|_| sample_top_p(&row, 1.0, 0.9, &mut rng))
            .collect();
        assert!(draws.iter().all(|&d| d == 0 || d == 1));
        assert!(draws.contains(&0) && draws.contains(&1));
        let mut again = SeededRng::new(1);
        let repeat: Vec<usize> = (0..200)
            .map(|_| sample_top_p(&row, 1.0, 0.9, &mut again))
            .collect();
        assert_eq!(draws, repeat);
        assert_eq!(sample_top_p(&row, 0.0, 0.9, &mut rng), 1);
        assert_eq!(argmax(&[1.0, 5.0, 5.0]), 1);
    }
}
