//! Events the federation emits while it runs. The TUI and the headless mode are two consumers of
//! the same stream; neither reaches into the loop.

use serde::{Deserialize, Serialize};

use crate::{ClientRoundRecord, RoundRecord, RunSummary};

/// Something that happened in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        num_clients: usize,
        rounds: usize,
        first_round: usize,
        strategy: String,
        aggregator: String,
    },
    RoundStarted {
        round: usize,
        sampled: Vec<usize>,
    },
    ClientStarted {
        round: usize,
        client: usize,
    },
    ClientFinished {
        record: ClientRoundRecord,
    },
    ClientFailed {
        round: usize,
        client: usize,
        error: String,
    },
    RoundFinished {
        record: RoundRecord,
        clients: Vec<ClientRoundRecord>,
    },
    CheckpointWritten {
        round: usize,
        path: String,
    },
    Log {
        message: String,
    },
    RunFinished {
        summary: RunSummary,
    },
    RunFailed {
        error: String,
    },
}

/// Where events go. `std::sync::mpsc::Sender<Event>` is one; so is a closure.
pub trait EventSink: Send {
    fn emit(&mut self, event: Event);
}

impl EventSink for std::sync::mpsc::Sender<Event> {
    fn emit(&mut self, event: Event) {
        // A consumer that went away (closed UI) must not stop training.
        let _ = self.send(event);
    }
}

impl<F: FnMut(Event) + Send> EventSink for F {
    fn emit(&mut self, event: Event) {
        self(event);
    }
}

/// A sink that drops everything.
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&mut self, _event: Event) {}
}
