//! `LocalTrainer`: one simulated client with candle. It owns its adapter and head tensors, its
//! optimizer state and two RNG streams seeded from (run seed, client id): one draws mini-batches,
//! one draws dropout masks. The frozen base is shared with every other client.

use std::collections::BTreeMap;
use std::sync::Arc;

use candle_core::Tensor;

use fedsa_core::config::{AdapterConfig, TrainingConfig};
use fedsa_core::{
    Batch, ClientTrainer, EncodedExample, Error, EvalMetrics, ParamSet, Result, Role, SeededRng,
    Strategy, TrainStats,
};

use crate::adapter::{AdapterSpec, ForwardCtx};
use crate::backend::Context;
use crate::metrics::{accuracy, macro_f1};
use crate::model::{BaseModel, ClientModel};
use crate::optim::{Optimizer, STATE_PREFIX, decode_u64, encode_u64};
use crate::schedule::lr_factor;

const RNG_BATCHES: &str = "__rng.batches";
const RNG_DROPOUT: &str = "__rng.dropout";

/// A client of the federation, training its adapter and head locally.
pub struct LocalTrainer {
    client_id: usize,
    model: ClientModel,
    training: TrainingConfig,
    optimizer: Optimizer,
    train: Vec<EncodedExample>,
    test: Vec<EncodedExample>,
    batch_rng: SeededRng,
    dropout_rng: SeededRng,
    total_steps: usize,
    num_labels: usize,
}

impl LocalTrainer {
    /// Client `client_id` with its own data. Adapter and head start from values that depend on
    /// `seed` alone; batch order and dropout on `(seed, client_id)`. The linear schedule spans
    /// `total_rounds` rounds of local steps.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client_id: usize,
        base: Arc<BaseModel>,
        spec: &AdapterSpec,
        adapter: &AdapterConfig,
        training: &TrainingConfig,
        num_labels: usize,
        train: Vec<EncodedExample>,
        test: Vec<EncodedExample>,
        seed: u64,
        total_rounds: usize,
    ) -> Result<LocalTrainer> {
        let client_err = |message: String| Error::Client {
            client: client_id,
            message,
        };
        if training.batch_size == 0 || training.eval_batch_size == 0 {
            return Err(Error::config(
                "training",
                "training.batch_size",
                "batch sizes must be at least 1",
            ));
        }
        if training.local_epochs.is_none() && training.local_steps == 0 {
            return Err(Error::config(
                "training",
                "training.local_steps",
                "must be at least 1",
            ));
        }
        if train.is_empty() {
            return Err(client_err("has no training examples".into()));
        }
        for (split, examples) in [("train", &train), ("test", &test)] {
            if let Some(e) = examples.iter().find(|e| e.label as usize >= num_labels) {
                return Err(client_err(format!(
                    "{split} example with label {} but the model has {num_labels} labels",
                    e.label
                )));
            }
            if examples.iter().any(|e| e.input_ids.is_empty()) {
                return Err(client_err(format!("{split} example with no tokens")));
            }
        }
        let model = ClientModel::new(base, spec, adapter, num_labels, seed)?;
        let steps_per_round = match training.local_epochs {
            Some(epochs) => epochs * train.len().div_ceil(training.batch_size),
            None => training.local_steps,
        };
        Ok(LocalTrainer {
            client_id,
            model,
            optimizer: Optimizer::new(training),
            training: training.clone(),
            batch_rng: SeededRng::derive(seed, &[client_id as u64, 1]),
            dropout_rng: SeededRng::derive(seed, &[client_id as u64, 2]),
            total_steps: steps_per_round * total_rounds.max(1),
            num_labels,
            train,
            test,
        })
    }

    /// The client's model (for inspection and tests).
    pub fn model(&self) -> &ClientModel {
        &self.model
    }

    /// Softmax probabilities per example, in eval mode (no dropout).
    pub fn predict_proba(&self, examples: &[EncodedExample]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(examples.len());
        for chunk in examples.chunks(self.training.eval_batch_size) {
            for row in self.logits(chunk)? {
                let (lse, _) = log_sum_exp(&row);
                out.push(
                    row.iter()
                        .map(|v| (f64::from(*v) - lse).exp() as f32)
                        .collect(),
                );
            }
        }
        Ok(out)
    }

    fn logits(&self, examples: &[EncodedExample]) -> Result<Vec<Vec<f32>>> {
        if let Some(e) = examples.iter().find(|e| e.input_ids.is_empty()) {
            return Err(Error::backend(
                "predicting",
                format!("example with label {} has no tokens", e.label),
            ));
        }
        let refs: Vec<&EncodedExample> = examples.iter().collect();
        let batch = Batch::pad(&refs, self.model.base().pad_token_id());
        let logits = self.model.forward(&batch, &mut ForwardCtx::eval())?;
        logits.to_vec2::<f32>().ctx("reading logits")
    }

    /// One optimizer step on the examples at `indices`; returns the batch loss.
    fn step(&mut self, indices: &[usize]) -> Result<f64> {
        let refs: Vec<&EncodedExample> = indices.iter().map(|&i| &self.train[i]).collect();
        let batch = Batch::pad(&refs, self.model.base().pad_token_id());
        let mut ctx = ForwardCtx {
            train: true,
            rng: Some(&mut self.dropout_rng),
        };
        let logits = self.model.forward(&batch, &mut ctx)?;
        let labels = Tensor::from_slice(&batch.labels, batch.batch, logits.device())
            .ctx("labels to device")?;
        let loss = candle_nn::loss::cross_entropy(&logits, &labels).ctx("loss")?;
        let value = f64::from(loss.to_scalar::<f32>().ctx("reading the loss")?);
        if !value.is_finite() {
            return Err(Error::Client {
                client: self.client_id,
                message: format!("training loss became {value}"),
            });
        }
        let vars = self.model.params().trained_vars();
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
}

/// `(log Σ exp v, argmax)` of one row.
fn log_sum_exp(row: &[f32]) -> (f64, usize) {
    let (arg, max) = row
        .iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(a, m), (i, &v)| {
            if f64::from(v) > m {
                (i, f64::from(v))
            } else {
                (a, m)
            }
        });
    let sum: f64 = row.iter().map(|&v| (f64::from(v) - max).exp()).sum();
    (max + sum.ln(), arg)
}

impl ClientTrainer for LocalTrainer {
    fn configure(&mut self, strategy: &Strategy) -> Result<()> {
        self.model
            .params_mut()
            .set_trained(Role::ALL.into_iter().filter(|r| strategy.trains(*r)));
        Ok(())
    }

    fn roles(&self) -> BTreeMap<String, Role> {
        self.model.params().roles()
    }

    fn num_train_examples(&self) -> usize {
        self.train.len()
    }

    fn params(&self, names: &[String]) -> Result<ParamSet> {
        self.model.params().export(names)
    }

    fn set_params(&mut self, params: &ParamSet) -> Result<()> {
        self.model.params().import(params)
    }

    fn train(&mut self, _round: usize) -> Result<TrainStats> {
        let n = self.train.len();
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
            total += self.step(indices)?;
            seen += indices.len();
        }
        Ok(TrainStats {
            loss: total / batches.len().max(1) as f64,
            steps: batches.len(),
            examples_seen: seen,
        })
    }

    fn evaluate(&mut self) -> Result<EvalMetrics> {
        let mut predictions = Vec::with_capacity(self.test.len());
        let mut loss = 0.0;
        for chunk in self.test.chunks(self.training.eval_batch_size) {
            for (row, e) in self.logits(chunk)?.iter().zip(chunk) {
                let (lse, arg) = log_sum_exp(row);
                loss += lse - f64::from(row[e.label as usize]);
                predictions.push(arg as u32);
            }
        }
        let labels: Vec<u32> = self.test.iter().map(|e| e.label).collect();
        let n = labels.len();
        Ok(EvalMetrics {
            loss: if n == 0 { 0.0 } else { loss / n as f64 },
            accuracy: accuracy(&predictions, &labels),
            macro_f1: macro_f1(&predictions, &labels),
            num_examples: n,
            extra: BTreeMap::new(),
        })
    }

    fn save_state(&self) -> Result<ParamSet> {
        let params = self.model.params();
        let mut out = params.export(&params.names())?;
        self.optimizer.save(&mut out)?;
        out.insert(RNG_BATCHES, vec![4], encode_u64(self.batch_rng.state()))?;
        out.insert(RNG_DROPOUT, vec![4], encode_u64(self.dropout_rng.state()))?;
        Ok(out)
    }

    fn load_state(&mut self, state: &ParamSet) -> Result<()> {
        let rng = |name: &str| -> Result<SeededRng> {
            decode_u64(state.require(name)?.data())
                .map(SeededRng::new)
                .ok_or_else(|| Error::param(name, "not an encoded RNG state"))
        };
        let (batch_rng, dropout_rng) = (rng(RNG_BATCHES)?, rng(RNG_DROPOUT)?);
        let params = state.filter(|n| !n.starts_with("__"));
        let expected = self.model.params().names();
        if let Some(missing) = expected.iter().find(|n| !params.contains(n)) {
            return Err(Error::param(
                missing.clone(),
                "missing from the saved client state",
            ));
        }
        self.model.params().import(&params)?;
        let vars: Vec<(&str, &candle_core::Var)> =
            self.model.params().vars().map(|(n, v, _)| (n, v)).collect();
        self.optimizer
            .load(&state.filter(|n| n.starts_with(STATE_PREFIX)), &vars)?;
        self.batch_rng = batch_rng;
        self.dropout_rng = dropout_rng;
        Ok(())
    }
}

impl LocalTrainer {
    /// The number of labels of the classifier.
    pub fn num_labels(&self) -> usize {
        self.num_labels
    }
}
