//! One AdamW step of a MiniLM-shaped encoder (random weights: 6 layers, hidden 384, 12 heads,
//! intermediate 1536, vocabulary 30522) with LoRA r = 8 on query/value and 2 labels: forward,
//! backward, clipping and the update, through `LocalTrainer`. Three batch shapes (batch ×
//! sequence length): `train_step/16x32`, `train_step/16x64`, `train_step/32x64`.
//! `benches/peer/run.sh` compares these with a PyTorch + PEFT step of the same shape.
//!
//! Run: `cargo bench -p fedsa-adapters --bench train_step -- --warm-up-time 1
//! --measurement-time 10 --sample-size 10` (add a filter such as `16x64` for one size).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use fedsa_core::ClientTrainer;

mod common;
use common::trainer;

/// (batch size, sequence length).
const SIZES: [(usize, usize); 3] = [(16, 32), (16, 64), (32, 64)];

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
