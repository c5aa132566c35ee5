//! A run on disk: the resolved config, metrics (JSONL and CSV), the summary, and checkpoints;
//! the one writer and the one reader of the run folder's files. Every file is written
//! atomically, so a crash mid-write never leaves a corrupt one.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use fedsa_core::io::write_atomic;
use fedsa_core::{ClientRoundRecord, Config, Error, RoundRecord, RunSummary};
use serde::{Deserialize, Serialize};

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MetricLine {
    Round(RoundRecord),
    Client(ClientRoundRecord),
}

impl MetricLine {
    pub fn round(&self) -> usize {
        match self {
            MetricLine::Round(r) => r.round,
            MetricLine::Client(c) => c.round,
        }
    }
}

/// The folder of one run.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
    lines: Vec<MetricLine>,
}

impl RunDir {
    /// Where `config`'s run lives.
    pub fn path_for(config: &Config) -> PathBuf {
        config.output_dir.join(&config.name)
    }

    /// Creates a new run folder. A previous run is never overwritten: when `output_dir/name`
    /// is taken, the run gets the first free `name-2`, `name-3`, ... and `config.name` follows.
    pub fn create(config: &mut Config) -> Result<RunDir> {
        let base = config.name.clone();
        let mut n = 1;
        while Self::path_for(config).exists() {
            n += 1;
            config.name = format!("{base}-{n}");
        }
        // Failing here is the config's output_dir at fault (a file, a folder not writable):
        // name the field, not only the path.
        let out = &config.output_dir;
        if out.exists() && !out.is_dir() {
            return Err(Error::run_config(
                "output_dir",
                format!("{} is a file, not a folder for runs", out.display()),
            )
            .into());
        }
        let root = Self::path_for(config);
        fs::create_dir_all(&root).map_err(|e| {
            Error::run_config(
                "output_dir",
                format!("creating the run folder {}: {e}", root.display()),
            )
        })?;
        write_atomic(
            &root.join("config.toml"),
            config.to_toml_string()?.as_bytes(),
        )?;
        Ok(RunDir {
            root,
            lines: Vec::new(),
        })
    }

    /// `path` when it holds a run that never finished (a config, no summary).
    pub fn unfinished_at(path: &Path) -> Option<PathBuf> {
        (path.join("config.toml").is_file() && !path.join("summary.json").exists())
            .then(|| path.to_path_buf())
    }

    /// Opens an existing run to resume it, keeping the metrics of rounds up to `completed`.
    pub fn open_for_resume(config: &Config, completed: usize) -> Result<RunDir> {
        let root = Self::path_for(config);
        let lines = read_metrics(&root.join("metrics.jsonl"))?
            .into_iter()
            .filter(|l| l.round() <= completed)
            .collect();
        Ok(RunDir { root, lines })
    }

    /// Opens a finished or running run folder for reading.
    pub fn open(root: &Path) -> Result<RunDir> {
        if !root.join("config.toml").is_file() {
            bail!(
                "{} is not a fedsa run folder (no config.toml)",
                root.display()
            );
        }
        Ok(RunDir {
            root: root.to_path_buf(),
            lines: read_metrics(&root.join("metrics.jsonl"))?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    pub fn lines(&self) -> &[MetricLine] {
        &self.lines
    }

    /// The label names saved with the run, in id order.
    pub fn labels(&self) -> Result<Vec<String>> {
        let path = self.root.join("labels.json");
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a list of labels", path.display()))
    }

    /// The run's summary, once it has finished.
    pub fn summary(&self) -> Result<Option<RunSummary>> {
        read_summary(&self.root.join("summary.json"))
    }

    /// The resolved config saved with the run.
    pub fn config(&self) -> Result<Config> {
        Ok(Config::load(&self.root.join("config.toml"))?)
    }

    /// Writes a JSON file into the run folder.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let text = serde_json::to_string_pretty(value)?;
        write_atomic(&self.root.join(name), text.as_bytes())?;
        Ok(())
    }

    /// Rewrites `metrics.jsonl` and `metrics.csv` from the records kept (on resume: the
    /// rounds up to the checkpoint, so rounds recorded after it are not left behind).
    pub fn rewrite_metrics(&self) -> Result<()> {
        let mut jsonl = String::new();
        for line in &self.lines {
            jsonl.push_str(&serde_json::to_string(line)?);
            jsonl.push('\n');
        }
        write_atomic(&self.root.join("metrics.jsonl"), jsonl.as_bytes())?;
        write_atomic(
            &self.root.join("metrics.csv"),
            metrics_csv(&self.lines).as_bytes(),
        )?;
        Ok(())
    }

    /// Fails unless a file can be created in `dir` (created if missing); leaves nothing.
    pub fn check_writable(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let probe = dir.join(format!(".write-check-{}", std::process::id()));
        fs::write(&probe, b"").with_context(|| format!("writing {}", probe.display()))?;
        fs::remove_file(&probe).with_context(|| format!("removing {}", probe.display()))?;
        Ok(())
    }

    /// Adds a round's records and rewrites `metrics.jsonl` and `metrics.csv`.
    pub fn record_round(
        &mut self,
        round: &RoundRecord,
        clients: &[ClientRoundRecord],
    ) -> Result<()> {
        self.lines.retain(|l| l.round() != round.round);
        self.lines
            .extend(clients.iter().cloned().map(MetricLine::Client));
        self.lines.push(MetricLine::Round(round.clone()));
        self.rewrite_metrics()
    }

    pub fn write_summary(&self, summary: &RunSummary) -> Result<()> {
        self.write_json("summary.json", summary)
    }
}

/// Reads `metrics.jsonl`; a missing file is an empty history.
pub fn read_metrics(path: &Path) -> Result<Vec<MetricLine>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    parse_metric_lines(&text, &path.display().to_string())
}

/// Parses `metrics.jsonl` text, in file order. Lines of kinds this version does not know are
/// skipped (newer writers may add some); a malformed line is an error naming `source` and the
/// line.
pub fn parse_metric_lines(text: &str, source: &str) -> Result<Vec<MetricLine>> {
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{source}:{}", i + 1);
        let value: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{}: not JSON", at()))?;
        match value.get("kind").and_then(serde_json::Value::as_str) {
            Some("round") => lines.push(MetricLine::Round(
                serde_json::from_value(value)
                    .with_context(|| format!("{}: not a round record", at()))?,
            )),
            Some("client") => lines.push(MetricLine::Client(
                serde_json::from_value(value)
                    .with_context(|| format!("{}: not a client record", at()))?,
            )),
            Some(_) => {}
            None => bail!("{}: no \"kind\" field", at()),
        }
    }
    Ok(lines)
}

/// Reads a run's `summary.json`; `None` while the run has not finished.
pub fn read_summary(path: &Path) -> Result<Option<RunSummary>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let summary = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a run summary", path.display()))?;
    Ok(Some(summary))
}

/// A run's display name: its folder's last path component.
pub fn run_name(run: &Path) -> String {
    run.file_name().map_or_else(
        || run.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.6}")).unwrap_or_default()
}

/// One row per client per round and one per round, for spreadsheets.
fn metrics_csv(lines: &[MetricLine]) -> String {
    let mut out = String::from(
        "kind,round,client,sampled,failed,train_loss,eval_loss,accuracy,macro_f1,bytes_down,bytes_up,seconds\n",
    );
    for line in lines {
        let row = match line {
            MetricLine::Client(c) => format!(
                "client,{},{},{},{},{},{},{},{},{},{},{:.3}",
                c.round,
                c.client,
                c.sampled,
                c.failure.is_some(),
                opt(c.train.as_ref().map(|t| t.loss)),
                opt(c.eval.as_ref().map(|e| e.loss)),
                opt(c.eval.as_ref().map(|e| e.accuracy)),
                opt(c.eval.as_ref().map(|e| e.macro_f1)),
                c.bytes_down,
                c.bytes_up,
                c.train_seconds
            ),
            MetricLine::Round(r) => format!(
                "round,{},,{},{},{},{},{},{},{},{},{:.3}",
                r.round,
                r.sampled.len(),
                r.failed.len(),
                opt(r.mean_train_loss),
                opt(r.mean_loss),
                opt(r.mean_accuracy),
                opt(r.mean_f1),
                r.bytes_down,
                r.bytes_up,
                r.seconds
            ),
        };
        out.push_str(&row);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resume rewrites `metrics.jsonl` from what it reads back: every float must survive the
    /// trip exactly (serde_json's `float_roundtrip`), or a resumed run's files drift by a step.
    #[test]
    fn metric_floats_survive_writing_and_reading_exactly() {
        let tricky = [
            0.1 + 0.2,
            1.0 / 3.0,
            0.717_171_717_171_717_2,
            5e-324,
            1e300,
            2.0_f64.sqrt(),
        ];
        for v in tricky {
            let text = serde_json::to_string(&v).unwrap();
            let back: f64 = serde_json::from_str(&text).unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{v} came back as {back}");
        }
        let record = RoundRecord {
            round: 1,
            sampled: vec![0],
            succeeded: vec![0],
            failed: vec![],
            aggregated: true,
            note: None,
            mean_accuracy: Some(tricky[1]),
            mean_f1: Some(tricky[2]),
            mean_loss: Some(tricky[5]),
            mean_train_loss: None,
            weighted_accuracy: None,
            weighted_f1: None,
            privacy: None,
            bytes_down: 1,
            bytes_up: 2,
            seconds: 0.25,
        };
        let line = serde_json::to_string(&MetricLine::Round(record.clone())).unwrap();
        let parsed = parse_metric_lines(&line, "m.jsonl").unwrap();
        assert_eq!(parsed, vec![MetricLine::Round(record)]);
        assert_eq!(serde_json::to_string(&parsed[0]).unwrap(), line);
    }
}
