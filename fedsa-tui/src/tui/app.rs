//! The TUI's whole state as plain data: the screen, the setup form, the partition preview, the
//! run built from events, the log and the compared runs. Keys and events change it through pure
//! functions (`keys`, `events`); drawing only reads it.

use std::path::PathBuf;
use std::time::Duration;

use fedsa_core::{Config, Event};
use fedsa_engine::analyze::AnalysisReport;
use fedsa_engine::runs::RunHistory;

use super::client_edits::ClientCursor;
use super::events::{Log, RunState, RunStatus, fold_event};
use super::form::Form;
use super::preview::{ClientsPreview, Preview};

/// The screens, in tab order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Screen {
    #[default]
    Setup,
    Clients,
    Train,
    Compare,
    /// A run's A/B similarity, opened from Compare (`s`) or with `5`. Not in the tab cycle, so
    /// its tab shows only while it is open.
    Similarity,
}

impl Screen {
    pub const ALL: [Screen; 4] = [Self::Setup, Self::Clients, Self::Train, Self::Compare];

    pub fn title(self) -> &'static str {
        match self {
            Self::Setup => "Setup",
            Self::Clients => "Clients",
            Self::Train => "Train",
            Self::Compare => "Compare",
            Self::Similarity => "A/B",
        }
    }

    /// The tab's position; the Similarity tab comes after the others.
    pub fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|s| *s == self)
            .unwrap_or(Self::ALL.len())
    }

    /// The screen `delta` tabs away, wrapping around; from Similarity (one past Compare), back
    /// is Compare and forward is Setup.
    #[must_use]
    pub fn step(self, delta: isize) -> Screen {
        let n = Self::ALL.len() as isize;
        let from = if self == Self::Similarity && delta > 0 {
            -1
        } else {
            self.index() as isize
        };
        Self::ALL[(from + delta).rem_euclid(n) as usize]
    }
}

/// What the event loop must do after a key: the side effects `handle_key` does not do itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    /// Write the form's config to the config file.
    Save,
    /// Start a run of the form's config.
    Launch,
    /// Ask the running federation to stop after the current round.
    Stop,
    /// Compute the partition preview of the form's config.
    Preview,
    /// Read a run folder into the Compare screen.
    LoadRun(PathBuf),
    /// Load every run folder in the output folder into the Compare screen.
    FindRuns,
    /// Analyse a run folder's A/B similarity into the Similarity screen.
    Analyze(PathBuf),
}

/// A one-line message in the footer until the next key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

/// The Compare screen's runs and its "add a run folder" prompt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Compare {
    pub runs: Vec<RunHistory>,
    pub selected: usize,
    /// The path being typed after `a`.
    pub input: Option<String>,
    /// Whether the output folder was searched for runs already.
    pub searched: bool,
}

impl Compare {
    /// Adds a run, replacing one read from the same folder before.
    pub fn add(&mut self, run: RunHistory) {
        if let Some(i) = self.runs.iter().position(|r| r.path == run.path) {
            self.runs[i] = run;
            self.selected = i;
        } else {
            self.runs.push(run);
            self.selected = self.runs.len() - 1;
        }
    }

    pub fn remove_selected(&mut self) {
        if self.selected < self.runs.len() {
            self.runs.remove(self.selected);
        }
        self.selected = self.selected.min(self.runs.len().saturating_sub(1));
    }
}

/// The Similarity screen: the analysis of one run folder, or why it failed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimilarityView {
    /// The run folder analysed (or being analysed).
    pub path: Option<PathBuf>,
    pub report: Option<Result<AnalysisReport, String>>,
    /// First module row shown.
    pub offset: usize,
}

impl SimilarityView {
    pub fn set(&mut self, path: PathBuf, report: Result<AnalysisReport, String>) {
        self.path = Some(path);
        self.report = Some(report);
        self.offset = 0;
    }
}

/// Everything the TUI shows.
#[derive(Debug, Clone)]
pub struct App {
    pub screen: Screen,
    pub show_help: bool,
    pub form: Form,
    /// Where `Save` writes the config.
    pub config_path: PathBuf,
    pub preview: Preview,
    /// The client and setting selected on the Clients screen; the table scrolls to it.
    pub clients_cursor: ClientCursor,
    pub run: RunState,
    /// Client row selected on the Train screen.
    pub train_selected: usize,
    pub log: Log,
    pub compare: Compare,
    pub similarity: SimilarityView,
    pub notice: Option<Notice>,
    /// `q` was pressed while a run or unsaved edits would be lost: the next `q` quits.
    pub confirm_quit: bool,
    /// Wall time since the current run was launched (set by the event loop's clock).
    pub elapsed: Option<Duration>,
}

impl App {
    /// The app on the Setup screen of `config`, loaded from (and saved to) `config_path`.
    pub fn new(config: Config, config_path: PathBuf) -> Self {
        let form = Form::new(config, config_path.display().to_string());
        Self {
            screen: Screen::Setup,
            show_help: false,
            form,
            config_path,
            preview: Preview::Stale,
            clients_cursor: ClientCursor::default(),
            run: RunState::default(),
            train_selected: 0,
            log: Log::default(),
            compare: Compare::default(),
            similarity: SimilarityView::default(),
            notice: None,
            confirm_quit: false,
            elapsed: None,
        }
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            error: false,
        });
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            error: true,
        });
    }

    /// Resets the dashboard for a new run of `config`.
    pub fn begin_run(&mut self, config: &Config) {
        self.run = RunState {
            status: RunStatus::Starting,
            num_clients: config.federation.num_clients,
            total_rounds: config.federation.rounds,
            first_round: 1,
            strategy: config.strategy.name.clone(),
            aggregator: config.strategy.aggregator.clone(),
            ..RunState::default()
        };
        self.train_selected = 0;
        self.elapsed = Some(Duration::ZERO);
        self.log.push(format!(
            "launching run `{}`: loading model and data",
            config.name
        ));
    }

    /// The partition computed for the setup. The cursor stays on its client: a recomputed
    /// partition has the same clients, and drawing and keys clamp it to the rows there are.
    pub fn set_preview(&mut self, result: Result<ClientsPreview, String>) {
        self.preview = match result {
            Ok(p) => Preview::Ready(p),
            Err(e) => Preview::Failed(e),
        };
    }
}

/// Folds one federation event into the app: the run state and the log, and a finished run
/// makes the Compare screen look for run folders again.
pub fn apply_event(app: &mut App, event: &Event) {
    if matches!(event, Event::RunFinished { .. }) {
        // The run folder is complete now: entering Compare reloads the output folder.
        app.compare.searched = false;
    }
    fold_event(&mut app.run, &mut app.log, event);
}
