//! Example aggregator plugin: FedAdam (Reddi et al., "Adaptive Federated Optimization", 2021),
//! registered as `fedadam_plugin`. A stateful server optimiser: per tensor it keeps Adam's first
//! and second moments between rounds, and its state travels through checkpoints.
//!
//! Per coordinate, with `x` the global value and `mean` the example-weighted client mean:
//! `delta = mean - x`, `m = beta1*m + (1-beta1)*delta`, `v = beta2*v + (1-beta2)*delta^2`,
//! `x' = x + lr * m / (sqrt(v) + tau)`; moments start at 0 and carry no bias correction, as in
//! the paper.
//!
//! Options (`[strategy.aggregator_options]`): `lr` (0.01), `beta1` (0.9), `beta2` (0.99),
//! `tau` (1e-3).

#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use fedsa_plugin_api::{AggregatorPlugin, Options, decode_state, encode_state, export_aggregator};

/// The optimiser's hyper-parameters and its moments per tensor name.
pub struct FedAdam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    tau: f64,
    /// `(m, v)` per tensor.
    moments: BTreeMap<String, (Vec<f32>, Vec<f32>)>,
}

fn check(name: &str, value: f64, ok: bool, rule: &str) -> Result<f64, String> {
    if ok && value.is_finite() {
        Ok(value)
    } else {
        Err(format!(
            "strategy.aggregator_options.{name}: must be {rule}, got {value}"
        ))
    }
}

impl AggregatorPlugin for FedAdam {
    fn new(config: &str) -> Result<Self, String> {
        let mut o = Options::parse(config)?;
        let lr = o.f64_or("lr", 0.01)?;
        let beta1 = o.f64_or("beta1", 0.9)?;
        let beta2 = o.f64_or("beta2", 0.99)?;
        let tau = o.f64_or("tau", 1e-3)?;
        o.finish(&["lr", "beta1", "beta2", "tau"])?;
        Ok(Self {
            lr: check("lr", lr, lr > 0.0, "> 0")?,
            beta1: check("beta1", beta1, (0.0..1.0).contains(&beta1), "in [0, 1)")?,
            beta2: check("beta2", beta2, (0.0..1.0).contains(&beta2), "in [0, 1)")?,
            tau: check("tau", tau, tau > 0.0, "> 0")?,
            moments: BTreeMap::new(),
        })
    }

    fn aggregate(
        &mut self,
        _round: u64,
        tensor: &str,
        global: &[f32],
        clients: &[&[f32]],
        weights: &[f64],
        out: &mut [f32],
    ) -> Result<(), String> {
        let len = global.len();
        let (m, v) = self
            .moments
            .entry(tensor.to_string())
            .or_insert_with(|| (vec![0.0; len], vec![0.0; len]));
        if m.len() != len {
            return Err(format!(
                "tensor `{tensor}`: the saved moments hold {} values, the tensor {len}",
                m.len()
            ));
        }
        for j in 0..len {
            let mean = clients
                .iter()
                .zip(weights)
                .map(|(c, w)| w * f64::from(c[j]))
                .sum::<f64>() as f32;
            let x = f64::from(global[j]);
            let delta = f64::from(mean) - x;
            m[j] = (self.beta1 * f64::from(m[j]) + (1.0 - self.beta1) * delta) as f32;
            v[j] = (self.beta2 * f64::from(v[j]) + (1.0 - self.beta2) * delta * delta) as f32;
            out[j] = (x + self.lr * f64::from(m[j]) / (f64::from(v[j]).sqrt() + self.tau)) as f32;
        }
        Ok(())
    }

    fn save_state(&self) -> Result<Vec<u8>, String> {
        if self.moments.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<(String, String)> = self
            .moments
            .keys()
            .map(|n| (format!("m/{n}"), format!("v/{n}")))
            .collect();
        let entries = self
            .moments
            .values()
            .zip(&names)
            .flat_map(|((m, v), (mn, vn))| [(mn.as_str(), &m[..]), (vn.as_str(), &v[..])]);
        Ok(encode_state(entries))
    }

    fn load_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut moments = BTreeMap::new();
        let mut entries = decode_state(bytes)?.into_iter();
        while let Some((m_name, m)) = entries.next() {
            let Some(tensor) = m_name.strip_prefix("m/") else {
                return Err(format!(
                    "state entry `{m_name}` where `m/<tensor>` was expected"
                ));
            };
            let (v_name, v) = entries
                .next()
                .ok_or_else(|| format!("state has `{m_name}` without its second moment"))?;
            if v_name.strip_prefix("v/") != Some(tensor) || v.len() != m.len() {
                return Err(format!(
                    "state entry `{v_name}` does not pair with `{m_name}`"
                ));
            }
            moments.insert(tensor.to_string(), (m, v));
        }
        self.moments = moments;
        Ok(())
    }
}

export_aggregator!(FedAdam, "fedadam_plugin");
