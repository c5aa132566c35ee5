//! One AdamW step of a MiniLM-shaped encoder (random weights: 6 layers, hidden 384, 12 heads,
//! intermediate 1536, vocabulary 30522) with LoRA r = 8 on query/value and 2 labels: forward,
//! backward, clipping and the update, through `LocalTrainer`. Three batch shapes (batch ×
//! sequence length): `train_step/16x32`, `train_step/16x64`, `train_step/32x64`.
//! `benches/peer/run.sh` compares these with a PyTorch + PEFT step of the same shape.
//!
//! Run: `cargo bench -p fedsa-adapters --bench train_step -- --warm-up-time 1
//! --measurement-time 10 --sample-size 10` (add a filter such as `16x64` for one size).

use std::hint::black_box;

use candle_core::Device;
use criterion::{Criterion, criterion_group, criterion_main};
use fedsa_adapters::{AdapterSpec, BaseModel, EncoderConfig, LocalTrainer};
use fedsa_core::config::{AdapterConfig, TrainingConfig};
use fedsa_core::{ClientTrainer, EncodedExample, SeededRng, Strategy};

/// (batch size, sequence length).
const SIZES: [(usize, usize); 3] = [(16, 32), (16, 64), (32, 64)];

/// A LoRA client over a fresh random MiniLM-shaped model whose one local step is one batch of
/// `batch` examples of `seq` tokens.
fn trainer(batch: usize, seq: usize) -> LocalTrainer {
    let config = EncoderConfig::bert(30_522, 384, 6, 12, 1536);
    let base = BaseModel::random(&config, 0, &Device::Cpu).expect("random MiniLM-shaped model");
    let adapter = AdapterConfig {
        rank: 8,
        ..AdapterConfig::default()
    };
    let training = TrainingConfig {
        local_steps: 1,
        batch_size: batch,
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
        examples,
        0,
        1_000_000,
    )
    .expect("trainer");
    trainer.configure(&Strategy::fedsa()).expect("configure");
    trainer
}

fn train_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_step");
    for (batch, seq) in SIZES {
        let mut trainer = trainer(batch, seq);
        let mut round = 0;
        group.bench_function(format!("{batch}x{seq}"), |b| {
            b.iter(|| {
                round += 1;
                black_box(trainer.train(round).expect("train"))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
