//! Run folders read back for comparison: the one model both `fedsa compare` and the TUI's
//! Compare screen use — each run's rounds, client records and summary — with the figures
//! derived from it (final and best mean accuracy and F1, unweighted and example-weighted,
//! bytes, wall time).
//!
//! A run without `summary.json` (still running, or stopped) is compared on what its metrics
//! hold, and marked incomplete; runs with different client counts are fine.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use fedsa_core::{ClientRoundRecord, MeanFigures, RoundRecord, RunSummary, TaskKind};
use serde::{Deserialize, Serialize};

use crate::run_dir::{MetricLine, RunDir, parse_metric_lines, read_summary, run_name};

/// One run folder's history.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunHistory {
    /// Shown in legends: the folder's name.
    pub name: String,
    pub path: PathBuf,
    /// `strategy.name` from the folder's `config.toml`, when it can be read.
    pub strategy: Option<String>,
    /// `adapter.kind` from the folder's `config.toml`, when it can be read.
    pub adapter: Option<String>,
    /// `federation.num_clients` from the folder's `config.toml`, when it can be read.
    pub num_clients: Option<usize>,
    pub task: TaskKind,
    /// One record per round, in round order (a repeated round keeps its last line).
    pub rounds: Vec<RoundRecord>,
    /// Every client record, in file order.
    pub clients: Vec<ClientRoundRecord>,
    /// The run's own final word, once it has finished.
    pub summary: Option<RunSummary>,
}

/// Reads a run folder for the Compare screen: `metrics.jsonl` is required, `config.toml` and
/// `summary.json` are read when they can be (a folder from another version still shows its
/// curves).
pub fn load_run(dir: &Path) -> Result<RunHistory> {
    let metrics = dir.join("metrics.jsonl");
    let text = fs::read_to_string(&metrics).with_context(|| {
        format!(
            "{}: no readable metrics.jsonl (is it a fedsa run folder?)",
            dir.display()
        )
    })?;
    let lines = parse_metric_lines(&text, &metrics.display().to_string())?;
    let mut history = RunHistory::from_lines(dir, lines);
    history.read_settings(&dir.join("config.toml"));
    history.summary = read_summary(&dir.join("summary.json")).ok().flatten();
    Ok(history)
}

/// Parses `metrics.jsonl` text into its round records (in round order, a repeated round keeping
/// its last line) and its client records (in file order).
pub fn parse_metrics(
    text: &str,
    source: &str,
) -> Result<(Vec<RoundRecord>, Vec<ClientRoundRecord>)> {
    let history = RunHistory::from_lines(Path::new(source), parse_metric_lines(text, source)?);
    Ok((history.rounds, history.clients))
}

impl RunHistory {
    fn from_lines(path: &Path, lines: Vec<MetricLine>) -> RunHistory {
        let mut rounds = Vec::new();
        let mut clients = Vec::new();
        for line in lines {
            match line {
                MetricLine::Round(r) => rounds.push(r),
                MetricLine::Client(c) => clients.push(c),
            }
        }
        // A resumed run may repeat a round: the later line wins.
        rounds.reverse();
        rounds.sort_by_key(|r| r.round);
        rounds.dedup_by_key(|r| r.round);
        RunHistory {
            name: run_name(path),
            path: path.to_path_buf(),
            rounds,
            clients,
            ..RunHistory::default()
        }
    }

    /// The settings shown next to the curves, read from the raw TOML so a config this version
    /// would refuse still names its strategy.
    fn read_settings(&mut self, config: &Path) {
        let Some(table) = fs::read_to_string(config)
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok())
        else {
            return;
        };
        let text =
            |section: &str, key: &str| Some(table.get(section)?.get(key)?.as_str()?.to_string());
        self.strategy = text("strategy", "name");
        self.adapter = text("adapter", "kind");
        self.task = match text("task", "kind").as_deref() {
            Some("generation") => TaskKind::Generation,
            _ => TaskKind::Classification,
        };
        self.num_clients = table
            .get("federation")
            .and_then(|f| f.get("num_clients"))
            .and_then(toml::Value::as_integer)
            .and_then(|n| usize::try_from(n).ok());
    }

    /// Mean accuracy at the end: the summary's, else the last evaluated round's.
    pub fn final_accuracy(&self) -> Option<f64> {
        self.summary
            .as_ref()
            .and_then(|s| s.mean_accuracy)
            .or_else(|| self.rounds.iter().rev().find_map(|r| r.mean_accuracy))
    }

    /// Mean macro-F1 at the end: the summary's, else the last evaluated round's.
    pub fn final_f1(&self) -> Option<f64> {
        self.summary
            .as_ref()
            .and_then(|s| s.mean_f1)
            .or_else(|| self.rounds.iter().rev().find_map(|r| r.mean_f1))
    }

    /// The best round's mean accuracy.
    pub fn best_accuracy(&self) -> Option<f64> {
        self.summary
            .as_ref()
            .and_then(|s| s.best_mean_accuracy)
            .or_else(|| {
                self.rounds
                    .iter()
                    .filter_map(|r| r.mean_accuracy)
                    .reduce(f64::max)
            })
    }

    /// The best round's mean macro-F1.
    pub fn best_f1(&self) -> Option<f64> {
        self.rounds
            .iter()
            .filter_map(|r| r.mean_f1)
            .reduce(f64::max)
    }

    /// The client means, unweighted and example-weighted, at the last and the best round:
    /// the summary's, else (no summary yet, or one written before it had them) computed from
    /// the rounds the same way.
    pub fn means(&self) -> MeanFigures {
        self.summary
            .as_ref()
            .and_then(|s| s.means)
            .unwrap_or_else(|| MeanFigures::from_rounds(&self.rounds))
    }

    /// Mean test loss of the last evaluated round.
    pub fn final_loss(&self) -> Option<f64> {
        self.rounds.iter().rev().find_map(|r| r.mean_loss)
    }

    /// Bytes the clients sent up over the whole run.
    pub fn bytes_up(&self) -> u64 {
        self.summary.as_ref().map_or_else(
            || self.rounds.iter().map(|r| r.bytes_up).sum(),
            |s| s.total_bytes_up,
        )
    }

    /// Bytes the server sent down over the whole run.
    pub fn bytes_down(&self) -> u64 {
        self.summary.as_ref().map_or_else(
            || self.rounds.iter().map(|r| r.bytes_down).sum(),
            |s| s.total_bytes_down,
        )
    }

    /// Wall time: the summary's, else the sum of the rounds' times.
    pub fn seconds(&self) -> f64 {
        self.summary.as_ref().map_or_else(
            || self.rounds.iter().map(|r| r.seconds).sum(),
            |s| s.seconds,
        )
    }

    /// Each client's final accuracy and F1: the summary's, else each client's last evaluation.
    pub fn client_figures(&self) -> Vec<ClientFigures> {
        if let Some(s) = &self.summary {
            return s
                .clients
                .iter()
                .enumerate()
                .map(|(client, e)| ClientFigures {
                    client,
                    accuracy: e.as_ref().map(|e| e.accuracy),
                    macro_f1: e.as_ref().map(|e| e.macro_f1),
                })
                .collect();
        }
        let mut out: Vec<ClientFigures> = (0..self.num_clients.unwrap_or(0))
            .map(|client| ClientFigures {
                client,
                accuracy: None,
                macro_f1: None,
            })
            .collect();
        for c in &self.clients {
            if let (Some(e), Some(slot)) = (&c.eval, out.get_mut(c.client)) {
                slot.accuracy = Some(e.accuracy);
                slot.macro_f1 = Some(e.macro_f1);
            }
        }
        out
    }

    /// The run's row of a comparison.
    pub fn figures(&self) -> RunFigures {
        RunFigures {
            name: self.name.clone(),
            path: self.path.clone(),
            strategy: self.strategy.clone().unwrap_or_default(),
            adapter: self.adapter.clone().unwrap_or_default(),
            accuracy_measure: self.task.accuracy_name().to_string(),
            num_clients: self.num_clients.unwrap_or(0),
            rounds: self.rounds.len(),
            complete: self.summary.is_some(),
            final_accuracy: self.final_accuracy(),
            final_f1: self.final_f1(),
            best_accuracy: self.best_accuracy(),
            best_f1: self.best_f1(),
            means: self.means(),
            bytes_up: self.bytes_up(),
            bytes_down: self.bytes_down(),
            seconds: self.seconds(),
            clients: self.client_figures(),
            curve: self
                .rounds
                .iter()
                .map(|r| RoundPoint {
                    round: r.round,
                    mean_accuracy: r.mean_accuracy,
                    mean_f1: r.mean_f1,
                })
                .collect(),
        }
    }
}

/// One client's final figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientFigures {
    pub client: usize,
    pub accuracy: Option<f64>,
    pub macro_f1: Option<f64>,
}

/// One round's mean figures, for the curves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundPoint {
    pub round: usize,
    pub mean_accuracy: Option<f64>,
    pub mean_f1: Option<f64>,
}

/// A run's row of a comparison, as `fedsa compare` prints it and writes it as JSON: the
/// figures of a [`RunHistory`], computed there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFigures {
    pub name: String,
    pub path: PathBuf,
    pub strategy: String,
    pub adapter: String,
    /// What `accuracy` measures: `accuracy`, or `exact match` for a generation run.
    #[serde(default)]
    pub accuracy_measure: String,
    pub num_clients: usize,
    /// Rounds with metrics.
    pub rounds: usize,
    /// Whether the run finished (has `summary.json`).
    pub complete: bool,
    pub final_accuracy: Option<f64>,
    pub final_f1: Option<f64>,
    pub best_accuracy: Option<f64>,
    pub best_f1: Option<f64>,
    /// Accuracy and macro-F1 client means, unweighted and example-weighted, at the last and
    /// the best round (which round, too). The paper's headline is `accuracy.best`.
    #[serde(default)]
    pub means: MeanFigures,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Wall time of the run (from the summary; the sum of round times when incomplete).
    pub seconds: f64,
    pub clients: Vec<ClientFigures>,
    pub curve: Vec<RoundPoint>,
}

/// Reads one run folder for `fedsa compare`, strictly: the folder must hold a run's
/// `config.toml`, at least one completed round, and a readable summary if it has one.
pub fn run_history(run: &Path) -> Result<RunHistory> {
    let dir = RunDir::open(run)?;
    let config = dir.config()?;
    let mut history = RunHistory::from_lines(run, dir.lines().to_vec());
    if history.rounds.is_empty() {
        bail!("{}: no completed round in metrics.jsonl yet", run.display());
    }
    history.strategy = Some(config.strategy.name.clone());
    history.adapter = Some(config.adapter.kind.clone());
    history.num_clients = Some(config.federation.num_clients);
    history.task = config.task.kind;
    history.summary = dir.summary()?;
    Ok(history)
}

/// Reads every run for `fedsa compare`; the first bad folder is an error naming it.
pub fn compare_runs(runs: &[PathBuf]) -> Result<Vec<RunFigures>> {
    if runs.is_empty() {
        bail!("compare: name at least one run folder");
    }
    runs.iter().map(|r| Ok(run_history(r)?.figures())).collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use fedsa_core::MeanFigure;

    /// A round line as an older version wrote it: no weighted means.
    fn old_line(round: usize, accuracy: Option<f64>, f1: Option<f64>) -> String {
        serde_json::json!({
            "kind": "round", "round": round, "sampled": [0, 1], "succeeded": [0, 1],
            "failed": [], "aggregated": true, "note": null, "mean_accuracy": accuracy,
            "mean_f1": f1, "mean_loss": null, "mean_train_loss": 0.5, "bytes_down": 8,
            "bytes_up": 4, "seconds": 1.0
        })
        .to_string()
    }

    fn old_history() -> RunHistory {
        let text = [
            old_line(1, Some(0.5), Some(0.25)),
            old_line(2, None, None),
            old_line(3, Some(0.75), Some(0.5)),
            old_line(4, Some(0.625), Some(0.5)),
        ]
        .join("\n");
        let lines = parse_metric_lines(&text, "metrics.jsonl").unwrap();
        RunHistory::from_lines(Path::new("runs/old"), lines)
    }

    fn summary(means: Option<MeanFigures>) -> RunSummary {
        RunSummary {
            rounds: 4,
            strategy: "fedsa".into(),
            clients: vec![],
            mean_accuracy: Some(0.625),
            mean_f1: Some(0.5),
            best_mean_accuracy: Some(0.75),
            means,
            total_bytes_down: 32,
            total_bytes_up: 16,
            failures: 0,
            seconds: 4.0,
            failed: None,
        }
    }

    #[test]
    fn old_runs_get_their_means_from_the_rounds_and_no_weighted_figures() {
        let mut history = old_history();
        let expected = MeanFigures {
            last_round: Some(4),
            accuracy: MeanFigure {
                last: Some(0.625),
                best: Some(0.75),
                best_round: Some(3),
            },
            macro_f1: MeanFigure {
                last: Some(0.5),
                best: Some(0.5),
                best_round: Some(3),
            },
            weighted_accuracy: MeanFigure::default(),
            weighted_f1: MeanFigure::default(),
        };
        // No summary yet.
        assert_eq!(history.figures().means, expected);
        // A summary from before the means existed.
        history.summary = Some(summary(None));
        let figures = history.figures();
        assert_eq!(figures.means, expected);
        assert_eq!(figures.means.accuracy.last, figures.final_accuracy);
        assert_eq!(figures.means.accuracy.best, figures.best_accuracy);
        assert_eq!(figures.means.macro_f1.best, figures.best_f1);
        let json = serde_json::to_value(&figures).unwrap();
        assert!(
            json["means"]["weighted_accuracy"]["best"].is_null(),
            "{json}"
        );
        assert_eq!(json["means"]["accuracy"]["best_round"], 3);
    }

    #[test]
    fn a_summarys_own_means_are_the_runs() {
        let mut history = old_history();
        let own = MeanFigures {
            last_round: Some(4),
            weighted_accuracy: MeanFigure {
                last: Some(0.6),
                best: Some(0.7),
                best_round: Some(1),
            },
            ..MeanFigures::default()
        };
        history.summary = Some(summary(Some(own)));
        assert_eq!(history.figures().means, own);
    }
}
