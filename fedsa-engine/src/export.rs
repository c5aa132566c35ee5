//! `export`: a client's personalised adapter written in PEFT's layout (`adapter_config.json`,
//! `adapter_model.safetensors`) and how it was made (`fedsa_export.json`), each file
//! atomically. Classification runs also get their label names; generation runs export the
//! decoder's adapter for PEFT's causal-LM loader.

use std::path::Path;

use anyhow::{Context, Result, bail};
use fedsa_adapters::adapter::AdapterSet;
use fedsa_adapters::peft::{CAUSAL_LM, PeftSource, SEQ_CLS, peft_adapter};
use fedsa_core::io::{save_params, write_atomic};
use fedsa_core::{ClientTrainer, Config, ParamSet};

use crate::export_methods::{BASE_DELTA_FILE, base_deltas, stack_personal};
use crate::run_dir::{MetricLine, RunDir};
use crate::session::{load_client, load_generation_client};

pub use crate::exported::{EXPORT_RECORD, Exported};

/// Writes client `client` of the run in `run`, as its checkpoint of round `round` holds it
/// (the last complete one when `None`), into `out` in PEFT's layout, or with `merged` as one
/// Hugging Face model with the adapter folded in (`export_merged`). A folder that already
/// holds files is refused unless `force` (then the export's files replace theirs), and so is
/// a client that had not trained by that round: its adapter would be the common start.
pub fn export(
    run: &Path,
    client: usize,
    round: Option<usize>,
    out: &Path,
    force: bool,
    merged: bool,
) -> Result<Exported> {
    if !force && holds_files(out)? {
        bail!(
            "export: {} is not empty; export into a new or empty folder, or pass --force to \
             overwrite the files there",
            out.display()
        );
    }
    let dir = RunDir::open(run)?;
    if dir.config()?.task.kind.is_generation() {
        let session = load_generation_client(run, client, round)?;
        check_trained(&dir, client, &session.checkpoint)?;
        let mut record = Record::new(run, client, &session.config, &session.checkpoint);
        record.json["prompt_format"] = prompt_format(&session.decoder.tokenizer, &session);
        if merged {
            return crate::export_merged::write_generation(out, &session, record.json);
        }
        let params = trained_params(&session.trainer)?;
        let adapter = session.config.client_adapter(client);
        let source = PeftSource {
            adapter: &adapter,
            base_model: session.config.model.path.display().to_string(),
            // Decoder parameter names already start with Hugging Face's `model.`.
            family_prefix: "",
            task_type: CAUSAL_LM,
            seed: session.config.seed,
        };
        let adapters = session.trainer.model().adapters();
        write_peft(out, &source, adapters, params, &record, &session.checkpoint)
    } else {
        let session = load_client(run, client, round)?;
        check_trained(&dir, client, &session.checkpoint)?;
        if merged {
            let record = Record::new(run, client, &session.config, &session.checkpoint);
            return crate::export_merged::write_classification(out, &session, record.json);
        }
        let params = trained_params(&session.trainer)?;
        let adapter = session.config.client_adapter(client);
        let source = PeftSource {
            adapter: &adapter,
            base_model: session.config.model.path.display().to_string(),
            family_prefix: session.family_prefix,
            task_type: SEQ_CLS,
            seed: session.config.seed,
        };
        let adapters = session.trainer.model().adapters();
        let record = Record::new(run, client, &session.config, &session.checkpoint);
        let exported = write_peft(out, &source, adapters, params, &record, &session.checkpoint)?;
        write_atomic(
            &out.join("fedsa_labels.json"),
            serde_json::to_string_pretty(&session.labels)?.as_bytes(),
        )?;
        Ok(exported)
    }
}

/// How the client reads a prompt, so that a loader can feed it the same tokens: the template
/// (`{prompt}` where the prompt goes), the BOS token placed before it (if any) and the ids that
/// end a response.
fn prompt_format(
    tokenizer: &fedsa_data::CausalTokenizer,
    session: &crate::session::GenerationSession,
) -> serde_json::Value {
    let template = tokenizer.template();
    let mut stop = vec![tokenizer.eos_id()];
    stop.extend(session.decoder.base.config().eos_ids());
    stop.dedup();
    serde_json::json!({
        "template": template.prompt,
        "response_prefix": template.response_prefix,
        "bos_token_id": tokenizer.bos_id(),
        "stop_token_ids": stop,
        "max_new_tokens": session.config.task.max_new_tokens,
    })
}

/// Refuses client `client` when the run's records show no local training of it up to the
/// round of `checkpoint` (with sampling, a client may never be picked).
fn check_trained(dir: &RunDir, client: usize, checkpoint: &Path) -> Result<()> {
    let round = round_of(checkpoint).unwrap_or(usize::MAX);
    let trained = dir.lines().iter().any(|line| {
        matches!(line, MetricLine::Client(c)
            if c.client == client && c.round <= round && c.train.is_some())
    });
    if !trained {
        bail!(
            "export: client {client} did not train in rounds 1..={round} (never sampled, or it \
             failed each time), so its adapter is the common initial one; export a client that \
             trained, or a later round with --round"
        );
    }
    Ok(())
}

/// The round a `round-N` checkpoint folder holds.
fn round_of(checkpoint: &Path) -> Option<usize> {
    checkpoint
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("round-"))
        .and_then(|n| n.parse::<usize>().ok())
}

/// Every tensor the client's trainer holds (adapter and, for classifiers, head).
fn trained_params(trainer: &dyn ClientTrainer) -> Result<ParamSet> {
    let names: Vec<String> = trainer.roles().into_keys().collect();
    Ok(trainer.params(&names)?)
}

/// How an export was made, written beside its weights so that a folder found later says
/// which run, round and client it holds and what a loader must use as base.
struct Record {
    json: serde_json::Value,
}

impl Record {
    fn new(run: &Path, client: usize, config: &Config, checkpoint: &Path) -> Record {
        let round = round_of(checkpoint);
        let base = config.model.path.display().to_string();
        let gguf = config
            .model
            .path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
        // fedsa trained on the GGUF's weights dequantized to f32; a loader must start from the
        // same numbers (transformers: the GGUF's folder with `gguf_file=`, which dequantizes).
        let base_loader = if gguf {
            let path = &config.model.path;
            let folder = path.parent().map(|p| p.display().to_string());
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
            serde_json::json!({
                "format": "gguf",
                "note": "load the base with transformers' from_pretrained(folder, gguf_file=file): \
                         it dequantizes to f32 as fedsa did",
                "folder": folder,
                "gguf_file": file,
            })
        } else {
            serde_json::json!({ "format": "huggingface", "folder": base })
        };
        Record {
            json: serde_json::json!({
                "run": run.display().to_string(),
                "round": round,
                "client": client,
                "task": if config.task.kind.is_generation() { "generation" } else { "classification" },
                "strategy": config.strategy.name,
                "adapter": config.adapter.kind,
                "rank": config.client_adapter(client).rank,
                "alpha": config.adapter.alpha,
                "kind": "peft",
                "base": base,
                "base_loader": base_loader,
                "checkpoint": checkpoint.display().to_string(),
            }),
        }
    }
}

/// Writes the PEFT files and the record into `out`.
fn write_peft(
    out: &Path,
    source: &PeftSource<'_>,
    adapters: &AdapterSet,
    params: ParamSet,
    record: &Record,
    checkpoint: &Path,
) -> Result<Exported> {
    let (params, adapter, personal) = stack_personal(adapters, params, source.adapter)?;
    let source = PeftSource {
        adapter: &adapter,
        base_model: source.base_model.clone(),
        ..*source
    };
    let peft = peft_adapter(&source, adapters, params)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    write_atomic(
        &out.join("adapter_config.json"),
        serde_json::to_string_pretty(&peft.config)?.as_bytes(),
    )?;
    save_params(&out.join("adapter_model.safetensors"), &peft.tensors)?;
    let mut json = record.json.clone();
    if let Some(note) = personal {
        json["personal_adapter"] = note;
    }
    let deltas = base_deltas(adapters, source.family_prefix)?;
    if !deltas.is_empty() {
        save_params(&out.join(BASE_DELTA_FILE), &deltas)?;
        json["base_delta"] = serde_json::json!({
            "file": BASE_DELTA_FILE,
            "note": "the server corrected the frozen weights (FedEx-LoRA's residual, FLoRA's \
                     merged updates): add each tensor to the base weight of the same name \
                     before applying the adapter",
        });
    }
    write_atomic(
        &out.join(EXPORT_RECORD),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    Ok(Exported {
        tensors: peft.tensors.len(),
        checkpoint: checkpoint.to_path_buf(),
    })
}

/// Whether `dir` exists and holds anything (a file where the folder should be counts).
fn holds_files(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(_) if dir.exists() => Ok(true),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(model: &str) -> Config {
        Config::from_toml_str(
            &format!(
                "[task]\nkind = \"generation\"\n[model]\npath = \"{model}\"\n[data]\n\
                 format = \"arithmetic\"\n[federation]\nnum_clients = 2\nclients_per_round = 2\n"
            ),
            "c.toml",
        )
        .unwrap()
    }

    #[test]
    fn a_gguf_base_is_recorded_with_the_loader_that_dequantizes_it() {
        let record = Record::new(
            Path::new("runs/r"),
            1,
            &config("assets/smollm2/SmolLM2.Q4_1.gguf"),
            Path::new("runs/r/checkpoints/round-3"),
        );
        let loader = &record.json["base_loader"];
        assert_eq!(loader["format"], "gguf");
        assert_eq!(loader["folder"], "assets/smollm2");
        assert_eq!(loader["gguf_file"], "SmolLM2.Q4_1.gguf");
        assert!(loader["note"].as_str().unwrap().contains("gguf_file"));
        assert_eq!(record.json["round"], 3);
        assert_eq!(record.json["task"], "generation");
        let hf = Record::new(
            Path::new("runs/r"),
            0,
            &config("models/llama"),
            Path::new("runs/r/checkpoints/round-1"),
        );
        assert_eq!(hf.json["base_loader"]["format"], "huggingface");
        assert_eq!(hf.json["base_loader"]["folder"], "models/llama");
    }
}
