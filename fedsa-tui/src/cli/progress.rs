//! The headless consumer of a run's events: progress bars on a terminal, plain lines otherwise,
//! and the summary table at the end.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use fedsa_core::{EvalMetrics, Event, RunSummary, TaskKind};
pub use fedsa_engine::round_line::round_line;
use fedsa_engine::units::{human_bytes, percent_or_dash};
use indicatif::{ProgressBar, ProgressStyle};

use super::tables::{MEANS_NOTE, means_header, means_rows};

/// Prints a run's progress from its events.
pub struct Progress {
    bar: Option<ProgressBar>,
    rounds: usize,
}

impl Progress {
    /// Progress bars when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Self {
        Self {
            bar: None,
            rounds: 0,
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// Handles one event.
    pub fn on_event(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                num_clients,
                rounds,
                first_round,
                strategy,
                aggregator,
            } => {
                self.rounds = *rounds;
                let head = format!(
                    "fedsa: {num_clients} clients, rounds {first_round}..={rounds}, strategy {strategy}, aggregator {aggregator}"
                );
                if std::io::stderr().is_terminal() {
                    let bar = ProgressBar::new(*rounds as u64);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} round {pos}/{len} [{bar:30}] {elapsed_precise} eta {eta} {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_position((*first_round - 1) as u64);
                    bar.enable_steady_tick(Duration::from_millis(200));
                    self.bar = Some(bar);
                }
                self.line(&head);
            }
            Event::ClientStarted { round, client } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("round {round}: training client {client}"));
                }
            }
            Event::ClientFailed {
                round,
                client,
                error,
            } => self.line(&format!("round {round}: client {client} failed: {error}")),
            Event::RoundFinished { record, .. } => {
                self.line(&round_line(record, self.rounds));
                if let Some(bar) = &self.bar {
                    bar.set_position(record.round as u64);
                }
            }
            Event::Log { message } => self.line(message),
            Event::RunFinished { .. } | Event::RunFailed { .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
            }
            Event::RoundStarted { .. }
            | Event::ClientFinished { .. }
            | Event::CheckpointWritten { .. } => {}
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// The table's second column: macro-F1, or for generation the token accuracy.
fn second_figure(m: &EvalMetrics, task: TaskKind) -> f64 {
    match task {
        TaskKind::Classification => m.macro_f1,
        TaskKind::Generation => m.extra.get("token_accuracy").copied().unwrap_or(f64::NAN),
    }
}

fn pct(v: Option<f64>) -> String {
    percent_or_dash(v, 2)
}

/// The summary table: per-client accuracy and F1 (for generation: exact match and the share
/// of response tokens predicted right), their plain mean, bytes per round; then the client
/// means, unweighted and example-weighted, at the last and the best round.
pub fn summary_table(summary: &RunSummary, task: TaskKind) -> String {
    // Writing to a String cannot fail, so the fmt results are ignored.
    let mut out = String::new();
    let (acc, f1) = match task {
        TaskKind::Classification => ("acc %", "F1 %"),
        TaskKind::Generation => ("EM %", "token acc %"),
    };
    let _ = writeln!(
        out,
        "{:<8} {:>10} {:>11} {:>10} {:>9}",
        "client", acc, f1, "loss", "examples"
    );
    for (k, m) in summary.clients.iter().enumerate() {
        let _ = match m {
            Some(m) => writeln!(
                out,
                "{:<8} {:>10.2} {:>11.2} {:>10.4} {:>9}",
                k,
                m.accuracy * 100.0,
                second_figure(m, task) * 100.0,
                m.loss,
                m.num_examples
            ),
            None => writeln!(out, "{k:<8} {:>10} {:>11} {:>10} {:>9}", "-", "-", "-", "-"),
        };
    }
    let second = match task {
        TaskKind::Classification => summary.mean_f1,
        TaskKind::Generation => fedsa_core::mean(
            summary
                .clients
                .iter()
                .flatten()
                .map(|m| second_figure(m, task)),
        ),
    };
    let _ = writeln!(
        out,
        "{:<8} {:>10} {:>11}",
        "mean",
        pct(summary.mean_accuracy),
        pct(second)
    );
    let rounds = summary.rounds.max(1) as u64;
    let _ = writeln!(
        out,
        "best mean {} {}%  |  per round: up {}  down {}  |  failures {}  |  {} rounds, strategy {}, {:.1}s",
        task.accuracy_name(),
        pct(summary.best_mean_accuracy),
        human_bytes(summary.total_bytes_up / rounds),
        human_bytes(summary.total_bytes_down / rounds),
        summary.failures,
        summary.rounds,
        summary.strategy,
        summary.seconds
    );
    if let Some(means) = &summary.means {
        let _ = writeln!(out, "\nclient means % (paper: best unweighted)");
        for line in means_header()
            .iter()
            .chain(&means_rows(means, task.accuracy_name()))
        {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "{MEANS_NOTE}");
    }
    out
}
