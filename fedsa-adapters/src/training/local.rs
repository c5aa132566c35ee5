//! What every local trainer shares, whatever its model: the checks on the training config,
//! the two RNG streams (mini-batches, dropout) seeded from (run seed, client id), the round's
//! batch draws, one optimizer update (backward, gradient clipping, learning-rate schedule) and
//! the exact save/restore of parameters, optimizer moments and RNG states.

use candle_core::{Tensor, Var};

use fedsa_core::config::TrainingConfig;
use fedsa_core::{Error, ParamSet, Result, SeededRng, TrainStats};

use crate::backend::Context;
use crate::training::ParamStore;
use crate::training::optim::{Optimizer, STATE_PREFIX, decode_u64, encode_u64};
use crate::training::schedule::lr_factor;

const RNG_BATCHES: &str = "__rng.batches";
const RNG_DROPOUT: &str = "__rng.dropout";

/// One client's optimizer, schedule position and RNG streams.
pub(crate) struct LocalLoop {
    client_id: usize,
    pub(crate) training: TrainingConfig,
    optimizer: Optimizer,
    batch_rng: SeededRng,
    /// Dropout masks in train mode.
    pub(crate) dropout_rng: SeededRng,
    total_steps: usize,
}

impl LocalLoop {
    /// Checks the config for a client with `num_train` examples; the linear schedule spans
    /// `total_rounds` rounds of local steps.
    pub(crate) fn new(
        client_id: usize,
        training: &TrainingConfig,
        num_train: usize,
        seed: u64,
        total_rounds: usize,
    ) -> Result<LocalLoop> {
        if training.batch_size == 0 || training.eval_batch_size == 0 {
            return Err(Error::run_config(
                "training.batch_size",
                "batch sizes must be at least 1",
            ));
        }
        if training.local_epochs.is_none() && training.local_steps == 0 {
            return Err(Error::run_config(
                "training.local_steps",
                "must be at least 1",
            ));
        }
        let local = LocalLoop {
            client_id,
            training: training.clone(),
            optimizer: Optimizer::new(training),
            batch_rng: SeededRng::derive(seed, &[client_id as u64, 1]),
            dropout_rng: SeededRng::derive(seed, &[client_id as u64, 2]),
            total_steps: 0,
        };
        if num_train == 0 {
            return Err(local.client_err("has no training examples"));
        }
        let steps_per_round = match training.local_epochs {
            Some(epochs) => epochs * num_train.div_ceil(training.batch_size),
            None => training.local_steps,
        };
        Ok(LocalLoop {
            total_steps: steps_per_round * total_rounds.max(1),
            ..local
        })
    }

    /// An error of this client.
    pub(crate) fn client_err(&self, message: impl Into<String>) -> Error {
        Error::Client {
            client: self.client_id,
            message: message.into(),
        }
    }

    /// One round over `n` examples: `step(self, indices)` per mini-batch (shuffled epochs, or
    /// `local_steps` random draws), returning each batch's loss.
    pub(crate) fn round(
        &mut self,
        n: usize,
        mut step: impl FnMut(&mut LocalLoop, &[usize]) -> Result<f64>,
    ) -> Result<TrainStats> {
        let bs = self.training.batch_size.min(n);
        let batches: Vec<Vec<usize>> = match self.training.local_epochs {
            Some(epochs) => {
                let mut all = Vec::new();
                for _ in 0..epochs {
                    let mut order: Vec<usize> = (0..n).collect();
                    self.batch_rng.shuffle(&mut order);
                    all.extend(
                        order
                            .chunks(self.training.batch_size)
                            .map(<[usize]>::to_vec),
                    );
                }
                all
            }
            None => (0..self.training.local_steps)
                .map(|_| self.batch_rng.sample_indices(n, bs))
                .collect(),
        };
        let mut total = 0.0;
        let mut seen = 0;
        for indices in &batches {
            total += step(self, indices)?;
            seen += indices.len();
        }
        Ok(TrainStats {
            loss: total / batches.len().max(1) as f64,
            steps: batches.len(),
            examples_seen: seen,
        })
    }

    /// Backward from `loss`, clipping, and one optimizer step on the trained parameters;
    /// returns the loss value. A non-finite loss is this client's error.
    pub(crate) fn update(&mut self, loss: &Tensor, params: &ParamStore) -> Result<f64> {
        let value = f64::from(loss.to_scalar::<f32>().ctx("reading the loss")?);
        if !value.is_finite() {
            return Err(self.client_err(format!("training loss became {value}")));
        }
        let vars = params.trained_vars();
        if vars.is_empty() {
            return Ok(value);
        }
        let mut grads = loss.backward().ctx("backward")?;
        if let Some(max_norm) = self.training.max_grad_norm {
            let mut sq = 0.0f64;
            for (_, v) in &vars {
                if let Some(g) = grads.get(v.as_tensor()) {
                    sq += f64::from(
                        g.sqr()
                            .and_then(|s| s.sum_all())
                            .and_then(|s| s.to_scalar::<f32>())
                            .ctx("gradient norm")?,
                    );
                }
            }
            let norm = sq.sqrt();
            // torch.nn.utils.clip_grad_norm_: scale by max/(norm + 1e-6) when above the bound.
            if norm > max_norm {
                let factor = max_norm / (norm + 1e-6);
                for (_, v) in &vars {
                    if let Some(g) = grads.get(v.as_tensor()) {
                        let scaled = (g * factor).ctx("clipping")?;
                        grads.insert(v.as_tensor(), scaled);
                    }
                }
            }
        }
        let factor = lr_factor(
            self.training.schedule,
            self.training.warmup_steps,
            self.total_steps,
            self.optimizer.steps() as usize,
        );
        self.optimizer
            .step(&vars, &grads, self.training.lr * factor)?;
        Ok(value)
    }

    /// Sets `fresh` (newly drawn factors) and forgets their optimizer moments.
    pub(crate) fn restart(&mut self, params: &ParamStore, fresh: &ParamSet) -> Result<()> {
        params.import(fresh)?;
        self.optimizer.restart(fresh.names().cloned());
        Ok(())
    }

    /// Parameters, optimizer state and RNG states under reserved names.
    pub(crate) fn save(&self, params: &ParamStore) -> Result<ParamSet> {
        let mut out = params.export(&params.names())?;
        self.optimizer.save(&mut out)?;
        out.insert(RNG_BATCHES, vec![4], encode_u64(self.batch_rng.state()))?;
        out.insert(RNG_DROPOUT, vec![4], encode_u64(self.dropout_rng.state()))?;
        Ok(out)
    }

    /// Restores what [`LocalLoop::save`] wrote; every parameter must be present.
    pub(crate) fn load(&mut self, params: &ParamStore, state: &ParamSet) -> Result<()> {
        let rng = |name: &str| -> Result<SeededRng> {
            decode_u64(state.require(name)?.data())
                .map(SeededRng::new)
                .ok_or_else(|| Error::param(name, "not an encoded RNG state"))
        };
        let (batch_rng, dropout_rng) = (rng(RNG_BATCHES)?, rng(RNG_DROPOUT)?);
        let values = state.filter(|n| !n.starts_with("__"));
        if let Some(missing) = params.names().iter().find(|n| !values.contains(n)) {
            return Err(Error::param(
                missing.clone(),
                "missing from the saved client state",
            ));
        }
        params.import(&values)?;
        let vars: Vec<(&str, &Var)> = params.vars().map(|(n, v, _)| (n, v)).collect();
        self.optimizer
            .load(&state.filter(|n| n.starts_with(STATE_PREFIX)), &vars)?;
        self.batch_rng = batch_rng;
        self.dropout_rng = dropout_rng;
        Ok(())
    }
}
