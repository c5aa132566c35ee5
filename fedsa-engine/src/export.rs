//! `export`: a classification client's personalised adapter written in PEFT's layout
//! (`adapter_config.json`, `adapter_model.safetensors`) plus its label names, each file atomically.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use fedsa_adapters::peft::{PeftSource, peft_adapter};
use fedsa_core::ClientTrainer;
use fedsa_core::io::{save_params, write_atomic};

use crate::session::load_client;

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub tensors: usize,
    /// The checkpoint the client was read from.
    pub checkpoint: PathBuf,
}

/// Writes client `client` of the run in `run` into `out` in PEFT's layout. A folder that
/// already holds files is refused unless `force` (then the export's files replace theirs).
pub fn export(run: &Path, client: usize, out: &Path, force: bool) -> Result<Exported> {
    if !force && holds_files(out)? {
        bail!(
            "export: {} is not empty; export into a new or empty folder, or pass --force to \
             overwrite the files there",
            out.display()
        );
    }
    let session = load_client(run, client)?;
    let names: Vec<String> = session.trainer.roles().into_keys().collect();
    let params = session.trainer.params(&names)?;
    let source = PeftSource {
        adapter: &session.config.adapter,
        base_model: session.config.model.path.display().to_string(),
        family_prefix: session.family_prefix,
        seed: session.config.seed,
    };
    let peft = peft_adapter(&source, session.trainer.model().adapters(), params)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    write_atomic(
        &out.join("adapter_config.json"),
        serde_json::to_string_pretty(&peft.config)?.as_bytes(),
    )?;
    save_params(&out.join("adapter_model.safetensors"), &peft.tensors)?;
    write_atomic(
        &out.join("fedsa_labels.json"),
        serde_json::to_string_pretty(&session.labels)?.as_bytes(),
    )?;
    Ok(Exported {
        tensors: peft.tensors.len(),
        checkpoint: session.checkpoint,
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
