//! `LocalTrainer`: one simulated client with candle. It owns its adapter and head tensors, its
//! optimizer state and two RNG streams seeded from (run seed, client id): one draws mini-batches,
//! one draws dropout masks. The frozen base is shared with every other client.

use std::collections::BTreeMap;
use std::sync::Arc;

use candle_core::Tensor;

use fedsa_core::config::{AdapterConfig, TrainingConfig};
use fedsa_core::{
    Batch, ClientTrainer, EncodedExample, Error, EvalMetrics, LowRankModule, ParamSet, Result,
    Role, Strategy, TrainStats,
};

use crate::adapter::{AdapterSpec, ForwardCtx};
use crate::backend::Context;
use crate::encoder::{BaseModel, ClientModel};
use crate::training::local::LocalLoop;
use crate::training::metrics::{accuracy, macro_f1};

/// A client of the federation, training its adapter and head locally.
pub struct LocalTrainer {
    model: ClientModel,
    local: LocalLoop,
    train: Vec<EncodedExample>,
    test: Vec<EncodedExample>,
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
        let local = LocalLoop::new(client_id, training, train.len(), seed, total_rounds)?;
        for (split, examples) in [("train", &train), ("test", &test)] {
            if let Some(e) = examples.iter().find(|e| e.label as usize >= num_labels) {
                return Err(local.client_err(format!(
                    "{split} example with label {} but the model has {num_labels} labels",
                    e.label
                )));
            }
            if examples.iter().any(|e| e.input_ids.is_empty()) {
                return Err(local.client_err(format!("{split} example with no tokens")));
            }
        }
        let model = ClientModel::new(base, spec, adapter, num_labels, seed)?;
        // Evaluation pads each batch to its longest example: in length order a batch holds
        // examples of about one length, so little of its work is padding. The metrics do not
        // depend on the order (the loss is a sum, accuracy and F1 count pairs).
        let mut test = test;
        test.sort_by_key(|e| e.input_ids.len());
        Ok(LocalTrainer {
            model,
            local,
            train,
            test,
            num_labels,
        })
    }

    /// The client's model (for inspection and tests).
    pub fn model(&self) -> &ClientModel {
        &self.model
    }

    /// Softmax probabilities per example, in eval mode (no dropout), in the order of `examples`.
    /// Batches are formed in length order (less padding) and the rows put back in place.
    pub fn predict_proba(&self, examples: &[EncodedExample]) -> Result<Vec<Vec<f32>>> {
        let mut order: Vec<usize> = (0..examples.len()).collect();
        order.sort_by_key(|&i| examples[i].input_ids.len());
        let mut out = vec![Vec::new(); examples.len()];
        for chunk in order.chunks(self.local.training.eval_batch_size.max(1)) {
            let batch: Vec<&EncodedExample> = chunk.iter().map(|&i| &examples[i]).collect();
            for (&i, row) in chunk.iter().zip(self.logits(&batch)?) {
                let (lse, _) = log_sum_exp(&row);
                out[i] = row
                    .iter()
                    .map(|v| (f64::from(*v) - lse).exp() as f32)
                    .collect();
            }
        }
        Ok(out)
    }

    fn logits(&self, examples: &[&EncodedExample]) -> Result<Vec<Vec<f32>>> {
        if let Some(e) = examples.iter().find(|e| e.input_ids.is_empty()) {
            return Err(Error::backend(
                "predicting",
                format!("example with label {} has no tokens", e.label),
            ));
        }
        let batch = Batch::pad(examples, self.model.base().pad_token_id());
        let logits = self.model.infer(&batch)?;
        logits.to_vec2::<f32>().ctx("reading logits")
    }
}

/// One optimizer step on the examples at `indices`; returns the batch loss.
fn step(
    model: &ClientModel,
    train: &[EncodedExample],
    local: &mut LocalLoop,
    indices: &[usize],
) -> Result<f64> {
    let refs: Vec<&EncodedExample> = indices.iter().map(|&i| &train[i]).collect();
    let batch = Batch::pad(&refs, model.base().pad_token_id());
    let mut ctx = ForwardCtx {
        train: true,
        rng: Some(&mut local.dropout_rng),
    };
    let logits = model.forward(&batch, &mut ctx)?;
    let labels =
        Tensor::from_slice(&batch.labels, batch.batch, logits.device()).ctx("labels to device")?;
    let loss = candle_nn::loss::cross_entropy(&logits, &labels).ctx("loss")?;
    local.update(&loss, model.params())
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

    fn set_trained_roles(&mut self, roles: &[Role]) -> Result<()> {
        self.model.params_mut().set_trained(roles.iter().copied());
        Ok(())
    }

    fn low_rank_modules(&self) -> Vec<LowRankModule> {
        self.model.adapters().low_rank_modules()
    }

    fn restart_factors(&mut self, seed: u64) -> Result<()> {
        let fresh = self.model.adapters().fresh_factors(seed)?;
        self.local.restart(self.model.params(), &fresh)
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
        let params = self.model.adapters().take_deltas(params)?;
        self.model.params().import(&params)
    }

    fn train(&mut self, _round: usize) -> Result<TrainStats> {
        let (model, train) = (&self.model, &self.train);
        self.local.round(train.len(), |local, indices| {
            step(model, train, local, indices)
        })
    }

    fn evaluate(&mut self) -> Result<EvalMetrics> {
        let mut predictions = Vec::with_capacity(self.test.len());
        let mut loss = 0.0;
        for chunk in self.test.chunks(self.local.training.eval_batch_size.max(1)) {
            let refs: Vec<&EncodedExample> = chunk.iter().collect();
            for (row, e) in self.logits(&refs)?.iter().zip(chunk) {
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
        self.local.save(self.model.params())
    }

    fn load_state(&mut self, state: &ParamSet) -> Result<()> {
        self.local.load(self.model.params(), state)
    }
}

impl LocalTrainer {
    /// The number of labels of the classifier.
    pub fn num_labels(&self) -> usize {
        self.num_labels
    }
}
