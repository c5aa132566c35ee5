//! Generation data on small files written by the tests: GSM8K's layout and instruction JSONL
//! read into prompt/response examples, malformed files reported with file and line (never a
//! panic), and the final-answer extraction used for exact-match evaluation.

mod common;

use std::path::{Path, PathBuf};

use common::{config_error, data_error};
use serde_json::json;

use fedsa_data::{
    GenerationSource, Gsm8kSpec, InstructionSpec, SINGLE_CATEGORY, answer_of, load_generation,
};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A JSON Lines file's text: one object per line.
fn jsonl(objects: &[serde_json::Value]) -> String {
    let mut text = String::new();
    for o in objects {
        text.push_str(&o.to_string());
        text.push('\n');
    }
    text
}

/// One line of a GSM8K-layout file.
fn problem(question: &str, answer: &str) -> String {
    json!({"question": question, "answer": answer}).to_string()
}

fn gsm8k(path: &Path) -> GenerationSource {
    GenerationSource::Gsm8k {
        path: path.to_path_buf(),
        spec: Gsm8kSpec::default(),
    }
}

#[test]
fn gsm8k_reads_questions_and_worked_answers() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        problem(
            "Natalia sold 48 clips in April and half as many in May. How many in all?",
            "In May she sold 48/2 = <<48/2=24>>24 clips.\nIn all 48+24 = <<48+24=72>>72.\n#### 72",
        ),
        String::new(),
        problem("A farm has 1,000 hens.", "It has 1,000.\n#### 1,000") + "\r",
        problem("Temperature drop?", "It fell by 5.\n#### -5"),
    ];
    let path = write(dir.path(), "train.jsonl", &(lines.join("\n") + "\n"));
    let d = load_generation(&gsm8k(&path), None, 1).unwrap();
    assert_eq!(d.label_names, [SINGLE_CATEGORY]);
    assert_eq!(d.source, path);
    assert_eq!(d.examples.len(), 3);
    let first = &d.examples[0];
    assert!(first.text.starts_with("Natalia sold 48 clips"));
    // Calculator annotations are stripped by default.
    assert_eq!(
        first.text_pair.as_deref(),
        Some("In May she sold 48/2 = 24 clips.\nIn all 48+24 = 72.\n#### 72")
    );
    assert!(d.examples.iter().all(|e| e.label == 0 && e.key.is_none()));
    let answers: Vec<Option<String>> = d
        .examples
        .iter()
        .map(|e| answer_of(e.text_pair.as_deref().unwrap()))
        .collect();
    assert_eq!(
        answers,
        [Some("72".into()), Some("1000".into()), Some("-5".into())]
    );

    // Annotations can be kept; a category and a key field can be named.
    let with_fields = write(
        dir.path(),
        "fields.jsonl",
        &jsonl(&[
            json!({"question": "q1", "answer": "<<1+1=2>>2\n#### 2", "level": "easy", "src": 7}),
            json!({"question": "q2", "answer": "#### 3", "level": "hard", "src": 8}),
        ]),
    );
    let spec = Gsm8kSpec {
        category: Some("level".into()),
        key: Some("src".into()),
        strip_calculator: false,
    };
    let d = load_generation(
        &GenerationSource::Gsm8k {
            path: with_fields,
            spec,
        },
        None,
        1,
    )
    .unwrap();
    assert_eq!(d.label_names, ["easy", "hard"]);
    assert_eq!(
        d.examples[0].text_pair.as_deref(),
        Some("<<1+1=2>>2\n#### 2")
    );
    assert_eq!(d.examples[1].label, 1);
    assert_eq!(d.examples[1].key.as_deref(), Some("8"));
}

#[test]
fn gsm8k_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = problem("q", "a\n#### 1");
    let cases: [(&str, String, usize, &str); 8] = [
        (
            "no_marker.jsonl",
            format!("{good}\n{}\n", problem("q", "the answer is 4")),
            2,
            "no final `#### N`",
        ),
        (
            "not_a_number.jsonl",
            format!("{good}\n{good}\n{}\n", problem("q", "#### four")),
            3,
            "N a number",
        ),
        (
            "trailing_text.jsonl",
            format!("{}\n", problem("q", "#### 4 apples")),
            1,
            "N a number",
        ),
        (
            "invalid_json.jsonl",
            format!("{good}\n{{\"question\": \"q\", \"answer\": \n"),
            2,
            "invalid JSON",
        ),
        (
            "missing_field.jsonl",
            format!(
                "{good}\n\n{}\n",
                json!({"question": "q", "solution": "#### 1"})
            ),
            3,
            "missing field `answer`",
        ),
        (
            "wrong_type.jsonl",
            format!("{}\n", json!({"question": "q", "answer": 4})),
            1,
            "must be a string",
        ),
        (
            "empty_question.jsonl",
            format!("{}\n", problem("  ", "#### 4")),
            1,
            "empty `question`",
        ),
        ("empty.jsonl", "\n  \n".to_string(), 1, "empty"),
    ];
    for (name, text, line, needle) in cases {
        let path = write(dir.path(), name, &text);
        let (file, got_line, message) = data_error(load_generation(&gsm8k(&path), None, 1));
        assert_eq!(file, path, "{name}");
        assert_eq!(got_line, line, "{name}: {message}");
        assert!(message.contains(needle), "{name}: {message}");
    }
    let bad_utf8 = dir.path().join("bad_utf8.jsonl");
    std::fs::write(
        &bad_utf8,
        format!("{good}\n")
            .into_bytes()
            .into_iter()
            .chain(*b"\xff\n")
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let (file, line, message) = data_error(load_generation(&gsm8k(&bad_utf8), None, 1));
    assert_eq!((file, line), (bad_utf8, 2));
    assert!(message.contains("invalid UTF-8"), "{message}");
    let missing = dir.path().join("absent.jsonl");
    let err = load_generation(&gsm8k(&missing), None, 1).unwrap_err();
    assert!(err.to_string().contains("absent.jsonl"), "{err}");
}

#[test]
fn instruction_jsonl_with_default_and_custom_field_names() {
    let dir = tempfile::tempdir().unwrap();
    let plain = write(
        dir.path(),
        "plain.jsonl",
        &jsonl(&[
            json!({"prompt": "Add 2 and 3.", "completion": "2 + 3 = 5\n#### 5"}),
            json!({"prompt": "Say hi.", "completion": "Hi!"}),
        ]),
    );
    let d = load_generation(
        &GenerationSource::Instruction {
            path: plain,
            spec: InstructionSpec::default(),
        },
        None,
        1,
    )
    .unwrap();
    assert_eq!(d.label_names, ["all"]);
    assert_eq!(d.examples[0].text, "Add 2 and 3.");
    assert_eq!(
        d.examples[0].text_pair.as_deref(),
        Some("2 + 3 = 5\n#### 5")
    );

    let alpaca = write(
        dir.path(),
        "alpaca.jsonl",
        &jsonl(&[
            json!({"instruction": "Translate.", "input": "bonjour", "output": "hello",
                   "topic": "lang", "user": "u1"}),
            json!({"instruction": "Double 4.", "input": "", "output": "8", "topic": "math",
                   "user": "u2"}),
            json!({"instruction": "Halve 8.", "input": "", "output": "4", "topic": "math",
                   "user": "u2"}),
        ]),
    );
    let spec = InstructionSpec {
        category: Some("topic".into()),
        key: Some("user".into()),
        ..InstructionSpec::alpaca()
    };
    let source = GenerationSource::Instruction {
        path: alpaca.clone(),
        spec: spec.clone(),
    };
    let d = load_generation(&source, None, 1).unwrap();
    assert_eq!(d.label_names, ["lang", "math"]);
    assert_eq!(d.examples[0].text, "Translate.\n\nbonjour");
    assert_eq!(d.examples[1].text, "Double 4.");
    assert_eq!(d.label_counts(), [1, 2]);
    assert_eq!(d.examples[2].key.as_deref(), Some("u2"));
    // A seeded cap keeps file order.
    let capped = load_generation(&source, Some(2), 9).unwrap();
    assert_eq!(capped.examples.len(), 2);
    assert_eq!(capped.label_names, ["lang", "math"]);

    // Field names that are not there, and empty responses, name the line.
    let (file, line, message) = data_error(load_generation(
        &GenerationSource::Instruction {
            path: alpaca.clone(),
            spec: InstructionSpec::default(),
        },
        None,
        1,
    ));
    assert_eq!((file, line), (alpaca, 1));
    assert!(message.contains("missing field `prompt`"), "{message}");
    let empty = write(
        dir.path(),
        "empty_completion.jsonl",
        &jsonl(&[
            json!({"prompt": "p", "completion": "ok"}),
            json!({"prompt": "p", "completion": ""}),
        ]),
    );
    let (_, line, message) = data_error(load_generation(
        &GenerationSource::Instruction {
            path: empty,
            spec: InstructionSpec::default(),
        },
        None,
        1,
    ));
    assert_eq!(line, 2);
    assert!(message.contains("empty field `completion`"), "{message}");
}

#[test]
fn arithmetic_count_zero_is_a_config_error() {
    let (field, _) = config_error(load_generation(
        &GenerationSource::Arithmetic(fedsa_data::ArithmeticSpec { count: 0, seed: 1 }),
        None,
        1,
    ));
    assert_eq!(field, "data.max_examples");
}

#[test]
fn answer_of_takes_the_marked_or_last_number_normalised() {
    let cases: [(&str, Option<&str>); 20] = [
        ("She has 3 + 4 = 7 apples.\n#### 7", Some("7")),
        ("#### 1,000", Some("1000")),
        ("#### 1,234,567", Some("1234567")),
        ("#### -5", Some("-5")),
        ("#### +12", Some("12")),
        ("#### 3.0", Some("3")),
        ("#### 2.50", Some("2.5")),
        ("#### $18.", Some("18")),
        // The last marker wins; text after the number does not matter.
        ("#### 1\nno wait\n#### 2 dollars", Some("2")),
        // Nothing numeric after the marker (a cut-off generation): the last number overall.
        ("5 * 4 = 20\n####", Some("20")),
        // No marker: the last number in the text.
        ("So the answer is 42.", Some("42")),
        ("It costs 1,500 dollars, then 3 more.", Some("3")),
        ("The result is -0.0", Some("0")),
        ("5-3", Some("3")),
        ("x = -3", Some("-3")),
        ("7 minus 3 is 4, so 4.", Some("4")),
        // Digits glued to letters are not numbers.
        ("the R2D2 droid", None),
        ("no numbers here", None),
        ("", None),
        ("3,14 is not pi's spelling", Some("14")),
    ];
    for (text, want) in cases {
        assert_eq!(answer_of(text).as_deref(), want, "{text:?}");
    }
}

/// A run's `[data]` table reaches the generation readers through `load_dataset`: the fields of
/// instruction data come from `text_column` / `text_pair_column`, the generator's count from
/// `max_examples`.
#[test]
fn load_dataset_routes_generation_formats() {
    use fedsa_core::config::DataFormat;

    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "i.jsonl",
        "{\"q\": \"two plus two\", \"a\": \"4\", \"t\": \"sum\"}\n{\"q\": \"three\", \"a\": \"3\", \"t\": \"id\"}\n",
    );
    let mut cfg = common::data_config(DataFormat::Instruction, &path);
    cfg.text_column = Some("q".into());
    cfg.text_pair_column = Some("a".into());
    cfg.label_column = Some("t".into());
    let d = fedsa_data::load_dataset(&cfg, None, 1).unwrap();
    assert_eq!(d.label_names, ["id", "sum"]);
    assert_eq!(d.examples[0].text, "two plus two");
    assert_eq!(d.examples[0].text_pair.as_deref(), Some("4"));

    let mut cfg = common::data_config(DataFormat::Arithmetic, Path::new(""));
    cfg.max_examples = Some(40);
    let d = fedsa_data::load_dataset(&cfg, None, 7).unwrap();
    assert_eq!(d.examples.len(), 40);
    assert!(d.examples.iter().all(|e| {
        let response = e.text_pair.as_deref().unwrap();
        answer_of(response).is_some() && response.contains("####")
    }));
}
