//! Finished (or running) run folders read back for the Compare screen: the per-round and
//! per-client lines of `metrics.jsonl`, and the strategy from the saved `config.toml`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use fedsa_core::{ClientRoundRecord, RoundRecord};

/// The curves of one run folder.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCurves {
    /// Shown in legends: the folder's name.
    pub name: String,
    pub path: PathBuf,
    /// `strategy.name` from the folder's `config.toml`, when it can be read.
    pub strategy: Option<String>,
    /// One record per round, in round order.
    pub rounds: Vec<RoundRecord>,
    /// Every client record, in file order.
    pub clients: Vec<ClientRoundRecord>,
}

impl RunCurves {
    /// Mean accuracy of the last evaluated round.
    pub fn final_accuracy(&self) -> Option<f64> {
        self.rounds.iter().rev().find_map(|r| r.mean_accuracy)
    }

    pub fn best_accuracy(&self) -> Option<f64> {
        self.rounds
            .iter()
            .filter_map(|r| r.mean_accuracy)
            .reduce(f64::max)
    }

    pub fn final_loss(&self) -> Option<f64> {
        self.rounds.iter().rev().find_map(|r| r.mean_loss)
    }

    pub fn bytes_up(&self) -> u64 {
        self.rounds.iter().map(|r| r.bytes_up).sum()
    }
}

/// Reads a run folder: `metrics.jsonl` is required, `config.toml` optional.
pub fn load_run(dir: &Path) -> anyhow::Result<RunCurves> {
    let metrics = dir.join("metrics.jsonl");
    let text = fs::read_to_string(&metrics).with_context(|| {
        format!(
            "{}: no readable metrics.jsonl (is it a fedsa run folder?)",
            dir.display()
        )
    })?;
    let (rounds, clients) = parse_metrics(&text, &metrics.display().to_string())?;
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(RunCurves {
        name,
        path: dir.to_path_buf(),
        strategy: read_strategy(&dir.join("config.toml")),
        rounds,
        clients,
    })
}

/// Parses `metrics.jsonl` text. Lines of other kinds are skipped (newer writers may add some);
/// a malformed line is an error naming `source` and the line.
pub fn parse_metrics(
    text: &str,
    source: &str,
) -> anyhow::Result<(Vec<RoundRecord>, Vec<ClientRoundRecord>)> {
    let mut rounds: Vec<RoundRecord> = Vec::new();
    let mut clients = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{source}:{}", i + 1);
        let value: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{}: not JSON", at()))?;
        match value.get("kind").and_then(serde_json::Value::as_str) {
            Some("round") => rounds.push(
                serde_json::from_value(value)
                    .with_context(|| format!("{}: not a round record", at()))?,
            ),
            Some("client") => clients.push(
                serde_json::from_value(value)
                    .with_context(|| format!("{}: not a client record", at()))?,
            ),
            Some(_) => {}
            None => bail!("{}: no \"kind\" field", at()),
        }
    }
    // A resumed run may repeat a round: the later line wins.
    rounds.reverse();
    rounds.sort_by_key(|r| r.round);
    rounds.dedup_by_key(|r| r.round);
    Ok((rounds, clients))
}

fn read_strategy(config: &Path) -> Option<String> {
    let table: toml::Table = fs::read_to_string(config).ok()?.parse().ok()?;
    let name = table.get("strategy")?.get("name")?.as_str()?;
    Some(name.to_string())
}

/// Sub-folders of `dir` that hold a `metrics.jsonl`, sorted by name. A missing `dir` has none.
pub fn find_runs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("metrics.jsonl").is_file())
        .collect();
    found.sort();
    found
}
