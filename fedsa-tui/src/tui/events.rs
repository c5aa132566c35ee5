//! The training dashboard's data, built only from the federation's event stream: progress, the
//! per-round history, each client's latest figures, byte totals and the log. `fold_event` is a
//! pure function of the state and one event.

use std::collections::VecDeque;

use fedsa_core::{ClientRoundRecord, EvalMetrics, Event, RoundRecord, RunSummary};

/// Log lines kept; older ones scroll away.
const LOG_CAPACITY: usize = 1000;

/// Where a run stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum RunStatus {
    /// Nothing launched yet.
    #[default]
    Idle,
    /// Launched; the model and data are loading (no `RunStarted` yet).
    Starting,
    Running,
    /// Stop requested: the run ends after the current round.
    Stopping,
    Finished,
    Stopped,
    Failed(String),
}

impl RunStatus {
    /// Whether a training thread is (or may still be) working.
    pub fn is_active(&self) -> bool {
        matches!(self, Self::Starting | Self::Running | Self::Stopping)
    }
}

/// What a client is doing in the current round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientStatus {
    /// Not sampled this round.
    #[default]
    Idle,
    Queued,
    Training,
    Trained,
    Failed,
}

impl ClientStatus {
    pub fn label(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Queued => "queued",
            Self::Training => "training",
            Self::Trained => "trained",
            Self::Failed => "failed",
        }
    }
}

/// One client's latest figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientRow {
    pub status: ClientStatus,
    pub num_train_examples: usize,
    /// Latest evaluation on the client's own test split.
    pub eval: Option<EvalMetrics>,
    /// Training loss of the last round the client trained in.
    pub train_loss: Option<f64>,
    pub failures: usize,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// (round, accuracy) of every evaluation.
    pub accuracy: Vec<(f64, f64)>,
}

/// A run as seen through its events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunState {
    pub status: RunStatus,
    pub num_clients: usize,
    pub total_rounds: usize,
    pub first_round: usize,
    pub strategy: String,
    pub aggregator: String,
    /// The round in progress.
    pub current_round: Option<usize>,
    pub sampled: Vec<usize>,
    /// Sampled clients done (trained or failed) in the current round.
    pub done_in_round: usize,
    /// Records of the rounds finished in this session, in order.
    pub rounds: Vec<RoundRecord>,
    pub clients: Vec<ClientRow>,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub summary: Option<RunSummary>,
}

impl RunState {
    /// Rounds this session runs (a resumed run starts after round 1).
    pub fn session_rounds(&self) -> usize {
        (self.total_rounds + 1).saturating_sub(self.first_round.max(1))
    }

    /// Fraction of this session's rounds done, counting the current round's finished clients.
    pub fn progress(&self) -> f64 {
        let total = self.session_rounds();
        if total == 0 {
            return if self.status == RunStatus::Finished {
                1.0
            } else {
                0.0
            };
        }
        let partial = if self.current_round.is_some() && !self.sampled.is_empty() {
            self.done_in_round as f64 / self.sampled.len() as f64
        } else {
            0.0
        };
        ((self.rounds.len() as f64 + partial) / total as f64).clamp(0.0, 1.0)
    }

    /// Estimated seconds left: the mean round time so far times the rounds left.
    pub fn eta_seconds(&self) -> Option<f64> {
        if !self.status.is_active() || self.rounds.is_empty() {
            return None;
        }
        let mean = self.rounds.iter().map(|r| r.seconds).sum::<f64>() / self.rounds.len() as f64;
        let left = self.session_rounds().saturating_sub(self.rounds.len());
        Some(mean * left as f64)
    }

    /// The last round with a mean accuracy.
    pub fn last_evaluated(&self) -> Option<&RoundRecord> {
        self.rounds.iter().rev().find(|r| r.mean_accuracy.is_some())
    }

    /// The row of `client`, growing the table if an event names a client beyond it.
    fn row(&mut self, client: usize) -> &mut ClientRow {
        if client >= self.clients.len() {
            self.clients.resize(client + 1, ClientRow::default());
        }
        &mut self.clients[client]
    }

    fn record_client(&mut self, record: &ClientRoundRecord) {
        let row = self.row(record.client);
        row.num_train_examples = record.num_train_examples;
        if let Some(train) = &record.train {
            row.train_loss = Some(train.loss);
        }
        if let Some(eval) = &record.eval {
            row.accuracy.push((record.round as f64, eval.accuracy));
            row.eval = Some(eval.clone());
        }
        row.bytes_up += record.bytes_up;
        row.bytes_down += record.bytes_down;
    }
}

/// The log pane's lines, oldest first, bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Log {
    lines: VecDeque<String>,
}

impl Log {
    pub fn push(&mut self, line: impl Into<String>) {
        if self.lines.len() == LOG_CAPACITY {
            self.lines.pop_front();
        }
        self.lines.push_back(line.into());
    }

    pub fn lines(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator {
        self.lines.iter().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// `0.8123` as `81.2`.
pub fn percent(v: f64) -> String {
    fedsa_engine::units::percent(v, 1)
}

fn percent_or_dash(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{}%", percent(v)))
}

/// Folds one federation event into the run state and the log.
pub fn fold_event(run: &mut RunState, log: &mut Log, event: &Event) {
    match event {
        Event::RunStarted {
            num_clients,
            rounds,
            first_round,
            strategy,
            aggregator,
        } => {
            run.status = if run.status == RunStatus::Stopping {
                RunStatus::Stopping
            } else {
                RunStatus::Running
            };
            run.num_clients = *num_clients;
            run.total_rounds = *rounds;
            run.first_round = *first_round;
            run.strategy.clone_from(strategy);
            run.aggregator.clone_from(aggregator);
            run.clients = vec![ClientRow::default(); *num_clients];
            log.push(format!(
                "run started: {num_clients} clients, rounds {first_round}..={rounds}, strategy {strategy}, aggregator {aggregator}"
            ));
        }
        Event::RoundStarted { round, sampled } => {
            run.current_round = Some(*round);
            run.sampled.clone_from(sampled);
            run.done_in_round = 0;
            for row in &mut run.clients {
                row.status = ClientStatus::Idle;
            }
            for &c in sampled {
                run.row(c).status = ClientStatus::Queued;
            }
            let ids: Vec<String> = sampled.iter().map(ToString::to_string).collect();
            log.push(format!("round {round}: clients {} train", ids.join(", ")));
        }
        Event::ClientStarted { client, .. } => run.row(*client).status = ClientStatus::Training,
        Event::ClientFinished { record } => {
            run.done_in_round += 1;
            run.row(record.client).status = if record.failure.is_some() {
                ClientStatus::Failed
            } else {
                ClientStatus::Trained
            };
        }
        Event::ClientFailed {
            round,
            client,
            error,
        } => {
            let row = run.row(*client);
            row.status = ClientStatus::Failed;
            row.failures += 1;
            log.push(format!("round {round}: client {client} failed: {error}"));
        }
        Event::RoundFinished { record, clients } => {
            for c in clients {
                run.record_client(c);
            }
            run.bytes_up += record.bytes_up;
            run.bytes_down += record.bytes_down;
            run.current_round = None;
            run.done_in_round = 0;
            let loss = record
                .mean_loss
                .map_or_else(|| "-".into(), |l| format!("{l:.4}"));
            log.push(format!(
                "round {}: mean acc {}  F1 {}  loss {loss}{}{}",
                record.round,
                percent_or_dash(record.mean_accuracy),
                percent_or_dash(record.mean_f1),
                if record.failed.is_empty() {
                    String::new()
                } else {
                    format!("  failed {}", record.failed.len())
                },
                // The info line shows δ; the log, narrower, only ε.
                record
                    .privacy
                    .map_or_else(String::new, |p| format!("  ε {:.2}", p.epsilon))
            ));
            run.rounds.push(record.clone());
        }
        Event::CheckpointWritten { round, path } => {
            log.push(format!("round {round}: checkpoint {path}"));
        }
        Event::Log { message } => log.push(message.clone()),
        Event::RunFinished { summary } => {
            run.status = RunStatus::Finished;
            run.current_round = None;
            log.push(format!(
                "run finished: mean acc {}  best {}  failures {}",
                percent_or_dash(summary.mean_accuracy),
                percent_or_dash(summary.best_mean_accuracy),
                summary.failures
            ));
            run.summary = Some(summary.clone());
        }
        Event::RunFailed { error } => {
            run.current_round = None;
            if *error == fedsa_core::Error::Stopped.to_string() {
                run.status = RunStatus::Stopped;
                log.push("run stopped");
            } else {
                run.status = RunStatus::Failed(error.clone());
                log.push(format!("run failed: {error}"));
            }
        }
    }
}
