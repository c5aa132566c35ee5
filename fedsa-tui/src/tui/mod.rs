//! The interactive terminal UI: set up a run, look at its clients, train it while watching every
//! round, and compare run folders. Training reaches the UI only through the federation's event
//! stream; every service with I/O or ML comes in through [`TuiEnv`], so tests need neither.

mod app;
mod draw;
mod events;
mod fields;
mod form;
mod keys;
mod preview;
mod run_loop;
mod runs;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use fedsa_core::{Config, Event};
use ratatui::crossterm::event as term;

pub use app::{Action, App, Compare, Notice, Screen, SimilarityView};
pub use draw::draw;
pub use events::{ClientRow, ClientStatus, Log, RunState, RunStatus, apply_event};
pub use fields::{FIELDS, FieldSpec};
pub use form::Form;
pub use keys::handle_key;
pub use preview::{ClientPreviewRow, ClientsPreview, Preview};
pub use run_loop::{Msg, Runtime, run_loop};
pub use runs::{RunCurves, find_runs, load_run, parse_metrics};

use crate::runner::RunHandle;

/// Starts a run of a config, reporting on the sender (production: [`crate::runner::spawn`]).
pub type LaunchFn = Box<dyn Fn(Config, Sender<Event>) -> RunHandle>;
/// Splits a config's data into clients without training (production: fedsa-data).
pub type PreviewFn = Box<dyn Fn(&Config) -> anyhow::Result<ClientsPreview>>;
/// Reads a run folder's curves (production: [`load_run`]).
pub type LoadRunFn = Box<dyn Fn(&Path) -> anyhow::Result<RunCurves>>;

/// The services the UI uses, injected so tests can run it without models or data.
pub struct TuiEnv {
    pub launch: LaunchFn,
    pub partition_preview: PreviewFn,
    pub load_run: LoadRunFn,
}

impl TuiEnv {
    /// Real training and the `metrics.jsonl` reader; the caller supplies the partition preview,
    /// which needs the data crate.
    pub fn with_preview(partition_preview: PreviewFn) -> Self {
        Self {
            launch: Box::new(crate::runner::spawn),
            partition_preview,
            load_run: Box::new(load_run),
        }
    }
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
