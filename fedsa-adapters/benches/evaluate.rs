//! Evaluation (forward only, as `fedsa run` evaluates every client and `fedsa predict` scores
//! texts) of a LoRA client (r = 8 on query/value) over a random MiniLM-shaped model (6 layers,
//! hidden 384, 12 heads, intermediate 1536, vocabulary 30522): 512 test examples of 8 to 64
//! tokens, eval batch 64. `evaluate/512` is `ClientTrainer::evaluate`, which
//! batches the examples in length order and runs them with no parameter tracked;
//! `evaluate/512_tracked` runs the same batches through the differentiable eval forward, as
//! evaluation did before, for the gain of the untracked path alone.
//! `benches/peer/evaluate.sh` compares these with PyTorch + PEFT on the same examples.
//!
//! Run: `cargo bench -p fedsa-adapters --bench evaluate -- --warm-up-time 2
//! --measurement-time 20 --sample-size 10`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group};
use fedsa_adapters::adapter::ForwardCtx;
use fedsa_core::{Batch, ClientTrainer, EncodedExample};

mod common;

const EXAMPLES: usize = 512;
const EVAL_BATCH: usize = 64;

/// The bench's test examples, as `benches/peer/evaluate.py` builds them: example `i` has
/// `8 + 37 i mod 57` tokens (8 to 64, spread evenly and shuffled) and label `i mod 2`.
fn examples() -> Vec<EncodedExample> {
    (0..EXAMPLES)
        .map(|i| {
            let len = 8 + (37 * i) % 57;
            EncodedExample {
                input_ids: (0..len)
                    .map(|j| 1000 + ((131 * i + 17 * j) % 20_000) as u32)
                    .collect(),
                type_ids: vec![0; len],
                label: (i % 2) as u32,
            }
        })
        .collect()
}

fn evaluate(c: &mut Criterion) {
    let mut trainer = common::evaluator(examples(), EVAL_BATCH);
    let mut sorted = examples();
    sorted.sort_by_key(|e| e.input_ids.len());
    let pad = trainer.model().base().pad_token_id();
    let batches: Vec<Batch> = sorted
        .chunks(EVAL_BATCH)
        .map(|chunk| Batch::pad(&chunk.iter().collect::<Vec<_>>(), pad))
        .collect();
    let mut group = c.benchmark_group("evaluate");
    group.bench_function(format!("{EXAMPLES}"), |b| {
        b.iter(|| black_box(trainer.evaluate().expect("evaluate")));
    });
    group.bench_function(format!("{EXAMPLES}_tracked"), |b| {
        b.iter(|| {
            for batch in &batches {
                let logits = trainer.model().forward(batch, &mut ForwardCtx::eval());
                black_box(logits.expect("forward").to_vec2::<f32>().expect("logits"));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, evaluate);

/// criterion's own `main`, then the process's peak resident set.
fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    common::print_peak("evaluate");
}
