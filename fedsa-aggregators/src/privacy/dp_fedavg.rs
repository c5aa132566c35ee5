//! DP-FedAvg (McMahan et al., "Learning Differentially Private Recurrent Language Models",
//! ICLR 2018), as Flower's `DifferentialPrivacyServerSideFixedClipping`: every client's update
//! (its shared tensors minus the broadcast global, all tensors as one vector) is scaled to L2
//! norm at most C, the clipped updates are averaged with equal weights, and Gaussian noise of
//! standard deviation `σ·C/m` is added to the mean (`m` clients delivered this round): one
//! release of the Gaussian mechanism with noise multiplier σ on a mean of sensitivity `C/m`.
//!
//! The release `global + noisy mean` is handed to an inner aggregator as the round's only
//! update: `fedavg` returns it as it is, `fedadam` steps on it. Whatever the inner rule makes of
//! it is post-processing and spends no privacy. The count of releases is the checkpointed state
//! (with the inner aggregator's own), and the accountant turns it into ε.

use fedsa_core::{
    Aggregator, ClientFailure, ClientUpdate, Error, ParamSet, PrivacySpent, Result, SeededRng,
};

use super::accountant::RdpAccountant;
use super::noise::GaussianNoise;

/// The stream label of the noise for [`SeededRng::derive`] (`"DPNoise"`), apart from the
/// federation's sampling and failure streams.
const NOISE_STREAM: u64 = 0x0044_504E_6F69_7365;

/// State tensor names: the release count, and the inner aggregator's state under a prefix.
const RELEASES: &str = "dp/releases";
const INNER: &str = "inner/";

/// The largest count an f32 state tensor holds exactly.
const MAX_RELEASES: usize = 1 << f32::MANTISSA_DIGITS;

/// DP-FedAvg's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DpSettings {
    /// C: the L2 norm every update is clipped to.
    pub clip_norm: f64,
    /// σ: noise standard deviation over the mean's sensitivity `C/m`. Zero: no noise, no
    /// privacy claimed.
    pub noise_multiplier: f64,
    /// δ of the reported `(ε, δ)`.
    pub delta: f64,
    /// q: the chance a client takes part in a round (`clients_per_round / num_clients`).
    pub sample_rate: f64,
    /// The noise of round `t` is drawn from `(seed, t)` alone.
    pub seed: u64,
}

/// DP-FedAvg around an inner aggregator.
pub struct DpFedAvg {
    settings: DpSettings,
    inner: Box<dyn Aggregator>,
    name: String,
    /// `None` without noise: clipping alone gives no differential privacy.
    accountant: Option<RdpAccountant>,
    releases: usize,
}

impl DpFedAvg {
    /// DP-FedAvg whose releases `inner` turns into the next global state.
    pub fn new(inner: Box<dyn Aggregator>, settings: DpSettings) -> Result<Self> {
        let s = settings;
        let bad = |field: &str, message: String| Err(Error::run_config(field, message));
        if !(s.clip_norm > 0.0 && s.clip_norm.is_finite()) {
            return bad(
                "privacy.clip_norm",
                format!("must be > 0, got {}", s.clip_norm),
            );
        }
        if !(s.noise_multiplier >= 0.0 && s.noise_multiplier.is_finite()) {
            return bad(
                "privacy.noise_multiplier",
                format!("must be >= 0, got {}", s.noise_multiplier),
            );
        }
        if !(s.delta > 0.0 && s.delta < 1.0) {
            return bad(
                "privacy.delta",
                format!("must be in (0, 1), got {}", s.delta),
            );
        }
        if !(s.sample_rate > 0.0 && s.sample_rate <= 1.0) {
            return bad(
                "federation.clients_per_round",
                format!(
                    "the sampling rate clients_per_round / num_clients must be in (0, 1], got {}",
                    s.sample_rate
                ),
            );
        }
        let accountant = (s.noise_multiplier > 0.0)
            .then(|| RdpAccountant::new(s.sample_rate, s.noise_multiplier, s.delta));
        Ok(Self {
            name: format!("dp-{}", inner.name()),
            settings,
            inner,
            accountant,
            releases: 0,
        })
    }

    pub fn settings(&self) -> DpSettings {
        self.settings
    }

    /// Aggregates made so far (each one a release of the noisy mean).
    pub fn releases(&self) -> usize {
        self.releases
    }

    fn error(&self, message: String) -> Error {
        Error::Aggregation {
            aggregator: self.name.clone(),
            message,
        }
    }

    /// `global` plus the noisy equal-weighted mean of the clipped updates of round `round`.
    pub fn release(
        &self,
        round: usize,
        global: &ParamSet,
        updates: &[ClientUpdate],
    ) -> Result<ParamSet> {
        if updates.is_empty() {
            return Err(self.error("no updates to aggregate".into()));
        }
        let scales = updates
            .iter()
            .map(|u| Ok(clip_scale(update_norm(global, u)?, self.settings.clip_norm)))
            .collect::<Result<Vec<f64>>>()?;
        let m = updates.len() as f64;
        let std = self.settings.noise_multiplier * self.settings.clip_norm / m;
        let mut noise = GaussianNoise::new(
            SeededRng::derive(self.settings.seed, &[round as u64, NOISE_STREAM]),
            std,
        );
        let mut out = ParamSet::new();
        for (name, g) in global.iter() {
            let mut sum = vec![0f64; g.len()];
            for (u, scale) in updates.iter().zip(&scales) {
                for ((s, &x), &g) in sum
                    .iter_mut()
                    .zip(u.params.require(name)?.data())
                    .zip(g.data())
                {
                    *s += scale * (f64::from(x) - f64::from(g));
                }
            }
            let next = g
                .data()
                .iter()
                .zip(&sum)
                .map(|(&g, &s)| (f64::from(g) + s / m + noise.sample()) as f32)
                .collect();
            out.insert(name.clone(), g.shape().to_vec(), next)?;
        }
        Ok(out)
    }
}

/// The factor that brings an update of L2 norm `norm` to at most `clip_norm`:
/// `min(1, C / ‖Δ‖)`.
fn clip_scale(norm: f64, clip_norm: f64) -> f64 {
    if norm > clip_norm {
        clip_norm / norm
    } else {
        1.0
    }
}

/// ‖u − global‖ over all shared tensors together, in f64; an update whose layout differs from
/// `global` is an error naming the client and the tensor.
fn update_norm(global: &ParamSet, u: &ClientUpdate) -> Result<f64> {
    let mut squares = 0.0;
    for (name, g) in global.iter() {
        let t = u.params.require(name)?;
        if t.shape() != g.shape() {
            return Err(Error::param(
                name.clone(),
                format!(
                    "client {} sent shape {:?}, expected {:?}",
                    u.client,
                    t.shape(),
                    g.shape()
                ),
            ));
        }
        for (&x, &g) in t.data().iter().zip(g.data()) {
            let d = f64::from(x) - f64::from(g);
            squares += d * d;
        }
    }
    Ok(squares.sqrt())
}

impl Aggregator for DpFedAvg {
    fn name(&self) -> &str {
        &self.name
    }

    fn aggregate(
        &mut self,
        round: usize,
        global: &ParamSet,
        updates: &[ClientUpdate],
        failures: &[ClientFailure],
    ) -> Result<Option<ParamSet>> {
        let release = self.release(round, global, updates)?;
        // The inner rule sees the release alone: a weighted mean of it is itself.
        let only = [ClientUpdate {
            client: updates[0].client,
            num_examples: 1,
            params: release,
        }];
        let next = self.inner.aggregate(round, global, &only, failures)?;
        self.releases += 1;
        Ok(next)
    }

    fn privacy_spent(&self) -> Option<PrivacySpent> {
        let accountant = self.accountant.as_ref()?;
        Some(PrivacySpent {
            epsilon: accountant.epsilon(self.releases).0,
            delta: accountant.delta(),
            releases: self.releases,
        })
    }

    fn state(&self) -> Result<ParamSet> {
        if self.releases > MAX_RELEASES {
            return Err(self.error(format!(
                "{} releases do not fit the checkpoint's count (at most {MAX_RELEASES})",
                self.releases
            )));
        }
        let mut state = ParamSet::new();
        state.insert(RELEASES, vec![1], vec![self.releases as f32])?;
        for (name, t) in self.inner.state()?.iter() {
            state.insert_tensor(format!("{INNER}{name}"), t.clone());
        }
        Ok(state)
    }

    fn load_state(&mut self, state: &ParamSet) -> Result<()> {
        let releases = match state.get(RELEASES).map(fedsa_core::TensorData::data) {
            Some(&[n]) if n >= 0.0 && n.fract() == 0.0 && n.is_finite() => n as usize,
            Some(other) => {
                return Err(self.error(format!(
                    "checkpoint state `{RELEASES}` must be one whole count, got {other:?}"
                )));
            }
            None if state.is_empty() => 0,
            None => {
                return Err(self.error(format!(
                    "checkpoint state has no `{RELEASES}`; it was not written by DP-FedAvg"
                )));
            }
        };
        let mut inner = ParamSet::new();
        for (key, t) in state.iter() {
            if key == RELEASES {
                continue;
            }
            let name = key.strip_prefix(INNER).ok_or_else(|| {
                self.error(format!(
                    "checkpoint state holds `{key}`; DP-FedAvg keeps `{RELEASES}` and `{INNER}..`"
                ))
            })?;
            inner.insert_tensor(name, t.clone());
        }
        self.inner.load_state(&inner)?;
        self.releases = releases;
        Ok(())
    }
}
