//! `fedsa compare RUN...`: several run folders side by side — final and best mean client
//! accuracy and F1, each client's final figures, bytes communicated and wall time — read from
//! each run's `summary.json` and `metrics.jsonl`.
//!
//! A run without `summary.json` (still running, or stopped) is compared on what its metrics
//! hold, and marked incomplete; runs with different client counts are fine, the per-client
//! table just has gaps.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use fedsa_core::{RoundRecord, RunSummary, TaskKind};
use serde::{Deserialize, Serialize};

use crate::analyze::run_name;
use crate::run_dir::{MetricLine, RunDir};

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

/// One run's row of the comparison.
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
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Wall time of the run (from the summary; the sum of round times when incomplete).
    pub seconds: f64,
    pub clients: Vec<ClientFigures>,
    pub curve: Vec<RoundPoint>,
}

/// Reads one run folder's figures.
pub fn run_figures(run: &Path) -> Result<RunFigures> {
    let dir = RunDir::open(run)?;
    let config = dir.config()?;
    let mut rounds: Vec<RoundRecord> = dir
        .lines()
        .iter()
        .filter_map(|l| match l {
            MetricLine::Round(r) => Some(r.clone()),
            MetricLine::Client(_) => None,
        })
        .collect();
    // A resumed run may repeat a round: the later line wins.
    rounds.reverse();
    rounds.sort_by_key(|r| r.round);
    rounds.dedup_by_key(|r| r.round);
    if rounds.is_empty() {
        bail!("{}: no completed round in metrics.jsonl yet", run.display());
    }
    let summary = read_summary(&run.join("summary.json"))?;
    let best = |f: fn(&RoundRecord) -> Option<f64>| rounds.iter().filter_map(f).reduce(f64::max);
    let last = |f: fn(&RoundRecord) -> Option<f64>| rounds.iter().rev().find_map(f);
    let curve = rounds
        .iter()
        .map(|r| RoundPoint {
            round: r.round,
            mean_accuracy: r.mean_accuracy,
            mean_f1: r.mean_f1,
        })
        .collect();
    let mut figures = RunFigures {
        name: run_name(run),
        path: run.to_path_buf(),
        strategy: config.strategy.name.clone(),
        adapter: config.adapter.kind.clone(),
        accuracy_measure: config.task.kind.accuracy_name().to_string(),
        num_clients: config.federation.num_clients,
        rounds: rounds.len(),
        complete: summary.is_some(),
        final_accuracy: last(|r| r.mean_accuracy),
        final_f1: last(|r| r.mean_f1),
        best_accuracy: best(|r| r.mean_accuracy),
        best_f1: best(|r| r.mean_f1),
        bytes_up: rounds.iter().map(|r| r.bytes_up).sum(),
        bytes_down: rounds.iter().map(|r| r.bytes_down).sum(),
        seconds: rounds.iter().map(|r| r.seconds).sum(),
        clients: last_client_figures(dir.lines(), config.federation.num_clients),
        curve,
    };
    if let Some(s) = summary {
        // The summary is the run's own final word: prefer it where it speaks.
        figures.final_accuracy = s.mean_accuracy.or(figures.final_accuracy);
        figures.final_f1 = s.mean_f1.or(figures.final_f1);
        figures.best_accuracy = s.best_mean_accuracy.or(figures.best_accuracy);
        figures.bytes_up = s.total_bytes_up;
        figures.bytes_down = s.total_bytes_down;
        figures.seconds = s.seconds;
        figures.clients = s
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
    Ok(figures)
}

fn read_summary(path: &Path) -> Result<Option<RunSummary>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let summary = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a run summary", path.display()))?;
    Ok(Some(summary))
}

/// Each client's last evaluation in the metrics, for runs without a summary.
fn last_client_figures(lines: &[MetricLine], num_clients: usize) -> Vec<ClientFigures> {
    let mut out: Vec<ClientFigures> = (0..num_clients)
        .map(|client| ClientFigures {
            client,
            accuracy: None,
            macro_f1: None,
        })
        .collect();
    for line in lines {
        if let MetricLine::Client(c) = line
            && let (Some(e), Some(slot)) = (&c.eval, out.get_mut(c.client))
        {
            slot.accuracy = Some(e.accuracy);
            slot.macro_f1 = Some(e.macro_f1);
        }
    }
    out
}

/// Reads every run; the first bad folder is an error naming it.
pub fn compare_runs(runs: &[PathBuf]) -> Result<Vec<RunFigures>> {
    if runs.is_empty() {
        bail!("compare: name at least one run folder");
    }
    runs.iter().map(|r| run_figures(r)).collect()
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{:.1}", 100.0 * v))
}

/// Bytes as B, KiB, MiB or GiB.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The comparison as plain-text tables: the headline figures, then each client's final ones.
pub fn table(runs: &[RunFigures]) -> String {
    let mut out = String::new();
    let w = runs.iter().map(|r| r.name.len()).max().unwrap_or(3).max(3);
    let _ = writeln!(
        out,
        "{:<w$}  {:<8}  {:<7}  {:>7}  {:>6}  {:>7}  {:>7}  {:>6}  {:>7}  {:>10}  {:>10}  {:>8}",
        "run",
        "strategy",
        "adapter",
        "clients",
        "rounds",
        "final %",
        "best %",
        "F1 %",
        "best F1",
        "up",
        "down",
        "seconds"
    );
    for r in runs {
        let _ = writeln!(
            out,
            "{:<w$}  {:<8}  {:<7}  {:>7}  {:>6}  {:>7}  {:>7}  {:>6}  {:>7}  {:>10}  {:>10}  {:>8.1}{}",
            r.name,
            r.strategy,
            r.adapter,
            r.num_clients,
            r.rounds,
            pct(r.final_accuracy),
            pct(r.best_accuracy),
            pct(r.final_f1),
            pct(r.best_f1),
            human_bytes(r.bytes_up),
            human_bytes(r.bytes_down),
            r.seconds,
            if r.complete { "" } else { "  (incomplete)" }
        );
    }
    if runs
        .iter()
        .any(|r| r.accuracy_measure == TaskKind::Generation.accuracy_name())
    {
        let _ = writeln!(
            out,
            "(generation runs: accuracy is the exact match of the final answer; F1 repeats it)"
        );
    }
    let most = runs.iter().map(|r| r.clients.len()).max().unwrap_or(0);
    if most > 0 {
        let _ = writeln!(out, "\nfinal accuracy % / macro-F1 % per client");
        let _ = write!(out, "{:<w$}", "run");
        for k in 0..most {
            let _ = write!(out, "  {:>11}", format!("client {k}"));
        }
        out.push('\n');
        for r in runs {
            let _ = write!(out, "{:<w$}", r.name);
            for k in 0..most {
                let text = r.clients.get(k).map_or_else(String::new, |c| {
                    format!("{}/{}", pct(c.accuracy), pct(c.macro_f1))
                });
                let _ = write!(out, "  {text:>11}");
            }
            out.push('\n');
        }
    }
    out
}
