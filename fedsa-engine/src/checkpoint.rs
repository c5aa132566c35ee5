//! Checkpoints: after a round, the server's shared state and every client's private state
//! (adapter B, head, optimizer moments, RNG), so `--resume` continues exactly.
//!
//! A checkpoint is written into a temporary folder and renamed into place only when complete;
//! `LATEST` (written atomically) names the last complete one. A crash at any point leaves the
//! previous checkpoint intact, and a failed write removes its temporary folder. Every
//! checkpoint carries `manifest.json`: its round, the run's wall time so far, and a CRC-32 of
//! every file, checked before anything in it is trusted; the round of `LATEST`, of the folder,
//! of the manifest and of `server.json` must agree.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use fedsa_core::io::{params_from_safetensors, params_to_safetensors, write_atomic};
use fedsa_core::{Federation, ParamSet, ServerState};
use serde::{Deserialize, Serialize};

use crate::crash;

/// How many complete checkpoints to keep; older ones are removed.
const KEEP: usize = 2;

/// The manifest's file name inside a checkpoint folder.
pub const MANIFEST: &str = "manifest.json";

/// What a checkpoint holds, written last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The rounds completed when it was written.
    pub round: usize,
    /// The run's wall time up to the checkpoint, across resumes.
    pub seconds: f64,
    /// File name → CRC-32 of its bytes, as 8 hex digits.
    pub files: BTreeMap<String, String>,
}

fn crc(bytes: &[u8]) -> String {
    format!("{:08x}", crc32fast::hash(bytes))
}

/// Writes the checkpoint of `fed` after its last completed round into `dir`; `seconds` is the
/// run's wall time so far.
pub fn save(dir: &Path, fed: &Federation, seconds: f64) -> Result<PathBuf> {
    let round = fed.completed_rounds();
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".round-{round}.partial"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    let written = write_into(&tmp, fed, round, seconds).and_then(|()| {
        crash::point(&format!("checkpoint-{round}-written"));
        let final_dir = dir.join(format!("round-{round}"));
        if final_dir.exists() {
            fs::remove_dir_all(&final_dir)
                .with_context(|| format!("removing {}", final_dir.display()))?;
        }
        fs::rename(&tmp, &final_dir)
            .with_context(|| format!("moving checkpoint into {}", final_dir.display()))?;
        Ok(final_dir)
    });
    let final_dir = match written {
        Ok(d) => d,
        Err(e) => {
            // A full disk must not leave a half-written folder behind; the error says why.
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    crash::point(&format!("checkpoint-{round}-renamed"));
    write_atomic(&dir.join("LATEST"), format!("round-{round}\n").as_bytes())?;
    prune(dir)?;
    crash::point(&format!("checkpoint-{round}-done"));
    Ok(final_dir)
}

/// Writes every file of the checkpoint into `tmp`, the manifest last.
fn write_into(tmp: &Path, fed: &Federation, round: usize, seconds: f64) -> Result<()> {
    fs::create_dir_all(tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut files = BTreeMap::new();
    let mut put = |name: String, bytes: &[u8]| -> Result<()> {
        write_atomic(&tmp.join(&name), bytes)?;
        files.insert(name, crc(bytes));
        Ok(())
    };
    let server = fed.server_state()?;
    put(
        "global.safetensors".into(),
        &params_to_safetensors(&server.global)?,
    )?;
    put(
        "aggregator.safetensors".into(),
        &params_to_safetensors(&server.aggregator)?,
    )?;
    // Only the shared-model mode relays tensors; other runs' checkpoints stay as they were.
    if !server.relay.is_empty() {
        put(RELAY.into(), &params_to_safetensors(&server.relay)?)?;
    }
    put(
        "server.json".into(),
        serde_json::to_string_pretty(&server)?.as_bytes(),
    )?;
    for (k, client) in fed.clients().iter().enumerate() {
        put(
            format!("client-{k}.safetensors"),
            &params_to_safetensors(&client.save_state()?)?,
        )?;
    }
    let manifest = Manifest {
        round,
        seconds,
        files,
    };
    write_atomic(
        &tmp.join(MANIFEST),
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    Ok(())
}

/// Removes the temporary folders of checkpoints whose writing was cut off (a crash): they are
/// never complete, so nothing reads them.
pub fn remove_partials(dir: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.filter_map(std::result::Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".round-") && name.ends_with(".partial") {
            fs::remove_dir_all(entry.path())
                .with_context(|| format!("removing {}", entry.path().display()))?;
        }
    }
    Ok(())
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

/// The rounds of the complete checkpoints in `dir` (`round-N` folders), ascending.
pub fn rounds(dir: &Path) -> Result<Vec<usize>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut rounds = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name();
        if let Some(r) = name
            .to_str()
            .and_then(|n| n.strip_prefix("round-"))
            .and_then(|r| r.parse::<usize>().ok())
            && entry.path().is_dir()
        {
            rounds.push(r);
        }
    }
    rounds.sort_unstable();
    Ok(rounds)
}

/// The checkpoint of round `round` in `dir`, or the last complete one when `None`; a round
/// with no checkpoint is refused with the rounds that have one.
pub fn find(dir: &Path, round: Option<usize>) -> Result<Checkpoint> {
    let (round, path) = match round {
        Some(r) => {
            let path = dir.join(format!("round-{r}"));
            if !path.is_dir() {
                let kept = rounds(dir)?;
                let kept = if kept.is_empty() {
                    "none".to_string()
                } else {
                    kept.iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                bail!(
                    "--round {r}: no checkpoint {} (a run keeps its last {KEEP}; rounds kept: \
                     {kept})",
                    path.display()
                );
            }
            (r, path)
        }
        None => latest(dir)?
            .with_context(|| format!("no complete checkpoint under {}", dir.display()))?,
    };
    Checkpoint::open(&path, round, false)
}

/// The shared-model mode's relayed tensors, in a checkpoint that has them.
const RELAY: &str = "relay.safetensors";

/// A checkpoint folder opened for reading: its manifest, when it has one, checks every file
/// read through it.
pub struct Checkpoint {
    path: PathBuf,
    round: usize,
    manifest: Option<Manifest>,
}

impl Checkpoint {
    /// Opens the checkpoint of round `round` at `path`. `require_manifest` refuses one written
    /// without a manifest (resume needs the checksums; reading an older run's checkpoint for
    /// inference does not).
    pub fn open(path: &Path, round: usize, require_manifest: bool) -> Result<Checkpoint> {
        let file = path.join(MANIFEST);
        let manifest = match fs::read_to_string(&file) {
            Ok(text) => Some(
                serde_json::from_str::<Manifest>(&text)
                    .with_context(|| format!("{}: not a checkpoint manifest", file.display()))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !require_manifest => None,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "reading {} (a checkpoint without it cannot be checked)",
                        file.display()
                    )
                });
            }
        };
        if let Some(m) = &manifest
            && m.round != round
        {
            bail!(
                "{}: the manifest is of round {}, the checkpoint of round {round}",
                file.display(),
                m.round
            );
        }
        Ok(Checkpoint {
            path: path.to_path_buf(),
            round,
            manifest,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn round(&self) -> usize {
        self.round
    }

    /// The run's wall time up to this checkpoint (0 for one written without a manifest).
    pub fn seconds(&self) -> f64 {
        self.manifest.as_ref().map_or(0.0, |m| m.seconds)
    }

    /// The bytes of file `name`, checked against the manifest.
    pub fn read(&self, name: &str) -> Result<Vec<u8>> {
        let file = self.path.join(name);
        let bytes = fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        if let Some(m) = &self.manifest {
            let expected = m.files.get(name).with_context(|| {
                format!(
                    "{}: not listed in the checkpoint's {MANIFEST}",
                    file.display()
                )
            })?;
            let found = crc(&bytes);
            if &found != expected {
                bail!(
                    "{}: damaged (CRC-32 {found}, the checkpoint recorded {expected}); resume \
                     from an earlier checkpoint or rerun",
                    file.display()
                );
            }
        }
        Ok(bytes)
    }

    /// The tensors of file `name`, checked.
    pub fn params(&self, name: &str) -> Result<ParamSet> {
        let bytes = self.read(name)?;
        Ok(params_from_safetensors(&bytes, &self.path.join(name))?)
    }

    /// Client `k`'s private state, checked.
    pub fn client(&self, k: usize) -> Result<ParamSet> {
        self.params(&format!("client-{k}.safetensors"))
    }

    /// Client `k`'s own parameters and state, for opening the client here (analysis,
    /// export, prediction): an error for a client that trained on a remote node, whose state
    /// the checkpoint does not have.
    pub fn local_client(&self, k: usize) -> Result<ParamSet> {
        let state = self.client(k)?;
        if state.contains(fedsa_core::REMOTE_STATE_ROUND) {
            bail!(
                "{}: client {k} trained on a remote node (a Flower run); its adapter, head and \
                 optimizer state stay in that node's state folder, and the server's checkpoint \
                 holds none of them",
                self.path.join(format!("client-{k}.safetensors")).display()
            );
        }
        Ok(state)
    }

    /// The server's state, checked, its round agreeing with the checkpoint's.
    pub fn server(&self) -> Result<ServerState> {
        let file = self.path.join("server.json");
        let bytes = self.read("server.json")?;
        let mut server: ServerState = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a server state", file.display()))?;
        if server.completed_rounds != self.round {
            bail!(
                "{}: completed_rounds is {}, but the checkpoint is of round {}",
                file.display(),
                server.completed_rounds,
                self.round
            );
        }
        server.global = self.params("global.safetensors")?;
        server.aggregator = self.params("aggregator.safetensors")?;
        let listed = self
            .manifest
            .as_ref()
            .is_some_and(|m| m.files.contains_key(RELAY));
        if listed || self.path.join(RELAY).exists() {
            server.relay = self.params(RELAY)?;
        }
        Ok(server)
    }
}

/// Restores `fed` (server and clients) from `checkpoint`.
pub fn restore(checkpoint: &Checkpoint, fed: &mut Federation) -> Result<()> {
    let server = checkpoint.server()?;
    fed.restore_server_state(server)
        .with_context(|| format!("restoring {}", checkpoint.path().display()))?;
    for (k, client) in fed.clients_mut().iter_mut().enumerate() {
        let state = checkpoint.client(k)?;
        client.load_state(&state).with_context(|| {
            format!(
                "restoring {}",
                checkpoint
                    .path()
                    .join(format!("client-{k}.safetensors"))
                    .display()
            )
        })?;
    }
    Ok(())
}

fn prune(dir: &Path) -> Result<()> {
    let rounds = rounds(dir)?;
    let excess = rounds.len().saturating_sub(KEEP);
    for r in rounds.into_iter().take(excess) {
        let path = dir.join(format!("round-{r}"));
        fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}
