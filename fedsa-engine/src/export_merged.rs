//! `export --merged`: a client as a Hugging Face folder that transformers loads with no PEFT
//! at all: `config.json`, `model.safetensors` (f32, the adapter and any server correction
//! folded into the weights), the base's tokenizer files, and the record of how it was made.
//! Classification clients load with `AutoModelForSequenceClassification`, generation clients
//! with `AutoModelForCausalLM`. Each file is written atomically.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::Tensor;
use fedsa_core::ParamSet;
use fedsa_core::io::{save_params, write_atomic};

use crate::exported::{EXPORT_RECORD, Exported};
use crate::session::{ClientSession, GenerationSession};

/// The tokenizer files a Hugging Face folder may hold; those the base has are copied.
const TOKENIZER_FILES: [&str; 7] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "generation_config.json",
];

/// Writes a classification client's merged model into `out`.
pub(crate) fn write_classification(
    out: &Path,
    session: &ClientSession,
    record: serde_json::Value,
) -> Result<Exported> {
    let base = &session.config.model.path;
    let config = classification_config(&base.join("config.json"), session)?;
    let tensors = session.trainer.model().merged_tensors()?;
    write_atomic_json(&out_dir(out)?.join("fedsa_labels.json"), &session.labels)?;
    let note = "load with transformers' AutoModelForSequenceClassification.from_pretrained(folder), \
                no PEFT needed";
    write_folder(
        out,
        tensors,
        &config,
        Some(base),
        record,
        note,
        &session.checkpoint,
    )
}

/// Writes a generation client's merged model into `out`. A Hugging Face base lends its
/// `config.json` and tokenizer files; a GGUF base has neither, so the config is written from
/// the GGUF's hyper-parameters and the record says where the tokenizer is.
pub(crate) fn write_generation(
    out: &Path,
    session: &GenerationSession,
    mut record: serde_json::Value,
) -> Result<Exported> {
    let model = session.trainer.model();
    let path = &session.config.model.path;
    let (config, tokenizer_from) = if path.is_dir() {
        let file = path.join("config.json");
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let config: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        (config, Some(path.as_path()))
    } else {
        let mut config = serde_json::to_value(model.base().config())?;
        config["architectures"] = serde_json::json!(["LlamaForCausalLM"]);
        record["merged_tokenizer"] = serde_json::json!({
            "note": "the GGUF base ships its tokenizer inside the GGUF: load it with \
                     AutoTokenizer.from_pretrained(base_loader.folder, gguf_file=base_loader.gguf_file)",
        });
        (config, None)
    };
    let mut config = config;
    config["torch_dtype"] = "float32".into();
    let tensors = model.merged_tensors()?;
    let note =
        "load with transformers' AutoModelForCausalLM.from_pretrained(folder), no PEFT needed";
    write_folder(
        out,
        tensors,
        &config,
        tokenizer_from,
        record,
        note,
        &session.checkpoint,
    )
}

fn out_dir(out: &Path) -> Result<&Path> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    Ok(out)
}

fn write_atomic_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, serde_json::to_string_pretty(value)?.as_bytes())?;
    Ok(())
}

/// The weights, config, tokenizer files (from `tokenizer_from`) and record into `out`.
fn write_folder(
    out: &Path,
    merged: Vec<(String, Tensor)>,
    config: &serde_json::Value,
    tokenizer_from: Option<&Path>,
    mut record: serde_json::Value,
    note: &str,
    checkpoint: &Path,
) -> Result<Exported> {
    let mut tensors = ParamSet::new();
    for (name, t) in merged {
        let data = t
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .with_context(|| format!("reading merged tensor {name}"))?;
        tensors.insert(name, t.dims().to_vec(), data)?;
    }
    let out = out_dir(out)?;
    save_params(&out.join("model.safetensors"), &tensors)?;
    write_atomic_json(&out.join("config.json"), config)?;
    let mut copied = Vec::new();
    for file in TOKENIZER_FILES {
        let Some(from) = tokenizer_from.map(|d| d.join(file)) else {
            break;
        };
        if from.is_file() {
            let bytes =
                std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
            write_atomic(&out.join(file), &bytes)?;
            copied.push(file);
        }
    }
    record["kind"] = "merged".into();
    record["merged"] = serde_json::json!({
        "files": ["config.json", "model.safetensors"],
        "tokenizer_files": copied,
        "dtype": "float32",
        "bytes": tensors.num_bytes(),
        "note": format!(
            "the adapter (and any server correction of the frozen weights) is folded into the \
             weights, in Hugging Face layout: {note}"
        ),
    });
    write_atomic_json(&out.join(EXPORT_RECORD), &record)?;
    Ok(Exported {
        tensors: tensors.len(),
        checkpoint: checkpoint.to_path_buf(),
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
