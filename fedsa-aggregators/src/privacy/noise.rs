//! Gaussian noise from the project's seeded generator, by Box–Muller: a plain function of the
//! seed, so the noise of a round is the same on every machine and after a resume.

use fedsa_core::SeededRng;

/// Draws from N(0, std²), two per pair of uniforms.
pub(crate) struct GaussianNoise {
    rng: SeededRng,
    std: f64,
    spare: Option<f64>,
}

impl GaussianNoise {
    pub(crate) fn new(rng: SeededRng, std: f64) -> Self {
        Self {
            rng,
            std,
            spare: None,
        }
    }

    /// The next draw; 0 without drawing when `std` is 0.
    pub(crate) fn sample(&mut self) -> f64 {
        if self.std == 0.0 {
            return 0.0;
        }
        if let Some(z) = self.spare.take() {
            return z * self.std;
        }
        // 1 - U lies in (0, 1], so its log is finite.
        let u1 = 1.0 - self.rng.next_f64();
        let u2 = self.rng.next_f64();
        let r = (-2.0 * u1.ln()).sqrt();
        let (sin, cos) = (std::f64::consts::TAU * u2).sin_cos();
        self.spare = Some(r * sin);
        r * cos * self.std
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_have_the_standard_normals_moments() {
        let mut noise = GaussianNoise::new(SeededRng::new(5), 2.0);
        let n = 40_000;
        let xs: Vec<f64> = (0..n).map(|_| noise.sample()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let kurtosis = xs.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n as f64 / var / var;
        assert!(mean.abs() < 0.05, "{mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.04, "{}", var.sqrt());
        assert!((kurtosis - 3.0).abs() < 0.15, "{kurtosis}");
    }
}
