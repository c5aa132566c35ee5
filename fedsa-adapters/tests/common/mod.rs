//! Shared fixtures for the integration tests: tiny random encoders and synthetic examples.
#![allow(dead_code)]

use std::sync::Arc;

use candle_core::Device;
use fedsa_adapters::{BaseModel, EncoderConfig};
use fedsa_core::config::{AdapterConfig, TrainingConfig};
use fedsa_core::{EncodedExample, SeededRng};

pub const VOCAB: usize = 40;

pub fn tiny_bert() -> EncoderConfig {
    EncoderConfig::bert(VOCAB, 32, 2, 4, 64)
}

pub fn tiny_roberta() -> EncoderConfig {
    EncoderConfig::roberta(VOCAB, 32, 2, 4, 64)
}

pub fn base(config: &EncoderConfig) -> Arc<BaseModel> {
    BaseModel::random(config, 7, &Device::Cpu).unwrap()
}

/// `n` examples of 3..=9 tokens; the label says whether token 5 occurs (learnable from tokens).
pub fn examples(n: usize, seed: u64) -> Vec<EncodedExample> {
    let mut rng = SeededRng::new(seed);
    (0..n)
        .map(|i| {
            let len = 3 + rng.below(7);
            let mut ids: Vec<u32> = (0..len).map(|_| 6 + rng.below(VOCAB - 6) as u32).collect();
            let label = (i % 2) as u32;
            if label == 1 {
                ids[1 + rng.below(len - 1)] = 5;
            }
            ids[0] = 2;
            EncodedExample {
                type_ids: vec![0; ids.len()],
                input_ids: ids,
                label,
            }
        })
        .collect()
}

pub fn adapter(kind: &str) -> AdapterConfig {
    AdapterConfig {
        kind: kind.into(),
        rank: 4,
        alpha: 8.0,
        dropout: 0.0,
        ..AdapterConfig::default()
    }
}

pub fn training() -> TrainingConfig {
    TrainingConfig {
        local_steps: 1,
        batch_size: 8,
        eval_batch_size: 8,
        lr: 1e-2,
        weight_decay: 0.0,
        ..TrainingConfig::default()
    }
}

/// Largest absolute difference of two tensors.
pub fn max_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Moves every trainable tensor off its initial value by up to ±0.05: B (VeRA: b) starts at
/// zero, which hides the adapter and makes A's (d's) gradient exactly zero.
pub fn perturb(params: &fedsa_adapters::model::ParamStore, seed: u64) {
    let mut rng = SeededRng::new(seed);
    let current = params.export(&params.names()).unwrap();
    let mut moved = fedsa_core::ParamSet::new();
    for (name, t) in current.iter() {
        let data = t
            .data()
            .iter()
            .map(|v| v + 0.1 * (rng.next_f64() as f32 - 0.5))
            .collect();
        moved
            .insert(name.clone(), t.shape().to_vec(), data)
            .unwrap();
    }
    params.import(&moved).unwrap();
}

/// A client model of `spec` on `base` (3 labels, seed 11) with its parameters perturbed, and
/// its logits for `batch` in training mode, dropout drawn from a fixed stream: the setting in
/// which two programs of the same adapter must agree draw for draw.
pub fn train_mode_logits(
    base: &Arc<BaseModel>,
    spec: &fedsa_adapters::AdapterSpec,
    cfg: &AdapterConfig,
    batch: &fedsa_core::Batch,
) -> (fedsa_adapters::model::ClientModel, candle_core::Tensor) {
    let model =
        fedsa_adapters::model::ClientModel::new(Arc::clone(base), spec, cfg, 3, 11).unwrap();
    perturb(model.params(), 5);
    let mut rng = SeededRng::new(7);
    let mut ctx = fedsa_adapters::adapter::ForwardCtx {
        train: true,
        rng: Some(&mut rng),
    };
    let logits = model.forward(batch, &mut ctx).unwrap();
    (model, logits)
}
