//! Shared fixtures for the decoder tests: a tiny random LLaMA, synthetic prompt/response
//! sequences, adapter and training configs.
#![allow(dead_code)]

use std::sync::Arc;

use candle_core::Device;
use fedsa_adapters::{DecoderModel, LlamaConfig};
use fedsa_core::config::{AdapterConfig, TrainingConfig};
use fedsa_core::{EncodedSequence, SeededRng};

pub const VOCAB: usize = 128;
pub const EOS: u32 = 2;

/// hidden 64, 2 layers, 4 heads sharing 2 key/value heads, vocab 128.
pub fn tiny() -> LlamaConfig {
    LlamaConfig::tiny(VOCAB, 64, 2, 4, 2, 96)
}

pub fn tiny_tied() -> LlamaConfig {
    LlamaConfig {
        tie_word_embeddings: true,
        ..tiny()
    }
}

pub fn model(config: &LlamaConfig) -> Arc<DecoderModel> {
    DecoderModel::random(config, 7, &Device::Cpu).unwrap()
}

/// `n` sequences: a prompt of 3..=6 tokens, then a response of 2..=4 tokens and EOS.
pub fn sequences(n: usize, seed: u64) -> Vec<EncodedSequence> {
    let mut rng = SeededRng::new(seed);
    (0..n)
        .map(|_| {
            let prompt = 3 + rng.below(4);
            let response = 2 + rng.below(3);
            let mut ids: Vec<u32> = vec![1];
            ids.extend((1..prompt).map(|_| 3 + rng.below(VOCAB - 3) as u32));
            ids.extend((0..response).map(|_| 3 + rng.below(VOCAB - 3) as u32));
            ids.push(EOS);
            EncodedSequence {
                input_ids: ids,
                prompt_len: prompt,
                reference: None,
            }
        })
        .collect()
}

pub fn adapter(kind: &str, targets: &[&str]) -> AdapterConfig {
    AdapterConfig {
        kind: kind.into(),
        rank: 4,
        alpha: 8.0,
        dropout: 0.0,
        target_modules: targets.iter().map(|t| (*t).to_string()).collect(),
        ..AdapterConfig::default()
    }
}

pub fn training() -> TrainingConfig {
    TrainingConfig {
        local_steps: 1,
        batch_size: 8,
        eval_batch_size: 4,
        lr: 1e-2,
        weight_decay: 0.0,
        ..TrainingConfig::default()
    }
}
