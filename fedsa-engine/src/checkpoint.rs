//! Checkpoints: after a round, the server's shared state and every client's private state
//! (adapter B, head, optimizer moments, RNG), so `--resume` continues exactly.
//!
//! A checkpoint is written into a temporary folder and renamed into place only when complete;
//! `LATEST` (written atomically) names the last complete one. A crash at any point leaves the
//! previous checkpoint intact.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use fedsa_core::io::{load_params, save_params, write_atomic};
use fedsa_core::{Federation, ServerState};

/// How many complete checkpoints to keep; older ones are removed.
const KEEP: usize = 2;

/// Writes the checkpoint of `fed` after its last completed round into `dir`.
pub fn save(dir: &Path, fed: &Federation) -> Result<PathBuf> {
    let round = fed.completed_rounds();
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let final_dir = dir.join(format!("round-{round}"));
    let tmp = dir.join(format!(".round-{round}.partial"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    fs::create_dir_all(&tmp)?;
    let server = fed.server_state()?;
    save_params(&tmp.join("global.safetensors"), &server.global)?;
    save_params(&tmp.join("aggregator.safetensors"), &server.aggregator)?;
    write_atomic(
        &tmp.join("server.json"),
        serde_json::to_string_pretty(&server)?.as_bytes(),
    )?;
    for (k, client) in fed.clients().iter().enumerate() {
        save_params(
            &tmp.join(format!("client-{k}.safetensors")),
            &client.save_state()?,
        )?;
    }
    if final_dir.exists() {
        fs::remove_dir_all(&final_dir)?;
    }
    fs::rename(&tmp, &final_dir)
        .with_context(|| format!("moving checkpoint into {}", final_dir.display()))?;
    write_atomic(&dir.join("LATEST"), format!("round-{round}\n").as_bytes())?;
    prune(dir)?;
    Ok(final_dir)
}

/// The round of the last complete checkpoint in `dir`, if any.
pub fn latest(dir: &Path) -> Result<Option<(usize, PathBuf)>> {
    let marker = dir.join("LATEST");
    let name = match fs::read_to_string(&marker) {
        Ok(t) => t.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", marker.display())),
    };
    let round: usize = name
        .strip_prefix("round-")
        .and_then(|r| r.parse().ok())
        .with_context(|| format!("{}: `{name}` does not name a checkpoint", marker.display()))?;
    let path = dir.join(&name);
    if !path.is_dir() {
        bail!(
            "{} names {}, which is missing",
            marker.display(),
            path.display()
        );
    }
    Ok(Some((round, path)))
}

/// Restores `fed` (server and clients) from the checkpoint folder `path`.
pub fn restore(path: &Path, fed: &mut Federation) -> Result<()> {
    let server_json = path.join("server.json");
    let text = fs::read_to_string(&server_json)
        .with_context(|| format!("reading {}", server_json.display()))?;
    let mut server: ServerState = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a server state", server_json.display()))?;
    server.global = load_params(&path.join("global.safetensors"))?;
    server.aggregator = load_params(&path.join("aggregator.safetensors"))?;
    fed.restore_server_state(server)
        .with_context(|| format!("restoring {}", path.display()))?;
    for (k, client) in fed.clients_mut().iter_mut().enumerate() {
        let file = path.join(format!("client-{k}.safetensors"));
        let state = load_params(&file)?;
        client
            .load_state(&state)
            .with_context(|| format!("restoring {}", file.display()))?;
    }
    Ok(())
}

fn prune(dir: &Path) -> Result<()> {
    let mut rounds: Vec<(usize, PathBuf)> = fs::read_dir(dir)?
        .filter_map(std::result::Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let r = name.strip_prefix("round-")?.parse::<usize>().ok()?;
            Some((r, e.path()))
        })
        .collect();
    rounds.sort();
    let excess = rounds.len().saturating_sub(KEEP);
    for (_, path) in rounds.into_iter().take(excess) {
        fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}
