//! The event loop: one channel multiplexes keys, resizes, clock ticks and the federation's events;
//! state changes through the pure `handle_key`/`apply_event`; the loop performs their side
//! effects (save, launch, stop, load) and redraws at most ten times a second. Generic over the
//! terminal backend so tests drive it with `TestBackend`.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use fedsa_core::Event;
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::crossterm::event::KeyEvent;

use super::TuiEnv;
use super::app::{Action, App, apply_event};
use super::draw::draw;
use super::keys::handle_key;
use fedsa_engine::RunHandle;
use fedsa_engine::runs::find_runs;

/// Redraws are at least this far apart: training can emit events faster than a terminal needs.
const FRAME: Duration = Duration::from_millis(100);

/// Everything the loop reacts to.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Resize,
    /// An event from the running federation.
    Fed(Box<Event>),
    /// The clock: advances the elapsed time and notices a finished training thread.
    Tick,
    /// The run's event stream closed (its thread is ending).
    RunEnded,
    /// Reading the terminal failed; the UI cannot go on.
    InputFailed(String),
}

/// The side of the loop that holds resources: the services, the channel and the run's handle.
pub struct Runtime {
    env: TuiEnv,
    tx: Sender<Msg>,
    run: Option<RunHandle>,
    launched: Option<Instant>,
    stream_closed: bool,
}

impl Runtime {
    /// `tx` is where forwarded federation events go: the sender of the loop's channel.
    pub fn new(env: TuiEnv, tx: Sender<Msg>) -> Self {
        Self {
            env,
            tx,
            run: None,
            launched: None,
            stream_closed: false,
        }
    }

    /// Applies one message; returns `Err` when the UI must end with an error, `Ok(true)` to quit.
    pub fn handle(&mut self, app: &mut App, msg: Msg) -> anyhow::Result<bool> {
        match msg {
            Msg::Key(key) => {
                let action = handle_key(app, key);
                return Ok(self.perform(app, action));
            }
            Msg::Fed(event) => apply_event(app, &event),
            Msg::Tick => self.tick(app),
            Msg::RunEnded => {
                self.stream_closed = true;
                self.tick(app);
            }
            Msg::Resize => {}
            Msg::InputFailed(e) => anyhow::bail!("reading the terminal failed: {e}"),
        }
        Ok(false)
    }

    /// Performs an action's side effects; returns whether to quit.
    pub fn perform(&mut self, app: &mut App, action: Action) -> bool {
        match action {
            Action::None => {}
            Action::Quit => {
                self.stop();
                return true;
            }
            Action::Save => save(app),
            Action::Launch => self.launch(app),
            Action::Stop => {
                self.stop();
                if app.run.status.is_active() {
                    app.run.status = super::events::RunStatus::Stopping;
                    app.log
                        .push("stop requested: the run ends after the current round");
                }
            }
            Action::Preview => match app.form.config() {
                Ok(config) => {
                    let result =
                        (self.env.partition_preview)(&config).map_err(|e| format!("{e:#}"));
                    app.set_preview(result);
                }
                Err(e) => app.set_preview(Err(format!("the setup has an error: {e}"))),
            },
            Action::LoadRun(path) => self.load_run(app, &path),
            Action::Analyze(path) => {
                let result = (self.env.analyze)(&path).map_err(|e| format!("{e:#}"));
                if result.is_ok() {
                    app.info(format!("analysed {}", path.display()));
                }
                app.similarity.set(path, result);
            }
            Action::FindRuns => {
                app.compare.searched = true;
                let dir = app.form.assembled().output_dir;
                let found = find_runs(&dir);
                if found.is_empty() {
                    app.info(format!("no run folders in {}", dir.display()));
                }
                for path in found {
                    self.load_run(app, &path);
                }
            }
        }
        false
    }

    fn load_run(&self, app: &mut App, path: &Path) {
        match (self.env.load_run)(path) {
            Ok(run) => {
                app.info(format!("loaded {}", path.display()));
                app.compare.add(run);
            }
            Err(e) => app.error(format!("{e:#}")),
        }
    }

    fn launch(&mut self, app: &mut App) {
        if app.run.status.is_active() {
            return;
        }
        let config = match app.form.config() {
            Ok(c) => c,
            Err(e) => {
                app.error(format!("cannot launch: {e}"));
                return;
            }
        };
        app.begin_run(&config);
        let (events_tx, events_rx) = mpsc::channel();
        let forward = self.tx.clone();
        // The federation knows only a `Sender<Event>`; this thread turns its stream into `Msg`s
        // and says when it ends, so a run that dies without a final event is still noticed.
        let spawned = thread::Builder::new()
            .name("fedsa-tui-events".into())
            .spawn(move || {
                for event in events_rx {
                    if forward.send(Msg::Fed(Box::new(event))).is_err() {
                        return;
                    }
                }
                let _ = forward.send(Msg::RunEnded);
            });
        if let Err(e) = spawned {
            apply_event(
                app,
                &Event::RunFailed {
                    error: format!("could not start a thread: {e}"),
                },
            );
            return;
        }
        self.stream_closed = false;
        self.launched = Some(Instant::now());
        self.run = Some((self.env.launch)(config, events_tx));
    }

    fn stop(&self) {
        if let Some(run) = &self.run {
            run.stop.store(true, Ordering::Relaxed);
        }
    }

    /// Advances the clock and collects a finished training thread's outcome.
    fn tick(&mut self, app: &mut App) {
        if app.run.status.is_active() {
            app.elapsed = self.launched.map(|t| t.elapsed());
        }
        let finished = self
            .run
            .as_ref()
            .is_some_and(|r| self.stream_closed && r.join.is_finished());
        if !finished {
            return;
        }
        let Some(run) = self.run.take() else { return };
        let outcome = run.join.join();
        if !app.run.status.is_active() {
            return;
        }
        // The thread ended without a final event: report what it returned.
        let event = match outcome {
            Ok(Ok(summary)) => Event::RunFinished { summary },
            Ok(Err(e)) => Event::RunFailed {
                error: format!("{e:#}"),
            },
            Err(panic) => Event::RunFailed {
                error: format!("the training thread panicked: {}", panic_text(&*panic)),
            },
        };
        apply_event(app, &event);
    }

    /// Asks a running federation to stop (the UI is going away).
    pub fn shutdown(&self) {
        self.stop();
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

fn save(app: &mut App) {
    let text = app
        .form
        .config()
        .and_then(|c| c.to_toml_string().map_err(|e| e.to_string()));
    match text {
        Ok(text) => match fedsa_core::io::write_atomic(&app.config_path, text.as_bytes()) {
            Ok(()) => {
                app.form.mark_saved();
                app.info(format!("saved {}", app.config_path.display()));
            }
            Err(e) => app.error(format!("not saved: {e}")),
        },
        Err(e) => app.error(format!("not saved: {e}")),
    }
}

/// Runs the UI until quit: draws `app`, handles messages from `rx`, redraws when something
/// changed (at most every `FRAME`).
pub fn run_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    runtime: &mut Runtime,
    rx: &Receiver<Msg>,
) -> anyhow::Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    loop {
        let since = last_draw.map_or(FRAME, |t| t.elapsed());
        if dirty && since >= FRAME {
            terminal.draw(|frame| draw(frame, app))?;
            last_draw = Some(Instant::now());
            dirty = false;
        }
        let wait = if dirty {
            FRAME.saturating_sub(since)
        } else {
            Duration::from_secs(1)
        };
        let msg = match rx.recv_timeout(wait) {
            Ok(msg) => msg,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        // Take everything already queued before drawing: a burst of events costs one frame.
        for msg in std::iter::once(msg).chain(rx.try_iter()) {
            let changes = !matches!(msg, Msg::Tick) || app.run.status.is_active();
            if runtime.handle(app, msg)? {
                return Ok(());
            }
            dirty |= changes;
        }
    }
}
