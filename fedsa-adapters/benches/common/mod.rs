//! The client every encoder benchmark measures: LoRA r = 8 on query/value over a fresh random
//! MiniLM-shaped model (6 layers, hidden 384, 12 heads, intermediate 1536, vocabulary 30522),
//! 2 labels, AdamW, under FedSA; and the peak-memory line the peer scripts read.
// Each bench uses some of these fixtures, none all of them.
#![allow(dead_code)]

use candle_core::Device;
use fedsa_adapters::{AdapterSpec, BaseModel, EncoderConfig, LocalTrainer};
use fedsa_core::config::{AdapterConfig, TrainingConfig};
use fedsa_core::{ClientTrainer, EncodedExample, SeededRng, Strategy};

/// A LoRA client over a fresh random MiniLM-shaped model whose one local step is one batch of
/// `batch` examples of `seq` tokens.
pub fn trainer(batch: usize, seq: usize) -> LocalTrainer {
    trainer_with(batch, seq, None, 64)
}

/// A client of the same model whose test split is `test`, evaluated in batches of
/// `eval_batch`.
pub fn evaluator(test: Vec<EncodedExample>, eval_batch: usize) -> LocalTrainer {
    trainer_with(2, 8, Some(test), eval_batch)
}

fn trainer_with(
    batch: usize,
    seq: usize,
    test: Option<Vec<EncodedExample>>,
    eval_batch: usize,
) -> LocalTrainer {
    // As the `fedsa` binary does at start-up, so the bench measures what users run.
    fedsa_adapters::tune_host_runtime();
    let config = EncoderConfig::bert(30_522, 384, 6, 12, 1536);
    let base = BaseModel::random(&config, 0, &Device::Cpu).expect("random MiniLM-shaped model");
    let adapter = AdapterConfig {
        rank: 8,
        ..AdapterConfig::default()
    };
    let training = TrainingConfig {
        local_steps: 1,
        batch_size: batch,
        eval_batch_size: eval_batch,
        ..TrainingConfig::default()
    };
    let mut rng = SeededRng::new(1);
    let examples: Vec<EncodedExample> = (0..batch)
        .map(|i| EncodedExample {
            input_ids: (0..seq).map(|_| 1000 + rng.below(20_000) as u32).collect(),
            type_ids: vec![0; seq],
            label: (i % 2) as u32,
        })
        .collect();
    let spec = AdapterSpec::builtin("lora", &adapter).expect("lora spec");
    let mut trainer = LocalTrainer::new(
        0,
        base,
        &spec,
        &adapter,
        &training,
        2,
        examples.clone(),
        test.unwrap_or(examples),
        0,
        1_000_000,
    )
    .expect("trainer");
    trainer.configure(&Strategy::fedsa()).expect("configure");
    trainer
}

/// Prints the process's peak resident set (`VmHWM`) as `{label}: peak resident set N KiB`, the
/// line the `benches/peer/*.sh` scripts read.
pub fn print_peak(label: &str) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:")) {
        let kib = line.split_whitespace().nth(1).unwrap_or("?");
        println!("{label}: peak resident set {kib} KiB");
    }
}
