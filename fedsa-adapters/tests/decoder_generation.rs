//! Generation: with the KV cache, greedy and seeded top-p decoding give exactly the tokens of a
//! full recompute at every step, with a LoRA adapter whose B is non-zero; EOS stops it.

mod common;
mod decoder_common;

use common::perturb;
use decoder_common::{model, tiny};
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
