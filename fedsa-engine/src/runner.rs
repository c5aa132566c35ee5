//! Launching a federation on its own thread; the caller sees it only through events.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use fedsa_core::{Config, Event, RunSummary};

use crate::execute::{RunOptions, execute};

/// A run in progress: set `stop` to end it between rounds; join for its outcome.
pub struct RunHandle {
    pub stop: Arc<AtomicBool>,
    pub join: JoinHandle<anyhow::Result<RunSummary>>,
}

/// Starts a run of `config` on a new thread, reporting on `events`.
pub fn spawn(config: Config, events: Sender<Event>) -> RunHandle {
    spawn_with(config, RunOptions::default(), events)
}

/// Like [`spawn`], with options (resume).
pub fn spawn_with(config: Config, options: RunOptions, events: Sender<Event>) -> RunHandle {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let join = std::thread::Builder::new()
        .name("federation".into())
        .spawn(move || execute(&config, &options, Box::new(events), &flag))
        .expect("spawning the federation thread");
    RunHandle { stop, join }
}
