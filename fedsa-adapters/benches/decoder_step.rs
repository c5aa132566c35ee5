//! One AdamW step of a LoRA client (r = 8, alpha 16, dropout 0.05 on q/v, as
//! `examples/gen-*.toml`) over a random model of SmolLM2-135M's shape (30 layers, hidden 576, 9
//! heads sharing 3 key/value heads, intermediate 1536, vocabulary 49152, tied embeddings):
//! forward, the loss on the response tokens, backward, clipping and the update, through
//! `GenerationTrainer`. A batch of 4 sequences of 96 tokens (a 40-token prompt, 56 response
//! tokens), the shape of the generation examples (`batch_size = 4`, `max_length = 96`).
//! `benches/peer/decoder_step.sh` compares it with a PyTorch + PEFT step of the same shape.
//!
//! Run: `cargo bench -p fedsa-adapters --bench decoder_step -- --warm-up-time 2
//! --measurement-time 20 --sample-size 10`.

use std::hint::black_box;

use candle_core::Device;
use criterion::{Criterion, criterion_group};
use fedsa_adapters::{AdapterSpec, DecoderModel, GenerationTrainer, LlamaConfig};
use fedsa_core::config::{AdapterConfig, TrainingConfig};
use fedsa_core::{ClientTrainer, EncodedSequence, SeededRng, Strategy};

mod common;

const BATCH: usize = 4;
const PROMPT: usize = 40;
const SEQ: usize = 96;

fn trainer() -> GenerationTrainer {
    fedsa_adapters::tune_host_runtime();
    let config = LlamaConfig {
        tie_word_embeddings: true,
        rope_theta: 100_000.0,
        ..LlamaConfig::tiny(49_152, 576, 30, 9, 3, 1536)
    };
    let base = DecoderModel::random(&config, 0, &Device::Cpu).expect("random model");
    let adapter = AdapterConfig {
        rank: 8,
        alpha: 16.0,
        dropout: 0.05,
        target_modules: vec!["q_proj".into(), "v_proj".into()],
        ..AdapterConfig::default()
    };
    let training = TrainingConfig {
        local_steps: 1,
        batch_size: BATCH,
        lr: 1e-3,
        ..TrainingConfig::default()
    };
    let mut rng = SeededRng::new(1);
    let data: Vec<EncodedSequence> = (0..BATCH)
        .map(|_| EncodedSequence {
            input_ids: (0..SEQ).map(|_| 100 + rng.below(40_000) as u32).collect(),
            prompt_len: PROMPT,
            reference: None,
        })
        .collect();
    let spec = AdapterSpec::builtin("lora", &adapter).expect("lora");
    let mut t = GenerationTrainer::new(
        0,
        base,
        &spec,
        &adapter,
        &training,
        data.clone(),
        data,
        1,
        Box::new(|_: &[u32]| None),
        0,
        1_000_000,
    )
    .expect("trainer");
    t.configure(&Strategy::fedsa()).expect("configure");
    t
}

fn decoder_step(c: &mut Criterion) {
    let mut trainer = trainer();
    let mut round = 0;
    let mut group = c.benchmark_group("decoder_step");
    group.bench_function(format!("{BATCH}x{SEQ}"), |b| {
        b.iter(|| {
            round += 1;
            black_box(trainer.train(round).expect("train"))
        });
    });
    group.finish();
}

criterion_group!(benches, decoder_step);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    common::print_peak("decoder step");
}
