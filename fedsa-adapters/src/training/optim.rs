//! AdamW and SGD with momentum over a client's `Var`s, with state that can be saved and
//! restored exactly (candle's own optimizers do not expose their moments). The update rules
//! are PyTorch's (`torch.optim.AdamW`, `torch.optim.SGD` without dampening or Nesterov).

use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use fedsa_core::config::{OptimizerKind, TrainingConfig};
use fedsa_core::{Error, ParamSet, Result};

use crate::backend::Context;

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// Reserved name prefix of optimizer state in a saved client state.
pub(crate) const STATE_PREFIX: &str = "__optimizer.";
/// The slot under which a restarted parameter's starting step is saved.
const RESTARTED: &str = "restarted";

/// A first-order optimizer with exportable state.
pub struct Optimizer {
    kind: OptimizerKind,
    weight_decay: f64,
    momentum: f64,
    step: u64,
    /// Per parameter: AdamW `[exp_avg, exp_avg_sq]`, SGD `[momentum_buffer]`.
    state: BTreeMap<String, Vec<Tensor>>,
    /// The step count at which a parameter's state last started over (FLoRA's restart), so
    /// that AdamW's bias correction counts its steps from there, as a fresh optimizer would.
    restarted: BTreeMap<String, u64>,
}

impl Optimizer {
    pub fn new(training: &TrainingConfig) -> Optimizer {
        Optimizer {
            kind: training.optimizer,
            weight_decay: training.weight_decay,
            momentum: training.momentum,
            step: 0,
            state: BTreeMap::new(),
            restarted: BTreeMap::new(),
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Forgets the moments of `names`: their next step is their first.
    pub fn restart(&mut self, names: impl IntoIterator<Item = String>) {
        for name in names {
            self.state.remove(&name);
            self.restarted.insert(name, self.step);
        }
    }

    fn slot_names(&self) -> &'static [&'static str] {
        match self.kind {
            OptimizerKind::Adamw => &["exp_avg", "exp_avg_sq"],
            OptimizerKind::Sgd => &["momentum_buffer"],
        }
    }

    /// One update of `params` with learning rate `lr`; parameters without a gradient are
    /// skipped, as PyTorch skips `grad is None`.
    pub fn step(&mut self, params: &[(&str, &Var)], grads: &GradStore, lr: f64) -> Result<()> {
        self.step += 1;
        for (name, var) in params {
            let since = self.restarted.get(*name).copied().unwrap_or(0);
            let t = (self.step - since) as i32;
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let p = var.as_tensor().detach();
            let slots = self.slot_names().len();
            let state = match self.state.entry((*name).to_string()) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(
                    (0..slots)
                        .map(|_| p.zeros_like())
                        .collect::<candle_core::Result<Vec<_>>>()
                        .ctx("optimizer state")?,
                ),
            };
            let (new, slots) = match self.kind {
                OptimizerKind::Adamw => {
                    adamw(&p, g, &state[0], &state[1], lr, self.weight_decay, t).ctx("adamw")?
                }
                OptimizerKind::Sgd => {
                    sgd(&p, g, &state[0], lr, self.weight_decay, self.momentum).ctx("sgd")?
                }
            };
            *state = slots;
            var.set(&new).ctx("updating a parameter")?;
        }
        Ok(())
    }

    /// The state under reserved names: `__optimizer.step`, `__optimizer.<slot>.<param>`.
    pub fn save(&self, out: &mut ParamSet) -> Result<()> {
        out.insert(
            format!("{STATE_PREFIX}step"),
            vec![4],
            encode_u64(self.step),
        )?;
        for (name, at) in &self.restarted {
            out.insert(
                format!("{STATE_PREFIX}{RESTARTED}.{name}"),
                vec![4],
                encode_u64(*at),
            )?;
        }
        for (name, tensors) in &self.state {
            for (slot, t) in self.slot_names().iter().zip(tensors) {
                let data = t
                    .flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .ctx("saving optimizer state")?;
                out.insert(
                    format!("{STATE_PREFIX}{slot}.{name}"),
                    t.dims().to_vec(),
                    data,
                )?;
            }
        }
        Ok(())
    }

    /// Restores what [`Optimizer::save`] wrote, for the parameters in `vars`.
    pub fn load(&mut self, saved: &ParamSet, vars: &[(&str, &Var)]) -> Result<()> {
        let step_name = format!("{STATE_PREFIX}step");
        self.step = decode_u64(saved.require(&step_name)?.data())
            .ok_or_else(|| Error::param(step_name, "not an encoded step count"))?;
        self.state.clear();
        self.restarted.clear();
        for (name, var) in vars {
            let key = format!("{STATE_PREFIX}{RESTARTED}.{name}");
            if let Some(t) = saved.get(&key) {
                let at = decode_u64(t.data())
                    .ok_or_else(|| Error::param(key.clone(), "not an encoded step count"))?;
                self.restarted.insert((*name).to_string(), at);
            }
            let mut slots = Vec::new();
            for slot in self.slot_names() {
                let key = format!("{STATE_PREFIX}{slot}.{name}");
                let Some(t) = saved.get(&key) else { break };
                if t.shape() != var.as_tensor().dims() {
                    return Err(Error::param(
                        key,
                        format!(
                            "shape {:?}, parameter is {:?}",
                            t.shape(),
                            var.as_tensor().dims()
                        ),
                    ));
                }
                slots.push(
                    Tensor::from_slice(t.data(), t.shape(), var.as_tensor().device())
                        .ctx("restoring optimizer state")?,
                );
            }
            if slots.len() == self.slot_names().len() {
                self.state.insert((*name).to_string(), slots);
            }
        }
        Ok(())
    }
}

/// PyTorch's AdamW update: the new parameter and `[exp_avg, exp_avg_sq]`.
fn adamw(
    p: &Tensor,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
    lr: f64,
    weight_decay: f64,
    t: i32,
) -> candle_core::Result<(Tensor, Vec<Tensor>)> {
    let m = ((m * BETA1)? + (g * (1.0 - BETA1))?)?;
    let v = ((v * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
    let bc1 = 1.0 - BETA1.powi(t);
    let bc2 = 1.0 - BETA2.powi(t);
    let denom = ((v.sqrt()? / bc2.sqrt())? + EPS)?;
    let update = ((&m / &denom)? * (lr / bc1))?;
    let new = ((p * (1.0 - lr * weight_decay))? - update)?;
    Ok((new, vec![m, v]))
}

/// PyTorch's SGD update (no dampening, no Nesterov): the new parameter and `[momentum_buffer]`.
fn sgd(
    p: &Tensor,
    g: &Tensor,
    buf: &Tensor,
    lr: f64,
    weight_decay: f64,
    momentum: f64,
) -> candle_core::Result<(Tensor, Vec<Tensor>)> {
    let d = if weight_decay > 0.0 {
        (g + (p * weight_decay)?)?
    } else {
        g.clone()
    };
    let buf = if momentum > 0.0 {
        ((buf * momentum)? + d)?
    } else {
        d
    };
    let new = (p - (&buf * lr)?)?;
    Ok((new, vec![buf]))
}

/// A `u64` as four 16-bit pieces in f32 (exact): scalars in a state file of f32 tensors.
pub(crate) fn encode_u64(v: u64) -> Vec<f32> {
    (0..4).map(|i| ((v >> (16 * i)) & 0xFFFF) as f32).collect()
}

/// The inverse of [`encode_u64`].
pub(crate) fn decode_u64(data: &[f32]) -> Option<u64> {
    if data.len() != 4
        || data
            .iter()
            .any(|v| !(0.0..65536.0).contains(v) || v.fract() != 0.0)
    {
        return None;
    }
    Some(
        data.iter()
            .enumerate()
            .fold(0u64, |acc, (i, v)| acc | ((*v as u64) << (16 * i))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn one_param(value: f32, grad: f32) -> (Var, GradStore) {
        let var = Var::new(&[value], &Device::Cpu).unwrap();
        let loss = (var.as_tensor() * f64::from(grad))
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        (var, grads)
    }

    #[test]
    fn adamw_matches_hand_computed_steps() {
        // PyTorch AdamW, lr 0.1, wd 0.01, p0 = 1, g = 0.5 twice:
        // step 1: p = 1·(1-0.001) - 0.1·(0.05/0.1)/(sqrt(0.00025/0.001)+1e-8) = 0.999 - 0.1 = 0.899
        // step 2: p = 0.899·0.999 - 0.1 ≈ 0.798101 (the bias-corrected ratio stays 1 for a constant g)
        let cfg = TrainingConfig {
            weight_decay: 0.01,
            ..TrainingConfig::default()
        };
        let mut opt = Optimizer::new(&cfg);
        let (var, grads) = one_param(1.0, 0.5);
        opt.step(&[("p", &var)], &grads, 0.1).unwrap();
        let v = var.as_tensor().to_vec1::<f32>().unwrap()[0];
        assert!((v - 0.899).abs() < 1e-6, "{v}");
        let loss = (var.as_tensor() * 0.5).unwrap().sum_all().unwrap();
        opt.step(&[("p", &var)], &loss.backward().unwrap(), 0.1)
            .unwrap();
        let v = var.as_tensor().to_vec1::<f32>().unwrap()[0];
        assert!((v - 0.798_101).abs() < 1e-5, "{v}");
    }

    #[test]
    fn a_restarted_parameter_steps_as_under_a_fresh_optimizer() {
        // After one step (p = 0.899, as above) the moments are forgotten; with g = -2 the next
        // step is a first step again: the bias-corrected ratio is -1, so p = 0.899·0.999 + 0.1
        // (the old moments would have given a ratio of about -0.56).
        let cfg = TrainingConfig {
            weight_decay: 0.01,
            ..TrainingConfig::default()
        };
        let mut opt = Optimizer::new(&cfg);
        let (var, grads) = one_param(1.0, 0.5);
        opt.step(&[("p", &var)], &grads, 0.1).unwrap();
        opt.restart(["p".to_string()]);
        let mut saved = ParamSet::new();
        opt.save(&mut saved).unwrap();
        let mut resumed = Optimizer::new(&cfg);
        resumed.load(&saved, &[("p", &var)]).unwrap();
        let loss = (var.as_tensor() * -2.0).unwrap().sum_all().unwrap();
        resumed
            .step(&[("p", &var)], &loss.backward().unwrap(), 0.1)
            .unwrap();
        let v = var.as_tensor().to_vec1::<f32>().unwrap()[0];
        assert!((v - 0.998_101).abs() < 1e-5, "{v}");
        assert_eq!(resumed.steps(), 2, "the schedule's count goes on");
    }

    #[test]
    fn sgd_momentum_matches_hand_computed_steps() {
        // lr 0.1, momentum 0.9, wd 0: buf1 = 2, p = 1 - 0.2 = 0.8; buf2 = 1.8 + 2 = 3.8, p = 0.42.
        let cfg = TrainingConfig {
            optimizer: OptimizerKind::Sgd,
            weight_decay: 0.0,
            momentum: 0.9,
            ..TrainingConfig::default()
        };
        let mut opt = Optimizer::new(&cfg);
        let (var, grads) = one_param(1.0, 2.0);
        opt.step(&[("p", &var)], &grads, 0.1).unwrap();
        let loss = (var.as_tensor() * 2.0).unwrap().sum_all().unwrap();
        opt.step(&[("p", &var)], &loss.backward().unwrap(), 0.1)
            .unwrap();
        let v = var.as_tensor().to_vec1::<f32>().unwrap()[0];
        assert!((v - 0.42).abs() < 1e-6, "{v}");
    }

    #[test]
    fn state_round_trips_and_u64_is_exact() {
        for v in [0, 1, 65_535, 65_536, u64::MAX, 0x1234_5678_9abc_def0] {
            assert_eq!(decode_u64(&encode_u64(v)), Some(v));
        }
        let mut opt = Optimizer::new(&TrainingConfig::default());
        let (var, grads) = one_param(1.0, 0.5);
        opt.step(&[("p", &var)], &grads, 0.1).unwrap();
        let mut saved = ParamSet::new();
        opt.save(&mut saved).unwrap();
        let mut again = Optimizer::new(&TrainingConfig::default());
        again.load(&saved, &[("p", &var)]).unwrap();
        let mut saved2 = ParamSet::new();
        again.save(&mut saved2).unwrap();
        assert_eq!(saved, saved2);
        assert_eq!(again.steps(), 1);
    }
}
