//! One AdamW step of a MiniLM-shaped encoder (random weights: 6 layers, hidden 384, 12 heads,
//! intermediate 1536, vocabulary 30522) with LoRA r = 8 on query/value, a batch of 16 × 64
//! tokens and 2 labels: forward, backward, clipping and the update, through `LocalTrainer`.
//!
//! Run: `cargo bench -p fedsa-adapters --bench train_step -- --warm-up-time 1
//! --measurement-time 10 --sample-size 10`.

use std::hint::black_box;

use candle_core::Device;
use criterion::{Criterion, criterion_group, criterion_main};
use fedsa_adapters::{AdapterSpec, BaseModel, EncoderConfig, LocalTrainer};
use fedsa_core::config::{AdapterConfig, TrainingConfig};
use fedsa_core::{ClientTrainer, EncodedExample, SeededRng, Strategy};

fn train_step(c: &mut Criterion) {
    let config = EncoderConfig::bert(30_522, 384, 6, 12, 1536);
    let base = BaseModel::random(&config, 0, &Device::Cpu).expect("random MiniLM-shaped model");
    let adapter = AdapterConfig {
        rank: 8,
        ..AdapterConfig::default()
    };
    let training = TrainingConfig {
        local_steps: 1,
        batch_size: 16,
        ..TrainingConfig::default()
    };
    let mut rng = SeededRng::new(1);
    let examples: Vec<EncodedExample> = (0..16)
        .map(|i| EncodedExample {
            input_ids: (0..64).map(|_| 1000 + rng.below(20_000) as u32).collect(),
            type_ids: vec![0; 64],
            label: i % 2,
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
    let mut round = 0;
    c.bench_function("train_step", |b| {
        b.iter(|| {
            round += 1;
            black_box(trainer.train(round).expect("train"))
        });
    });
}

criterion_group!(benches, train_step);
criterion_main!(benches);
