//! Tokenisation: the bundled MiniLM tokenizer gives the ids its own `vocab.txt` implies
//! ([CLS] = 101, [SEP] = 102), its baked-in padding and truncation at 128 are replaced, and a
//! tiny tokenizer written here checks the same without the assets.

mod common;

use std::path::Path;

use fedsa_core::{Batch, Error};
use fedsa_data::{Example, TextTokenizer};

fn example(text: &str, pair: Option<&str>, label: u32) -> Example {
    Example {
        text: text.into(),
        text_pair: pair.map(str::to_string),
        label,
        key: None,
    }
}

/// Ids of `tokens` by their line in the model's `vocab.txt` (id = line - 1).
fn vocab_ids(model: &Path, tokens: &[&str]) -> Vec<u32> {
    let vocab = std::fs::read_to_string(model.join("vocab.txt")).unwrap();
    let lines: Vec<&str> = vocab.lines().collect();
    tokens
        .iter()
        .map(|t| {
            lines
                .iter()
                .position(|l| l == t)
                .unwrap_or_else(|| panic!("{t} not in vocab")) as u32
        })
        .collect()
}

#[test]
fn bundled_tokenizer_gives_the_vocabularys_ids() {
    let Some(model) = common::minilm("bundled_tokenizer_gives_the_vocabularys_ids") else {
        return;
    };
    let tok = TextTokenizer::from_file(&model.join("tokenizer.json"), 128).unwrap();
    assert_eq!(tok.pad_id(), vocab_ids(&model, &["[PAD]"])[0]);
    let cases: [(&str, &[&str]); 3] = [
        (
            "The movie was GREAT!",
            &["the", "movie", "was", "great", "!"],
        ),
        (
            "Unwatchable and overacted.",
            &[
                "un", "##watch", "##able", "and", "over", "##act", "##ed", ".",
            ],
        ),
        (
            "Schwarzenegger, fedsa",
            &["schwarz", "##ene", "##gger", ",", "fed", "##sa"],
        ),
    ];
    for (text, tokens) in cases {
        let e = tok.encode(&example(text, None, 1)).unwrap();
        let mut want = vec![101];
        want.extend(vocab_ids(&model, tokens));
        want.push(102);
        assert_eq!(e.input_ids, want, "{text}");
        assert_eq!(vocab_ids(&model, &["[CLS]", "[SEP]"]), [101, 102]);
        assert_eq!(e.type_ids, vec![0; want.len()]);
        assert_eq!(e.label, 1);
    }
}

#[test]
fn bundled_tokenizer_pairs_truncation_and_no_baked_padding() {
    let Some(model) = common::minilm("bundled_tokenizer_pairs_truncation_and_no_baked_padding")
    else {
        return;
    };
    let tok = TextTokenizer::from_file(&model.join("tokenizer.json"), 16).unwrap();
    let e = tok
        .encode(&example("the movie", Some("was great"), 0))
        .unwrap();
    let mut want = vec![101];
    want.extend(vocab_ids(&model, &["the", "movie"]));
    want.push(102);
    want.extend(vocab_ids(&model, &["was", "great"]));
    want.push(102);
    assert_eq!(
        e.input_ids, want,
        "short inputs stay unpadded despite the file's padding at 128"
    );
    assert_eq!(e.type_ids, [0, 0, 0, 0, 1, 1, 1]);

    let long = "great ".repeat(300);
    let e = tok.encode(&example(&long, None, 0)).unwrap();
    assert_eq!(e.input_ids.len(), 16);
    assert_eq!((e.input_ids[0], e.input_ids[15]), (101, 102));
    let e = tok.encode(&example(&long, Some("the movie"), 0)).unwrap();
    assert_eq!(
        e.input_ids.len(),
        16,
        "longest-first cuts the long side of a pair"
    );
    assert_eq!(
        &e.input_ids[13..],
        &[
            vocab_ids(&model, &["the"])[0],
            vocab_ids(&model, &["movie"])[0],
            102
        ]
    );

    let wide = TextTokenizer::from_file(&model.join("tokenizer.json"), 512).unwrap();
    assert_eq!(
        wide.encode_text(&long, None).unwrap().input_ids.len(),
        302,
        "the baked-in 128 is lifted"
    );
}

/// A WordPiece tokenizer over a handful of words, with padding and truncation baked in at 16
/// (as the bundled model bakes them in at 128).
fn write_tiny_tokenizer(dir: &Path) -> std::path::PathBuf {
    let vocab = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad", "film", "##s", ".",
    ];
    let map: serde_json::Map<String, serde_json::Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, w)| ((*w).to_string(), serde_json::json!(i)))
        .collect();
    let special = |id: usize, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true})
    };
    let json = serde_json::json!({
        "version": "1.0",
        "truncation": {"max_length": 16, "strategy": "LongestFirst", "stride": 0, "direction": "Right"},
        "padding": {"strategy": {"Fixed": 16}, "direction": "Right", "pad_to_multiple_of": null,
                    "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
        "added_tokens": [special(0, "[PAD]"), special(1, "[UNK]"), special(2, "[CLS]"), special(3, "[SEP]")],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                        "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": null,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                   "max_input_chars_per_word": 100, "vocab": map}
    });
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

#[test]
fn tiny_tokenizer_overrides_baked_padding_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_tiny_tokenizer(dir.path());
    let tok = TextTokenizer::from_file(&path, 6).unwrap();
    let examples = [
        example("Good films.", None, 1),
        example("bad", Some("good"), 0),
        example("good good good good good good good", None, 1),
        example("zzz", None, 0),
    ];
    let encoded = tok.encode_all(&examples).unwrap();
    assert_eq!(encoded[0].input_ids, [2, 4, 6, 7, 8, 3]);
    assert_eq!(encoded[1].input_ids, [2, 5, 3, 4, 3]);
    assert_eq!(encoded[1].type_ids, [0, 0, 0, 1, 1]);
    assert_eq!(encoded[2].input_ids, [2, 4, 4, 4, 4, 3]);
    assert_eq!(encoded[3].input_ids, [2, 1, 3]);
    let one_by_one: Vec<_> = examples.iter().map(|e| tok.encode(e).unwrap()).collect();
    assert_eq!(encoded, one_by_one);
    assert_eq!(
        encoded.iter().map(|e| e.label).collect::<Vec<_>>(),
        [1, 0, 1, 0]
    );

    // Dynamic padding: the batch is as long as its longest example, not the file's 16.
    let refs: Vec<_> = encoded.iter().collect();
    let batch = Batch::pad(&refs, tok.pad_id());
    assert_eq!(batch.seq_len, 6);
    assert_eq!(&batch.input_ids[18..], &[2, 1, 3, 0, 0, 0]);
}

#[test]
fn tokenizer_problems_are_model_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("tokenizer.json");
    let err = TextTokenizer::from_file(&missing, 32).unwrap_err();
    assert!(
        matches!(&err, Error::Model { file, .. } if *file == missing),
        "{err}"
    );
    std::fs::write(&missing, b"{ not json").unwrap();
    let err = TextTokenizer::from_file(&missing, 32).unwrap_err();
    assert!(
        matches!(&err, Error::Model { file, .. } if *file == missing),
        "{err}"
    );
    let path = write_tiny_tokenizer(dir.path());
    let err = TextTokenizer::from_file(&path, 2).unwrap_err();
    assert!(err.to_string().contains("max_length"), "{err}");
}
