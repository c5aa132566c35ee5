//! Tokenisation for causal language models, on a tiny byte-level BPE vocabulary built here: the
//! prompt's length, round trips through decode, the truncation rule, the GGUF-style builder
//! agreeing with a `tokenizer.json` of the same vocabulary, and clear errors for unsupported
//! vocabularies.

use std::path::{Path, PathBuf};

use fedsa_core::{Error, SequenceBatch};
use fedsa_data::{CausalOptions, CausalTokenizer, Example, GgufVocab, PromptTemplate, fit};
use serde_json::json;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;

const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// Merges in priority order; each result becomes a token. `1 2` lets a plain GPT-2 split join
/// the digits of `12`, which a digit-splitting one (`smollm`) never does.
const MERGES: [&str; 22] = [
    "Q u",
    "Qu e",
    "Que s",
    "Ques t",
    "Quest i",
    "Questi o",
    "Questio n",
    "A n",
    "An s",
    "Ans w",
    "Answ e",
    "Answe r",
    "Ġ t",
    "h e",
    "Ġt he",
    "Ġ a",
    "Ġa n",
    "Ġ =",
    "i s",
    "Ġ is",
    "1 2",
    "Ġ 1",
];

/// SmolLM2's layout in miniature: control tokens first, then the 256 byte-level characters,
/// then one token per merge.
fn vocab(pre: Option<&str>) -> GgufVocab {
    let mut alphabet: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    alphabet.sort_unstable();
    let mut tokens: Vec<String> = SPECIALS.iter().map(|s| (*s).to_string()).collect();
    tokens.extend(alphabet.iter().map(char::to_string));
    tokens.extend(MERGES.iter().map(|m| m.replace(' ', "")));
    let mut token_types = vec![1; tokens.len()];
    token_types[..SPECIALS.len()].fill(3);
    GgufVocab {
        model: "gpt2".into(),
        pre: pre.map(str::to_string),
        tokens,
        merges: MERGES.iter().map(|m| (*m).to_string()).collect(),
        token_types,
        bos_id: Some(1),
        eos_id: Some(2),
        pad_id: Some(2),
        add_bos: false,
    }
}

fn options(max_length: usize) -> CausalOptions {
    CausalOptions::new(max_length)
}

fn gguf(v: &GgufVocab, max_length: usize) -> CausalTokenizer {
    CausalTokenizer::from_gguf_vocab(v, Path::new("tiny.gguf"), &options(max_length)).unwrap()
}

fn example(prompt: &str, response: &str) -> Example {
    Example {
        text: prompt.into(),
        text_pair: Some(response.into()),
        label: 0,
        key: None,
    }
}

/// The same vocabulary as a `tokenizer.json`, laid out as SmolLM2's own file is.
fn write_tokenizer_json(dir: &Path, v: &GgufVocab) -> PathBuf {
    let vocab: serde_json::Map<String, serde_json::Value> = v
        .tokens
        .iter()
        .enumerate()
        .map(|(id, t)| (t.clone(), json!(id)))
        .collect();
    let added: Vec<serde_json::Value> = SPECIALS
        .iter()
        .enumerate()
        .map(|(id, t)| {
            json!({"id": id, "content": t, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false,
                            "trim_offsets": true, "use_regex": true});
    let file = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": true,
                           "trim_offsets": false, "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                    "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": v.merges},
    });
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    path
}

#[test]
fn prompt_len_decode_and_reference() {
    let tok = gguf(&vocab(Some("smollm")), 512);
    let ex = example(
        "Ava has 12 apples and gets 30 more. How many?",
        "12 + 30 = 42 apples.\n#### 42",
    );
    let seq = tok.encode(&ex).unwrap();
    let prompt_text = "Question: Ava has 12 apples and gets 30 more. How many?\nAnswer:";
    assert_eq!(tok.decode(seq.prompt()).unwrap(), prompt_text);
    assert_eq!(
        tok.decode(&seq.input_ids[seq.prompt_len..]).unwrap(),
        " 12 + 30 = 42 apples.\n#### 42"
    );
    assert_eq!(seq.input_ids.last(), Some(&tok.eos_id()));
    assert_eq!(seq.input_ids.iter().filter(|&&i| i == 2).count(), 1);
    // The whole sequence reads back as prompt then response; EOS is left out.
    assert_eq!(
        tok.decode(&seq.input_ids).unwrap(),
        format!("{prompt_text} 12 + 30 = 42 apples.\n#### 42")
    );
    assert_eq!(seq.reference.as_deref(), Some("42"));
    // The prompt's tokens are exactly those generation starts from.
    let alone = tok.encode_prompt(&ex.text).unwrap();
    assert_eq!(alone.input_ids, seq.prompt());
    assert_eq!(alone.prompt_len, alone.input_ids.len());
    assert_eq!(alone.reference, None);
    // Merges apply (`Question` is one token) and control tokens are never split.
    let question = tok.tokenizer().token_to_id("Question").unwrap();
    assert_eq!(seq.input_ids[0], question);
    let chat = tok.encode_prompt("<|im_start|>hi").unwrap();
    assert!(chat.input_ids.contains(&1), "{:?}", chat.input_ids);
    // Batched encoding agrees with one at a time, and batches pad with the pad id.
    let other = example("Zoe had 9 cards.", "#### 9");
    let all = tok.encode_all(&[ex.clone(), other.clone()]).unwrap();
    assert_eq!(all, [seq.clone(), tok.encode(&other).unwrap()]);
    let batch = SequenceBatch::pad(&[&all[0], &all[1]], tok.pad_id());
    assert_eq!(batch.seq_len, all[0].input_ids.len());
    assert_eq!(
        batch.num_targets(),
        all[0].num_targets() + all[1].num_targets()
    );
    // An example without a response is refused, not silently given nothing to learn.
    let mut bare = ex;
    bare.text_pair = None;
    assert!(matches!(tok.encode(&bare), Err(Error::Model { .. })));
}

#[test]
fn round_trips_text_with_unicode_digits_and_whitespace() {
    for pre in [None, Some("smollm")] {
        let tok = gguf(&vocab(pre), 4096);
        for text in [
            "Plain words, and is the an.",
            "Numbers: 12, 1,200 and -3.5; 123456789",
            "  leading spaces\n\ttabs\n\nnewlines  ",
            "Unicode: café, naïve, 東京, emoji 🎉",
        ] {
            let seq = tok.encode(&example(text, text)).unwrap();
            let back = tok.decode(&seq.input_ids).unwrap();
            assert_eq!(back, format!("Question: {text}\nAnswer: {text}"), "{pre:?}");
        }
    }
}

#[test]
fn the_pre_tokenizer_flavour_decides_how_digits_split() {
    let gpt2 = gguf(&vocab(None), 64);
    let smollm = gguf(&vocab(Some("smollm")), 64);
    let twelve = gpt2.tokenizer().token_to_id("12").unwrap();
    let ids = |t: &CausalTokenizer| t.encode_prompt("12").unwrap().input_ids;
    assert!(ids(&gpt2).contains(&twelve));
    assert!(!ids(&smollm).contains(&twelve));
}

#[test]
fn truncation_keeps_the_prompts_end_and_the_responses_start() {
    let long = gguf(&vocab(Some("smollm")), 4096);
    let prompt = "Ava has 12 apples and Liam has 30 more than she has. How many?";
    let response = "Liam has 12 + 30 = 42.\nSo together 12 + 42 = 54.\n#### 54";
    let full = long.encode(&example(prompt, response)).unwrap();
    let (p, r) = (full.prompt_len, full.input_ids.len() - full.prompt_len);
    assert!(p > 20 && r > 20, "prompt {p}, response {r} tokens");

    for max in [p + r, p + r - 1, 24, 17, 3, 2] {
        let tok = gguf(&vocab(Some("smollm")), max);
        let seq = tok.encode(&example(prompt, response)).unwrap();
        let (kp, kr) = fit(p, r, max);
        assert!(
            kp + kr <= max && kp >= 1 && kr >= 1,
            "max {max}: {kp} + {kr}"
        );
        assert_eq!(seq.input_ids.len(), kp + kr, "max {max}");
        assert_eq!(seq.prompt_len, kp, "max {max}");
        // The prompt's last tokens, then the response's first ones.
        assert_eq!(seq.prompt(), &full.input_ids[p - kp..p], "max {max}");
        assert_eq!(
            &seq.input_ids[kp..],
            &full.input_ids[p..p + kr],
            "max {max}"
        );
        // A cut response has no EOS; the reference still comes from the whole response.
        assert_eq!(
            seq.input_ids.last() == Some(&tok.eos_id()),
            kr == r,
            "max {max}"
        );
        assert_eq!(seq.reference.as_deref(), Some("54"));
    }
    // The prompt keeps the cue the response follows.
    let tok = gguf(&vocab(Some("smollm")), 24);
    let seq = tok.encode(&example(prompt, response)).unwrap();
    assert!(
        tok.decode(seq.prompt())
            .unwrap()
            .ends_with("How many?\nAnswer:")
    );

    // The rule itself: all when it fits; else the response gets what the prompt leaves, but
    // at least half the window when it needs it; the prompt gets the rest.
    assert_eq!(fit(10, 5, 20), (10, 5));
    assert_eq!(fit(10, 30, 20), (10, 10));
    assert_eq!(fit(4, 30, 16), (4, 12));
    assert_eq!(fit(30, 3, 16), (13, 3));
    assert_eq!(fit(30, 30, 16), (8, 8));
    assert_eq!(fit(30, 30, 2), (1, 1));
    assert_eq!(fit(30, 0, 16), (16, 0));
}

#[test]
fn a_bos_survives_truncation_at_the_front() {
    let mut v = vocab(Some("smollm"));
    v.add_bos = true;
    let full = gguf(&v, 4096)
        .encode(&example("one two three four five six seven", "eight nine"))
        .unwrap();
    assert_eq!(full.input_ids[0], 1);
    let seq = gguf(&v, 10)
        .encode(&example("one two three four five six seven", "eight nine"))
        .unwrap();
    let (kp, _) = fit(full.prompt_len, full.input_ids.len() - full.prompt_len, 10);
    assert_eq!(seq.input_ids[0], 1);
    assert_eq!(
        seq.prompt()[1..],
        full.prompt()[full.prompt_len - (kp - 1)..]
    );
    // With a BOS, one token is not enough room for a prompt and a response.
    let err = CausalTokenizer::from_gguf_vocab(&v, Path::new("t.gguf"), &options(2)).unwrap_err();
    assert!(err.to_string().contains("model.max_length"), "{err}");
}

#[test]
fn the_gguf_builder_and_tokenizer_json_agree() {
    let dir = tempfile::tempdir().unwrap();
    let v = vocab(Some("smollm"));
    let path = write_tokenizer_json(dir.path(), &v);
    let mut opts = options(64);
    opts.eos_token = Some("<|im_end|>".into());
    let from_json = CausalTokenizer::from_file(&path, &opts).unwrap();
    let from_gguf = gguf(&v, 64);
    assert_eq!(from_json.eos_id(), from_gguf.eos_id());
    for (prompt, response) in [
        ("Ava has 12 apples and is the one.", "12 + 30 = 42\n#### 42"),
        (
            "<|im_start|>user\nQuestion?<|im_end|>",
            "An answer, then 1,200.",
        ),
        ("  spaced  out  ", "tabs\tand\nnewlines"),
        (
            "A long question that will certainly need cutting at the front, is it not?",
            "And a long answer that will also be cut somewhere after the start of it.",
        ),
    ] {
        let ex = example(prompt, response);
        let a = from_json.encode(&ex).unwrap();
        assert_eq!(a, from_gguf.encode(&ex).unwrap(), "{prompt:?}");
        assert_eq!(
            from_json.decode(&a.input_ids).unwrap(),
            from_gguf.decode(&a.input_ids).unwrap()
        );
    }
    // Without a named EOS the json path finds `<|endoftext|>`.
    let default = CausalTokenizer::from_file(&path, &options(64)).unwrap();
    assert_eq!(default.eos_id(), 0);
    assert_eq!(default.pad_id(), 0);
}

#[test]
fn unsupported_vocabularies_and_bad_settings_are_clear_errors() {
    let message = |v: &GgufVocab| {
        CausalTokenizer::from_gguf_vocab(v, Path::new("m.gguf"), &options(64))
            .unwrap_err()
            .to_string()
    };
    let mut llama = vocab(None);
    llama.model = "llama".into();
    let m = message(&llama);
    assert!(m.contains("m.gguf") && m.contains("SentencePiece"), "{m}");
    let mut other = vocab(None);
    other.model = "bert".into();
    assert!(message(&other).contains("\"bert\""));
    let mut pre = vocab(Some("llama3"));
    pre.model = "gpt2".into();
    assert!(message(&pre).contains("\"llama3\""));
    let mut bad_merge = vocab(None);
    bad_merge.merges.push("abc".into());
    assert!(message(&bad_merge).contains("\"abc\""));
    let mut unknown = vocab(None);
    unknown.merges.push("zz qq".into());
    assert!(message(&unknown).contains("BPE"));
    let mut eos = vocab(None);
    eos.eos_id = Some(100_000);
    assert!(message(&eos).contains("eos_token_id 100000"));
    eos.eos_id = None;
    assert!(message(&eos).contains("end-of-sequence"));
    let mut types = vocab(None);
    types.token_types.pop();
    assert!(message(&types).contains("token types"));

    let mut template = options(64);
    template.template = PromptTemplate {
        prompt: "no placeholder".into(),
        response_prefix: " ".into(),
    };
    let err =
        CausalTokenizer::from_gguf_vocab(&vocab(None), Path::new("m.gguf"), &template).unwrap_err();
    assert!(err.to_string().contains("{prompt}"), "{err}");

    let missing = CausalTokenizer::from_file(Path::new("nowhere/tokenizer.json"), &options(64));
    assert!(matches!(missing, Err(Error::Model { .. })));
}

#[test]
fn a_custom_template_lays_out_prompt_and_response() {
    let mut opts = options(256);
    opts.template = PromptTemplate {
        prompt: "Q: {prompt}\nA:".into(),
        response_prefix: " ".into(),
    };
    let tok = CausalTokenizer::from_gguf_vocab(&vocab(None), Path::new("t.gguf"), &opts).unwrap();
    let seq = tok.encode(&example("2 + 2 {prompt}?", "4")).unwrap();
    assert_eq!(tok.decode(seq.prompt()).unwrap(), "Q: 2 + 2 {prompt}?\nA:");
    assert_eq!(
        tok.decode(&seq.input_ids).unwrap(),
        "Q: 2 + 2 {prompt}?\nA: 4"
    );
    assert_eq!(seq.reference.as_deref(), Some("4"));
}
