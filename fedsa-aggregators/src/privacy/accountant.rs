//! The Rényi (RDP) accountant of the subsampled Gaussian mechanism (Mironov, Talwar, Zhang,
//! "Rényi Differential Privacy of the Sampled Gaussian Mechanism", 2019), computed as Opacus
//! computes it (`opacus/accountants/analysis/rdp.py`: `compute_rdp` with `_compute_log_a` for
//! integer and fractional orders, `get_privacy_spent`'s conversion to `(ε, δ)` from Balle et al.
//! 2020, Theorem 21) over Opacus' default orders, so the ε a run reports is the one Opacus (and
//! TensorFlow Privacy, which it follows) would report for the same `q`, `σ`, `T` and `δ`.

use super::log_space::{log_add, log_erfc, log_sub};

/// Opacus' default orders (`RDPAccountant.DEFAULT_ALPHAS`): 1.1 to 10.9 in steps of 0.1, then
/// the integers 12 to 63.
pub fn default_orders() -> Vec<f64> {
    (1..100)
        .map(|x| 1.0 + f64::from(x) / 10.0)
        .chain((12..64).map(f64::from))
        .collect()
}

/// The RDP at order `order` of one release of the Gaussian mechanism with noise multiplier
/// `sigma` applied to a subset sampled at rate `q`; may be infinite (`sigma = 0`).
pub fn compute_rdp(q: f64, sigma: f64, order: f64) -> f64 {
    if q == 0.0 {
        return 0.0;
    }
    if sigma == 0.0 {
        return f64::INFINITY;
    }
    if q == 1.0 {
        return order / (2.0 * sigma * sigma);
    }
    if order.is_infinite() {
        return f64::INFINITY;
    }
    log_a(q, sigma, order) / (order - 1.0)
}

/// `ln(A_α)` of the paper's Section 3.3, for `0 < q < 1`.
fn log_a(q: f64, sigma: f64, order: f64) -> f64 {
    if order.fract() == 0.0 {
        log_a_integer(q, sigma, order as u64)
    } else {
        log_a_fractional(q, sigma, order)
    }
}

/// The binomial expansion of `A_α` for an integer order: `α + 1` positive terms.
fn log_a_integer(q: f64, sigma: f64, order: u64) -> f64 {
    let alpha = order as f64;
    let mut log_a = f64::NEG_INFINITY;
    let mut binom = 1.0;
    for i in 0..=order {
        if i > 0 {
            binom = binom * (alpha - i as f64 + 1.0) / i as f64;
        }
        let i = i as f64;
        let log_coef = binom.ln() + i * q.ln() + (alpha - i) * (1.0 - q).ln();
        log_a = log_add(log_a, log_coef + (i * i - i) / (2.0 * sigma * sigma));
    }
    log_a
}

/// The series for a fractional order: two integrals, split at `z0`, expanded term by term
/// until both terms fall below `e^-30`.
fn log_a_fractional(q: f64, sigma: f64, alpha: f64) -> f64 {
    let (mut log_a0, mut log_a1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let z0 = sigma * sigma * (1.0 / q - 1.0).ln() + 0.5;
    let two_var = 2.0 * sigma * sigma;
    let scale = std::f64::consts::SQRT_2 * sigma;
    let half = 0.5f64.ln();
    let mut coef = 1.0;
    let mut i = 0u64;
    loop {
        if i > 0 {
            coef = coef * (alpha - i as f64 + 1.0) / i as f64;
        }
        let fi = i as f64;
        let j = alpha - fi;
        let log_coef = coef.abs().ln();
        let log_t0 = log_coef + fi * q.ln() + j * (1.0 - q).ln();
        let log_t1 = log_coef + j * q.ln() + fi * (1.0 - q).ln();
        let log_e0 = half + log_erfc((fi - z0) / scale);
        let log_e1 = half + log_erfc((z0 - j) / scale);
        let log_s0 = log_t0 + (fi * fi - fi) / two_var + log_e0;
        let log_s1 = log_t1 + (j * j - j) / two_var + log_e1;
        if coef > 0.0 {
            log_a0 = log_add(log_a0, log_s0);
            log_a1 = log_add(log_a1, log_s1);
        } else {
            log_a0 = log_sub(log_a0, log_s0);
            log_a1 = log_sub(log_a1, log_s1);
        }
        i += 1;
        // Opacus' test; a NaN term (which `max` passes over unless both are) also stops.
        let top = log_s0.max(log_s1);
        if top < -30.0 || top.is_nan() {
            break;
        }
    }
    log_add(log_a0, log_a1)
}

/// The smallest ε over `orders` for which RDP values `rdp` give `(ε, δ)`-DP, and the order
/// that gives it: `ε = rdp - (ln δ + ln α) / (α - 1) + ln((α - 1) / α)`, NaN orders skipped,
/// the first of equal minima taken; `(inf, NaN)` when every order is NaN.
pub fn epsilon_from_rdp(orders: &[f64], rdp: &[f64], delta: f64) -> (f64, f64) {
    assert_eq!(orders.len(), rdp.len(), "one RDP value per order");
    let mut best = (f64::INFINITY, f64::NAN);
    let mut found = false;
    for (&alpha, &r) in orders.iter().zip(rdp) {
        let eps = r - (delta.ln() + alpha.ln()) / (alpha - 1.0) + ((alpha - 1.0) / alpha).ln();
        if eps.is_nan() {
            continue;
        }
        if !found || eps < best.0 {
            best = (eps, alpha);
            found = true;
        }
    }
    best
}

/// The privacy of `T` releases of one subsampled Gaussian mechanism, for any `T`: RDP adds up
/// over releases, so the RDP of one release per order is computed once.
#[derive(Debug, Clone, PartialEq)]
pub struct RdpAccountant {
    delta: f64,
    orders: Vec<f64>,
    per_release: Vec<f64>,
}

impl RdpAccountant {
    /// Releases of the Gaussian mechanism with noise multiplier `noise_multiplier` on subsets
    /// sampled at rate `sample_rate`, reported as ε at `delta`, over [`default_orders`].
    pub fn new(sample_rate: f64, noise_multiplier: f64, delta: f64) -> Self {
        let orders = default_orders();
        let per_release = orders
            .iter()
            .map(|&a| compute_rdp(sample_rate, noise_multiplier, a))
            .collect();
        Self {
            delta,
            orders,
            per_release,
        }
    }

    pub fn delta(&self) -> f64 {
        self.delta
    }

    /// ε after `releases` releases and the order that gives it; 0 before any (as Opacus'
    /// `RDPAccountant` with an empty history).
    pub fn epsilon(&self, releases: usize) -> (f64, f64) {
        if releases == 0 {
            return (0.0, 0.0);
        }
        let t = releases as f64;
        let rdp: Vec<f64> = self.per_release.iter().map(|r| r * t).collect();
        epsilon_from_rdp(&self.orders, &rdp, self.delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orders_are_opacus_defaults() {
        let orders = default_orders();
        assert_eq!(orders.len(), 99 + 52);
        assert_eq!((orders[0], orders[98], orders[99]), (1.1, 10.9, 12.0));
        assert_eq!(orders[150], 63.0);
        // 1 + 10/10 is 2 exactly, so Opacus takes the integer expansion there too.
        assert_eq!(orders[9], 2.0);
    }

    #[test]
    fn integer_and_fractional_expansions_agree_near_an_integer() {
        // A_α is continuous in α: the fractional series just off an integer order meets the
        // binomial sum at it.
        let (q, sigma) = (0.2, 1.5);
        let at = log_a_integer(q, sigma, 3);
        let near = log_a_fractional(q, sigma, 3.0 + 1e-9);
        assert!((at - near).abs() < 1e-7, "{at} {near}");
    }

    #[test]
    fn without_sampling_the_rdp_is_the_gaussian_mechanisms() {
        assert_eq!(compute_rdp(1.0, 2.0, 8.0), 1.0);
        assert_eq!(compute_rdp(0.0, 2.0, 8.0), 0.0);
        assert_eq!(compute_rdp(0.5, 0.0, 8.0), f64::INFINITY);
        let (eps, _) = RdpAccountant::new(0.5, 0.0, 1e-5).epsilon(3);
        assert_eq!(eps, f64::INFINITY);
    }
}
