//! FedAdam (Reddi et al., "Adaptive Federated Optimization", ICLR 2021): a server optimiser.
//! The example-weighted mean of the clients' tensors minus the global tensor is a pseudo-
//! gradient; the server keeps Adam's moments of it between rounds and steps the global state.
//!
//! Per coordinate: `delta = mean - x`, `m = beta1*m + (1-beta1)*delta`,
//! `v = beta2*v + (1-beta2)*delta^2`, `x' = x + lr * m / (sqrt(v) + tau)`. Moments start at 0
//! without bias correction, as in the paper. The moments are the checkpointed state.

use std::collections::BTreeMap;

use fedsa_core::{Aggregator, ClientFailure, ClientUpdate, Error, ParamSet, Result, weighted_mean};

/// FedAdam's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FedAdamSettings {
    /// Server learning rate (eta).
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// Adaptivity floor added to `sqrt(v)`.
    pub tau: f64,
}

impl Default for FedAdamSettings {
    fn default() -> Self {
        Self {
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.99,
            tau: 1e-3,
        }
    }
}

/// FedAdam with its moments per shared tensor.
#[derive(Debug, Clone)]
pub struct FedAdam {
    settings: FedAdamSettings,
    /// `(m, v)` per tensor name, created on first use.
    moments: BTreeMap<String, (Vec<f32>, Vec<f32>)>,
}

/// State tensor names: `m/<tensor>` and `v/<tensor>`.
const FIRST: &str = "m/";
const SECOND: &str = "v/";

impl FedAdam {
    pub fn new(settings: FedAdamSettings) -> Self {
        Self {
            settings,
            moments: BTreeMap::new(),
        }
    }

    pub fn settings(&self) -> FedAdamSettings {
        self.settings
    }

    fn error(&self, message: String) -> Error {
        Error::Aggregation {
            aggregator: self.name().to_string(),
            message,
        }
    }
}

impl Aggregator for FedAdam {
    fn name(&self) -> &'static str {
        "fedadam"
    }

    fn aggregate(
        &mut self,
        _round: usize,
        global: &ParamSet,
        updates: &[ClientUpdate],
        _failures: &[ClientFailure],
    ) -> Result<Option<ParamSet>> {
        let mean = weighted_mean(global, updates)?;
        let s = self.settings;
        let mut out = ParamSet::new();
        for (name, x) in global.iter() {
            let len = x.len();
            let (m, v) = self
                .moments
                .entry(name.clone())
                .or_insert_with(|| (vec![0.0; len], vec![0.0; len]));
            if m.len() != len {
                let held = m.len();
                return Err(self.error(format!(
                    "the moments of `{name}` hold {held} values, the tensor {len}"
                )));
            }
            let mean = mean.require(name)?.data();
            let next = x
                .data()
                .iter()
                .zip(mean)
                .zip(m.iter_mut().zip(v.iter_mut()))
                .map(|((&x, &mean), (m, v))| {
                    let x = f64::from(x);
                    let delta = f64::from(mean) - x;
                    *m = (s.beta1 * f64::from(*m) + (1.0 - s.beta1) * delta) as f32;
                    *v = (s.beta2 * f64::from(*v) + (1.0 - s.beta2) * delta * delta) as f32;
                    (x + s.lr * f64::from(*m) / (f64::from(*v).sqrt() + s.tau)) as f32
                })
                .collect();
            out.insert(name.clone(), x.shape().to_vec(), next)?;
        }
        Ok(Some(out))
    }

    fn state(&self) -> Result<ParamSet> {
        let mut state = ParamSet::new();
        for (name, (m, v)) in &self.moments {
            state.insert(format!("{FIRST}{name}"), vec![m.len()], m.clone())?;
            state.insert(format!("{SECOND}{name}"), vec![v.len()], v.clone())?;
        }
        Ok(state)
    }

    fn load_state(&mut self, state: &ParamSet) -> Result<()> {
        let mut moments = BTreeMap::new();
        for (key, m) in state.iter() {
            if key.starts_with(SECOND) {
                continue;
            }
            let name = key.strip_prefix(FIRST).ok_or_else(|| {
                self.error(format!(
                    "checkpoint state holds `{key}`; FedAdam keeps only `m/..` and `v/..`"
                ))
            })?;
            let v = state.get(&format!("{SECOND}{name}")).ok_or_else(|| {
                self.error(format!(
                    "checkpoint state has `{key}` without `{SECOND}{name}`"
                ))
            })?;
            if v.len() != m.len() {
                return Err(self.error(format!("`{key}` and `{SECOND}{name}` differ in size")));
            }
            moments.insert(name.to_string(), (m.data().to_vec(), v.data().to_vec()));
        }
        if let Some(orphan) = state.names().find(|k| {
            k.strip_prefix(SECOND)
                .is_some_and(|n| !moments.contains_key(n))
        }) {
            return Err(self.error(format!(
                "checkpoint state has `{orphan}` without its first moment"
            )));
        }
        self.moments = moments;
        Ok(())
    }
}
