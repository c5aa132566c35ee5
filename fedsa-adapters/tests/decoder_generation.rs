//! Generation: with the KV cache, greedy and seeded top-p decoding give exactly the tokens of a
//! full recompute at every step, with a LoRA adapter whose B is non-zero; EOS stops it; a
//! left-padded batch of prompts of different lengths gives each prompt's own tokens.

mod common;
mod decoder_common;

use common::perturb;
use decoder_common::{model, tiny};
use fedsa_adapters::adapter::ForwardCtx;
use fedsa_adapters::decoder::KvCache;
use fedsa_adapters::{AdapterSpec, DecoderClient, GenerateOptions, Sampling};

fn client() -> DecoderClient {
    let cfg = decoder_common::adapter("lora", &["q_proj", "k_proj", "v_proj", "down_proj"]);
    let spec = AdapterSpec::builtin("lora", &cfg).unwrap();
    let client = DecoderClient::new(model(&tiny()), &spec, &cfg, 5).unwrap();
    perturb(client.params(), 9);
    client
}

#[test]
fn cached_generation_equals_full_recompute() {
    let client = client();
    let prompt = [1u32, 50, 7, 91];
    for sampling in [
        Sampling::Greedy,
        Sampling::TopP {
            temperature: 0.8,
            top_p: 0.9,
            seed: 3,
        },
    ] {
        let mut options = GenerateOptions {
            max_new_tokens: 24,
            sampling: sampling.clone(),
            stop_ids: vec![],
            use_cache: true,
        };
        let cached = client.generate(&prompt, &options).unwrap();
        options.use_cache = false;
        let full = client.generate(&prompt, &options).unwrap();
        println!("{sampling:?}: {cached:?}");
        assert_eq!(cached.len(), 24);
        assert_eq!(cached, full, "{sampling:?}");
    }
}

#[test]
fn the_adapter_changes_generation_and_eos_stops_it() {
    let adapted = client();
    let cfg = decoder_common::adapter("lora", &["q_proj"]);
    let spec = AdapterSpec::builtin("lora", &cfg).unwrap();
    let plain = DecoderClient::new(adapted.base().clone(), &spec, &cfg, 5).unwrap();
    let prompt = [1u32, 50, 7, 91];
    let options = GenerateOptions::greedy(24, vec![]);
    let a = adapted.generate(&prompt, &options).unwrap();
    let b = plain.generate(&prompt, &options).unwrap();
    assert_ne!(a, b, "a non-zero B must change what is generated");
    let stop = a[3];
    let first = a.iter().position(|&t| t == stop).unwrap();
    let stopped = adapted
        .generate(&prompt, &GenerateOptions::greedy(24, vec![stop]))
        .unwrap();
    assert_eq!(stopped, a[..first]);
}

/// Prompts of 1 to 9 tokens, so that a batch of them is left-padded by up to 8.
fn prompts() -> Vec<Vec<u32>> {
    [1usize, 4, 7, 2, 9, 5, 3]
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            (0..n)
                .map(|j| 3 + ((i * 31 + j * 17) % 120) as u32)
                .collect()
        })
        .collect()
}

fn one_at_a_time(
    client: &DecoderClient,
    prompts: &[Vec<u32>],
    o: &GenerateOptions,
) -> Vec<Vec<u32>> {
    prompts
        .iter()
        .map(|p| client.generate(p, o).unwrap())
        .collect()
}

fn batched(client: &DecoderClient, prompts: &[Vec<u32>], o: &GenerateOptions) -> Vec<Vec<u32>> {
    let refs: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
    client.generate_batch(&refs, o).unwrap()
}

#[test]
fn a_batch_of_prompts_generates_what_each_generates_alone() {
    let client = client();
    let prompts = prompts();
    let free = one_at_a_time(&client, &prompts, &GenerateOptions::greedy(20, vec![]));
    // A stop id that ends some rows early and others not at all, so rows leave the batch at
    // different steps (and the padding columns every remaining row shares are dropped).
    let rows_with = |t: u32| free.iter().filter(|o| o.contains(&t)).count();
    let stop = free
        .iter()
        .flatten()
        .copied()
        .filter(|&t| (2..free.len()).contains(&rows_with(t)))
        .max_by_key(|&t| rows_with(t))
        .expect("a token some outputs share");
    let ends: Vec<Option<usize>> = free
        .iter()
        .map(|o| o.iter().position(|&t| t == stop))
        .collect();
    println!("stop {stop}: ends {ends:?}");
    assert!(ends.iter().any(Option::is_none) && ends.iter().filter(|e| e.is_some()).count() >= 2);
    for sampling in [
        Sampling::Greedy,
        Sampling::TopP {
            temperature: 0.8,
            top_p: 0.9,
            seed: 3,
        },
    ] {
        let options = GenerateOptions {
            max_new_tokens: 20,
            sampling: sampling.clone(),
            stop_ids: vec![stop],
            use_cache: true,
        };
        let alone = one_at_a_time(&client, &prompts, &options);
        assert_eq!(batched(&client, &prompts, &options), alone, "{sampling:?}");
        let lengths: Vec<usize> = alone.iter().map(Vec::len).collect();
        println!("{sampling:?}: lengths {lengths:?}");
        assert!(lengths.iter().min() < lengths.iter().max(), "{lengths:?}");
    }
}

#[test]
fn each_row_of_a_batch_stops_at_the_end_of_its_own_positions() {
    // 12 positions: the 9-token prompt has room for 4 new tokens, the 1-token one for 12.
    let cfg = decoder_common::adapter("lora", &["q_proj", "v_proj"]);
    let spec = AdapterSpec::builtin("lora", &cfg).unwrap();
    let short = fedsa_adapters::LlamaConfig {
        max_position_embeddings: 12,
        ..tiny()
    };
    let client = DecoderClient::new(model(&short), &spec, &cfg, 5).unwrap();
    perturb(client.params(), 9);
    let prompts = prompts();
    let options = GenerateOptions::greedy(30, vec![]);
    let alone = one_at_a_time(&client, &prompts, &options);
    let lengths: Vec<usize> = alone.iter().map(Vec::len).collect();
    let expected: Vec<usize> = prompts.iter().map(|p| 13 - p.len()).collect();
    assert_eq!(lengths, expected);
    assert_eq!(batched(&client, &prompts, &options), alone);
    // Nothing asked, nothing generated; a prompt longer than the table is refused by index.
    let none = GenerateOptions::greedy(0, vec![]);
    assert!(batched(&client, &prompts, &none).iter().all(Vec::is_empty));
    let long: Vec<u32> = vec![5; 13];
    let err = client
        .generate_batch(&[&prompts[0], &long], &options)
        .unwrap_err()
        .to_string();
    assert!(err.contains("prompt 1 has 13 tokens"), "{err}");
    // A cache made for two rows refuses a batch of one.
    let mut cache = KvCache::left_padded(client.base(), vec![0, 2]);
    let input = client.base().inputs(&[5, 6, 7], None, 1, 3).unwrap();
    let err = client
        .hidden(&input, Some(&mut cache), &mut ForwardCtx::eval())
        .unwrap_err()
        .to_string();
    assert!(err.contains("a batch of 1 rows for a cache of 2"), "{err}");
}
