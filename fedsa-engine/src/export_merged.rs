//! `export --merged`: a classification client as a Hugging Face folder that transformers loads
//! with no PEFT at all (`AutoModelForSequenceClassification.from_pretrained(folder)`):
//! `config.json` (the base's, with the sequence-classification architecture and the run's
//! labels), `model.safetensors` (f32, the adapter folded into the weights), the base's
//! tokenizer files, and the record of how it was made. Each file is written atomically.

use std::path::Path;

use anyhow::{Context, Result};
use fedsa_core::ParamSet;
use fedsa_core::io::{save_params, write_atomic};

use crate::export::{EXPORT_RECORD, Exported};
use crate::session::ClientSession;

/// The tokenizer files a Hugging Face folder may hold; those the base has are copied.
const TOKENIZER_FILES: [&str; 6] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
];

/// Writes `session`'s merged model into `out`; `record` is the export's record, to which the
/// merged files are added.
pub(crate) fn write_merged(
    out: &Path,
    session: &ClientSession,
    mut record: serde_json::Value,
) -> Result<Exported> {
    let base = &session.config.model.path;
    let mut tensors = ParamSet::new();
    for (name, t) in session.trainer.model().merged_tensors()? {
        let data = t
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .with_context(|| format!("reading merged tensor {name}"))?;
        tensors.insert(name, t.dims().to_vec(), data)?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    save_params(&out.join("model.safetensors"), &tensors)?;
    let config = classification_config(&base.join("config.json"), session)?;
    write_atomic(
        &out.join("config.json"),
        serde_json::to_string_pretty(&config)?.as_bytes(),
    )?;
    let mut copied = Vec::new();
    for file in TOKENIZER_FILES {
        let from = base.join(file);
        if from.is_file() {
            let bytes =
                std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
            write_atomic(&out.join(file), &bytes)?;
            copied.push(file);
        }
    }
    write_atomic(
        &out.join("fedsa_labels.json"),
        serde_json::to_string_pretty(&session.labels)?.as_bytes(),
    )?;
    let bytes = tensors.num_bytes();
    record["kind"] = "merged".into();
    record["merged"] = serde_json::json!({
        "files": ["config.json", "model.safetensors"],
        "tokenizer_files": copied,
        "dtype": "float32",
        "bytes": bytes,
        "note": "the adapter (and any server correction of the frozen weights) is folded into \
                 the weights: load with transformers' \
                 AutoModelForSequenceClassification.from_pretrained(folder), no PEFT needed",
    });
    write_atomic(
        &out.join(EXPORT_RECORD),
        serde_json::to_string_pretty(&record)?.as_bytes(),
    )?;
    Ok(Exported {
        tensors: tensors.len(),
        checkpoint: session.checkpoint.clone(),
    })
}

/// The base's `config.json` as a sequence-classification model of the run's labels.
fn classification_config(path: &Path, session: &ClientSession) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut config: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let architecture = match session.family_prefix {
        "roberta." => "RobertaForSequenceClassification",
        _ => "BertForSequenceClassification",
    };
    let labels = &session.labels;
    config["architectures"] = serde_json::json!([architecture]);
    config["id2label"] = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), serde_json::Value::from(l.clone())))
        .collect::<serde_json::Map<_, _>>()
        .into();
    config["label2id"] = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), serde_json::Value::from(i)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    config["problem_type"] = "single_label_classification".into();
    config["torch_dtype"] = "float32".into();
    Ok(config)
}
