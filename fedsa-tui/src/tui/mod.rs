//! The interactive terminal UI: set up a run, look at its clients and tune each one, train it
//! while watching every round, and compare run folders. Training reaches the UI only through the
//! federation's event stream; every service with I/O or ML comes in through [`TuiEnv`], so
//! tests need neither.

mod app;
mod client_edits;
mod draw;
mod events;
mod fields;
mod form;
mod keys;
mod preview;
mod run_loop;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use anyhow::Context;
use fedsa_core::{Config, ConfigSource, Event};
use fedsa_engine::analyze::{AnalysisReport, Mode, analyze_run};
use fedsa_engine::runs::{RunHistory, load_run};
use fedsa_engine::{RunHandle, RunOptions};
use ratatui::crossterm::event as term;

pub use app::{Action, App, Compare, Notice, Screen, SimilarityView, apply_event};
pub use client_edits::{ClientCursor, ClientField};
pub use draw::draw;
pub use events::{ClientRow, ClientStatus, Log, RunState, RunStatus};
pub use fields::{FIELDS, FieldSpec};
pub use form::Form;
pub use keys::handle_key;
pub use preview::{ClientPreviewRow, ClientsPreview, Preview};
pub use run_loop::{Msg, Runtime, run_loop};

/// Starts a run of a config, reporting on the sender (production: [`fedsa_engine::spawn`]).
pub type LaunchFn = Box<dyn Fn(Config, Sender<Event>) -> RunHandle>;
/// Splits a config's data into clients without training (production: the engine's partition).
pub type PreviewFn = Box<dyn Fn(&Config) -> anyhow::Result<ClientsPreview>>;
/// Reads a run folder's history (production: [`fedsa_engine::runs::load_run`]).
pub type LoadRunFn = Box<dyn Fn(&Path) -> anyhow::Result<RunHistory>>;
/// Measures the A/B similarity of a run folder (production: the engine's analysis of the last
/// checkpoint).
pub type AnalyzeFn = Box<dyn Fn(&Path) -> anyhow::Result<AnalysisReport>>;

/// The services the UI uses, injected so tests can run it without models or data.
pub struct TuiEnv {
    pub launch: LaunchFn,
    pub partition_preview: PreviewFn,
    pub load_run: LoadRunFn,
    pub analyze: AnalyzeFn,
}

impl TuiEnv {
    /// The engine's services: real training, partitioning, run folders and analysis. Errors
    /// about the config's values name `config_path`, the file the UI opened and saves.
    pub fn production(config_path: &Path) -> Self {
        let source = ConfigSource::file(config_path.display().to_string());
        let preview_source = source.clone();
        Self {
            launch: Box::new(move |config, events| {
                let options = RunOptions {
                    resume: false,
                    source: source.clone(),
                };
                fedsa_engine::spawn_with(config, options, events)
            }),
            partition_preview: Box::new(move |config| {
                partition_preview(config)
                    .map_err(|e| fedsa_engine::name_config_source(e, &preview_source))
            }),
            load_run: Box::new(load_run),
            // The checkpoint measurement only reads files; `--from local-round` would train and
            // block the UI, so it stays with the command line.
            analyze: Box::new(|path| analyze_run(path, None, Mode::Checkpoint)),
        }
    }
}

/// The partition a config produces, for the Clients screen.
fn partition_preview(config: &Config) -> anyhow::Result<ClientsPreview> {
    let (_, _, report) = fedsa_engine::load_partition(config)?;
    Ok(ClientsPreview {
        label_names: report.label_names.clone(),
        clients: report
            .clients
            .iter()
            .map(|c| ClientPreviewRow {
                train: c.train,
                test: c.test,
                train_hist: c.train_hist.clone(),
            })
            .collect(),
    })
}

/// Opens the TUI on the config at `path` with the engine's services.
pub fn open(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path).with_context(|| {
        format!(
            "opening the TUI on {} (from the repository root, or pass a config: fedsa tui CONFIG)",
            path.display()
        )
    })?;
    run(config, path.to_path_buf(), TuiEnv::production(path))
}

/// How often the clock ticks (elapsed time, noticing a finished training thread).
const TICK: Duration = Duration::from_millis(250);
/// How long the input thread waits for a key before checking whether to tick or end.
const POLL: Duration = Duration::from_millis(50);

/// Whether the UI owns the terminal; a panic elsewhere must not restore it behind the UI's back.
static UI_ACTIVE: AtomicBool = AtomicBool::new(false);

/// Opens the TUI on `config` (saved to `config_path`) and runs it until the user quits. The
/// terminal is restored on every exit path, panics included.
pub fn run(config: Config, config_path: PathBuf, env: TuiEnv) -> anyhow::Result<()> {
    let mut app = App::new(config, config_path);
    let (tx, rx) = mpsc::channel();
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            // Raw mode may be on even though entering the alternate screen failed.
            ratatui::restore();
            return Err(anyhow::Error::new(e).context("opening the terminal UI"));
        }
    };
    let _restore = RestoreOnDrop;
    UI_ACTIVE.store(true, Ordering::SeqCst);
    keep_worker_panics_off_screen(thread::current().id());

    let stop_input = Arc::new(AtomicBool::new(false));
    let input = spawn_input(tx.clone(), Arc::clone(&stop_input))?;
    let mut runtime = Runtime::new(env, tx);
    let result = run_loop(&mut terminal, &mut app, &mut runtime, &rx);
    runtime.shutdown();
    stop_input.store(true, Ordering::SeqCst);
    let _ = input.join();
    result
}

/// Restores the terminal when dropped: on return, on `?`, and while unwinding from a panic.
struct RestoreOnDrop;

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        UI_ACTIVE.store(false, Ordering::SeqCst);
        ratatui::restore();
    }
}

/// ratatui's hook restores the terminal on any panic. A panic in the training thread would then
/// tear the screen from under a UI that goes on running, so while the UI is up, other threads'
/// panics are left to their join handle (the dashboard reports them as a failed run).
fn keep_worker_panics_off_screen(ui: ThreadId) {
    let restore_and_report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if thread::current().id() == ui || !UI_ACTIVE.load(Ordering::SeqCst) {
            restore_and_report(info);
        }
    }));
}

/// Reads the terminal on its own thread, so a slow frame never loses a key; also the clock.
fn spawn_input(tx: Sender<Msg>, stop: Arc<AtomicBool>) -> anyhow::Result<JoinHandle<()>> {
    let handle = thread::Builder::new()
        .name("fedsa-tui-input".into())
        .spawn(move || {
            let mut last_tick = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                let msg = match term::poll(POLL) {
                    Ok(true) => match term::read() {
                        Ok(term::Event::Key(key)) => Some(Msg::Key(key)),
                        Ok(term::Event::Resize(..)) => Some(Msg::Resize),
                        Ok(_) => None,
                        Err(e) => Some(Msg::InputFailed(e.to_string())),
                    },
                    Ok(false) => None,
                    Err(e) => Some(Msg::InputFailed(e.to_string())),
                };
                let failed = matches!(msg, Some(Msg::InputFailed(_)));
                if let Some(msg) = msg
                    && (tx.send(msg).is_err() || failed)
                {
                    return;
                }
                if last_tick.elapsed() >= TICK {
                    last_tick = Instant::now();
                    if tx.send(Msg::Tick).is_err() {
                        return;
                    }
                }
            }
        })?;
    Ok(handle)
}
