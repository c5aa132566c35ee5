//! Dirichlet partition over labels, as in flower's `DirichletPartitioner`: for each label, the
//! shares of its examples going to each client are drawn from Dir(alpha, ..., alpha). Small
//! alpha gives each client a few dominant labels; large alpha approaches IID. Draws are repeated
//! (a bounded number of times) until every client has the minimum number of examples.

use fedsa_core::{Error, Result, SeededRng};
use rand_distr::{Distribution, Gamma};

use crate::rng::RandAdapter;

/// Draws before giving up on the minimum size.
const MAX_ATTEMPTS: usize = 10_000;

pub(super) fn assign(
    labels: &[u32],
    num_labels: usize,
    num_clients: usize,
    alpha: f64,
    min_examples: usize,
    rng: SeededRng,
) -> Result<Vec<Vec<usize>>> {
    if !(alpha > 0.0 && alpha.is_finite()) {
        return Err(Error::run_config(
            "partition.alpha",
            format!("must be a finite number > 0, got {alpha}"),
        ));
    }
    let gamma =
        Gamma::new(alpha, 1.0).map_err(|e| Error::run_config("partition.alpha", e.to_string()))?;
    let mut by_label: Vec<Vec<usize>> = vec![Vec::new(); num_labels];
    for (i, &l) in labels.iter().enumerate() {
        if let Some(group) = by_label.get_mut(l as usize) {
            group.push(i);
        }
    }
    let mut rng = RandAdapter(rng);
    for _ in 0..MAX_ATTEMPTS {
        let mut clients: Vec<Vec<usize>> = vec![Vec::new(); num_clients];
        for group in &by_label {
            let mut group = group.clone();
            rng.0.shuffle(&mut group);
            let shares = dirichlet(&gamma, num_clients, &mut rng);
            // Cut the shuffled label group at the cumulative shares (flower's split points).
            let m = group.len();
            let (mut cumulative, mut start) = (0.0, 0);
            for (k, share) in shares.iter().enumerate() {
                cumulative += share;
                let end = if k + 1 == num_clients {
                    m
                } else {
                    ((cumulative * m as f64) as usize).clamp(start, m)
                };
                clients[k].extend_from_slice(&group[start..end]);
                start = end;
            }
        }
        if clients.iter().all(|c| c.len() >= min_examples) {
            for c in &mut clients {
                c.sort_unstable();
            }
            return Ok(clients);
        }
    }
    Err(Error::run_config(
        "partition.min_examples",
        format!(
            "{MAX_ATTEMPTS} Dirichlet draws with alpha {alpha} never gave all {num_clients} clients \
             at least {min_examples} examples; lower partition.min_examples, raise \
             partition.alpha or use fewer clients"
        ),
    ))
}

/// One draw from Dir(alpha, ..., alpha) via normalised Gamma(alpha, 1) draws.
fn dirichlet(gamma: &Gamma<f64>, n: usize, rng: &mut RandAdapter) -> Vec<f64> {
    let mut draws: Vec<f64> = (0..n).map(|_| gamma.sample(rng)).collect();
    let total: f64 = draws.iter().sum();
    if total > 0.0 && total.is_finite() {
        for d in &mut draws {
            *d /= total;
        }
    } else {
        // Every draw underflowed (tiny alpha): the limit of Dir(alpha) as alpha -> 0 puts all
        // the mass on one client.
        draws.fill(0.0);
        draws[rng.0.below(n)] = 1.0;
    }
    draws
}
