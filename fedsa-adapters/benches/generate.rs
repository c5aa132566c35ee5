//! Greedy generation with a LoRA client (r = 8 on q/v, as `examples/gen-*.toml`) over a random
//! model of SmolLM2-135M's shape (30 layers, hidden 576, 9 heads sharing 3 key/value heads,
//! intermediate 1536, vocabulary 49152, tied embeddings): 32 new tokens after prompts of 12 to
//! 26 tokens, no stop token, so every call generates exactly `batch × 32` tokens.
//! `generate/batch1` is one prompt; `generate/batch8` eight prompts as one left-padded batch;
//! `generate/batch8_one_by_one` the same eight prompts one call each, as evaluation ran before
//! batching. Before timing, the bench checks that the batch generates each prompt's own tokens.
//! `FEDSA_BENCH_GGUF=$PWD/assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` (absolute: cargo
//! runs benches in the crate folder) runs it on the real
//! weights instead (the same shapes), which makes that check one on a trained model.
//! `benches/peer/generate.sh` compares these with `transformers`' `generate` on the same shapes.
//!
//! Run: `cargo bench -p fedsa-adapters --bench generate -- --warm-up-time 2
//! --measurement-time 20 --sample-size 10`.

use std::hint::black_box;

use candle_core::Device;
use criterion::{Criterion, criterion_group};
use fedsa_adapters::{AdapterSpec, DecoderClient, DecoderModel, GenerateOptions, LlamaConfig};
use fedsa_core::SeededRng;
use fedsa_core::config::AdapterConfig;

mod common;

const NEW_TOKENS: usize = 32;
const PROMPT_LENGTHS: [usize; 8] = [12, 26, 17, 20, 14, 23, 19, 16];

fn smollm2_shaped() -> LlamaConfig {
    LlamaConfig {
        tie_word_embeddings: true,
        rope_theta: 100_000.0,
        ..LlamaConfig::tiny(49_152, 576, 30, 9, 3, 1536)
    }
}

fn client() -> DecoderClient {
    fedsa_adapters::tune_host_runtime();
    let base = match std::env::var_os("FEDSA_BENCH_GGUF") {
        Some(path) => DecoderModel::load_gguf(std::path::Path::new(&path), &Device::Cpu),
        None => DecoderModel::random(&smollm2_shaped(), 0, &Device::Cpu),
    }
    .expect("the model");
    let cfg = AdapterConfig {
        rank: 8,
        alpha: 16.0,
        target_modules: vec!["q_proj".into(), "v_proj".into()],
        ..AdapterConfig::default()
    };
    let spec = AdapterSpec::builtin("lora", &cfg).expect("lora");
    DecoderClient::new(base, &spec, &cfg, 1).expect("client")
}

fn prompts() -> Vec<Vec<u32>> {
    let mut rng = SeededRng::new(2);
    PROMPT_LENGTHS
        .iter()
        .map(|&n| (0..n).map(|_| 100 + rng.below(40_000) as u32).collect())
        .collect()
}

fn generate(c: &mut Criterion) {
    let client = client();
    let prompts = prompts();
    let refs: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
    let options = GenerateOptions::greedy(NEW_TOKENS, vec![]);
    let alone: Vec<Vec<u32>> = refs
        .iter()
        .map(|p| client.generate(p, &options).expect("generate"))
        .collect();
    let batched = client.generate_batch(&refs, &options).expect("batch");
    assert_eq!(
        batched, alone,
        "the batch must generate each prompt's own tokens"
    );
    assert!(alone.iter().all(|g| g.len() == NEW_TOKENS));

    let mut group = c.benchmark_group("generate");
    group.bench_function("batch1", |b| {
        b.iter(|| black_box(client.generate(refs[0], &options).expect("generate")));
    });
    group.bench_function("batch8", |b| {
        b.iter(|| black_box(client.generate_batch(&refs, &options).expect("batch")));
    });
    group.bench_function("batch8_one_by_one", |b| {
        b.iter(|| {
            for p in &refs {
                black_box(client.generate(p, &options).expect("generate"));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, generate);

/// criterion's own `main`, then the process's peak resident set (what `benches/peer/generate.sh`
/// reports next to PyTorch's).
fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    common::print_peak("generate");
}
