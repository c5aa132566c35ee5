//! Shared fixtures for the TUI tests: a config, synthetic federation events, a fake-client
//! federation, rendering into a `TestBackend` with the volatile parts (times) masked.

#![allow(dead_code)] // Each test crate uses a different part of this module.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use fedsa_core::testing::FakeTrainer;
use fedsa_core::{
    ClientRoundRecord, ClientTrainer, Config, EvalMetrics, Event, Federation, RoundRecord,
    Strategy, TrainStats, WeightedMean,
};
use fedsa_engine::RunHandle;
use fedsa_tui::tui::{App, ClientPreviewRow, ClientsPreview, TuiEnv, draw};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

pub const CONFIG: &str = r#"
name = "quickstart"
[model]
path = "assets/all-MiniLM-L6-v2"
[data]
format = "rotten_tomatoes"
path = "assets/rotten_tomatoes.csv"
max_examples = 2000
[partition]
kind = "dirichlet"
alpha = 0.5
[federation]
num_clients = 4
clients_per_round = 2
rounds = 5
[training]
local_steps = 20
"#;

pub fn config() -> Config {
    Config::from_toml_str(CONFIG, "quickstart.toml").expect("test config is valid")
}

pub fn app() -> App {
    App::new(config(), PathBuf::from("quickstart.toml"))
}

pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

pub fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

pub fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

/// The app drawn on a `width`x`height` terminal, as text with times masked.
pub fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal.draw(|f| draw(f, app)).expect("draw");
    mask_times(&terminal.backend().to_string())
}

/// Replaces the digits of every clock time (`mm:ss`, `h:mm:ss`: ETA and elapsed) with `#`:
/// wall-clock times differ from run to run.
pub fn mask_times(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let digit_run = |chars: &[char], mut i: usize, step: isize| -> Vec<usize> {
        let mut run = Vec::new();
        while let Some(c) = chars.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            run.push(i);
            match i.checked_add_signed(step) {
                Some(next) => i = next,
                None => break,
            }
        }
        run
    };
    for colon in 1..chars.len().saturating_sub(2) {
        if chars[colon] != ':' {
            continue;
        }
        let before = digit_run(&chars, colon - 1, -1);
        let after = digit_run(&chars, colon + 1, 1);
        if !before.is_empty() && after.len() == 2 {
            for i in before.into_iter().chain(after) {
                chars[i] = '#';
            }
        }
    }
    chars.into_iter().collect()
}

/// Accuracy of client `c` after round `r` in the scripted run: rising, different per client.
pub fn scripted_accuracy(round: usize, client: usize) -> f64 {
    0.52 + 0.06 * round as f64 + 0.015 * client as f64
}

fn eval(acc: f64) -> EvalMetrics {
    EvalMetrics {
        loss: 1.2 - acc,
        accuracy: acc,
        macro_f1: acc - 0.03,
        num_examples: 100,
        extra: BTreeMap::new(),
    }
}

/// The client records of round `round`: `sampled` trained, `failed` (a subset) failed.
pub fn client_records(
    round: usize,
    num_clients: usize,
    sampled: &[usize],
    failed: &[usize],
) -> Vec<ClientRoundRecord> {
    (0..num_clients)
        .map(|c| {
            let trained = sampled.contains(&c) && !failed.contains(&c);
            ClientRoundRecord {
                round,
                client: c,
                sampled: sampled.contains(&c),
                train: trained.then_some(TrainStats {
                    loss: 0.9 - 0.1 * round as f64,
                    steps: 20,
                    examples_seen: 320,
                }),
                failure: failed
                    .contains(&c)
                    .then(|| format!("simulated crash in round {round}")),
                eval: Some(eval(scripted_accuracy(round, c))),
                num_train_examples: 300 + 40 * c,
                bytes_down: if sampled.contains(&c) { 3072 } else { 0 },
                bytes_up: if trained { 3072 } else { 0 },
                train_seconds: 6.0,
            }
        })
        .collect()
}

/// The round record matching [`client_records`].
pub fn round_record(round: usize, clients: &[ClientRoundRecord]) -> RoundRecord {
    let mean = |f: &dyn Fn(&ClientRoundRecord) -> Option<f64>| {
        fedsa_core::mean(clients.iter().filter_map(f))
    };
    let weighted = |f: &dyn Fn(&EvalMetrics) -> f64| {
        fedsa_core::weighted_mean_of(
            clients
                .iter()
                .filter_map(|c| c.eval.as_ref())
                .map(|e| (f(e), e.num_examples as f64)),
        )
    };
    RoundRecord {
        round,
        sampled: clients
            .iter()
            .filter(|c| c.sampled)
            .map(|c| c.client)
            .collect(),
        succeeded: clients
            .iter()
            .filter(|c| c.train.is_some())
            .map(|c| c.client)
            .collect(),
        failed: clients
            .iter()
            .filter(|c| c.failure.is_some())
            .map(|c| c.client)
            .collect(),
        aggregated: true,
        note: None,
        mean_accuracy: mean(&|c| c.eval.as_ref().map(|e| e.accuracy)),
        mean_f1: mean(&|c| c.eval.as_ref().map(|e| e.macro_f1)),
        mean_loss: mean(&|c| c.eval.as_ref().map(|e| e.loss)),
        mean_train_loss: mean(&|c| c.train.as_ref().map(|t| t.loss)),
        weighted_accuracy: weighted(&|e| e.accuracy),
        weighted_f1: weighted(&|e| e.macro_f1),
        privacy: None,
        bytes_down: clients.iter().map(|c| c.bytes_down).sum(),
        bytes_up: clients.iter().map(|c| c.bytes_up).sum(),
        seconds: 12.0,
    }
}

/// Sampled clients of round `r` in the scripted run (2 of 4, rotating).
pub fn scripted_sample(round: usize) -> Vec<usize> {
    vec![(round - 1) % 4, round % 4]
}

/// Every event of scripted rounds `1..=rounds` of a 4-client, 5-round FedSA run; client 1 fails
/// in round 2.
pub fn scripted_events(rounds: usize) -> Vec<Event> {
    let mut events = vec![Event::RunStarted {
        num_clients: 4,
        rounds: 5,
        first_round: 1,
        strategy: "fedsa".into(),
        aggregator: "fedavg".into(),
    }];
    for round in 1..=rounds {
        let sampled = scripted_sample(round);
        let failed: Vec<usize> = if round == 2 { vec![1] } else { vec![] };
        let records = client_records(round, 4, &sampled, &failed);
        events.push(Event::RoundStarted {
            round,
            sampled: sampled.clone(),
        });
        for &c in &sampled {
            events.push(Event::ClientStarted { round, client: c });
            if failed.contains(&c) {
                events.push(Event::ClientFailed {
                    round,
                    client: c,
                    error: format!("simulated crash in round {round}"),
                });
            }
            events.push(Event::ClientFinished {
                record: records[c].clone(),
            });
        }
        events.push(Event::RoundFinished {
            record: round_record(round, &records),
            clients: records,
        });
        events.push(Event::CheckpointWritten {
            round,
            path: format!("runs/quickstart/checkpoints/round-{round}"),
        });
    }
    events
}

/// A federation of deterministic fake clients (no ML), as the runner would build for `config`.
pub fn fake_federation(config: &Config, sink: Box<dyn fedsa_core::EventSink>) -> Federation {
    let clients: Vec<Box<dyn ClientTrainer>> = (0..config.federation.num_clients)
        .map(|id| {
            Box::new(FakeTrainer::new(id, 100 + 50 * id, 2, config.seed)) as Box<dyn ClientTrainer>
        })
        .collect();
    Federation::new(
        config.federation_settings(),
        config
            .strategy("test")
            .unwrap_or_else(|_| Strategy::fedsa()),
        Box::new(WeightedMean),
        clients,
        sink,
    )
    .expect("fake federation")
}

/// Every event of a complete fake-client run of `config`.
pub fn fake_run_events(config: &Config) -> Vec<Event> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let mut fed = fake_federation(
        config,
        Box::new(move |e: Event| sink.lock().expect("events").push(e)),
    );
    fed.run(&AtomicBool::new(false), &mut |_, _| Ok(()))
        .expect("fake run");
    drop(fed);
    Arc::try_unwrap(events)
        .expect("sink dropped with the federation")
        .into_inner()
        .expect("events")
}

/// A launcher that trains fake clients on a thread, as `runner::spawn` does with real ones.
pub fn fake_launch(config: Config, events: Sender<Event>) -> RunHandle {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let join = std::thread::spawn(move || {
        let mut fed = fake_federation(&config, Box::new(events));
        Ok(fed.run(&flag, &mut |_, _| Ok(()))?)
    });
    RunHandle { stop, join }
}

/// A 4-client, 2-label partition.
pub fn preview() -> ClientsPreview {
    let hists = [[180, 20], [40, 160], [100, 100], [5, 295]];
    ClientsPreview {
        label_names: vec!["fresh".into(), "rotten".into()],
        clients: hists
            .iter()
            .map(|h| ClientPreviewRow {
                train: h[0] + h[1],
                test: (h[0] + h[1]) / 4,
                train_hist: h.to_vec(),
            })
            .collect(),
    }
}

/// Services for tests: fake training, a fixed partition, the real run-folder reader and analysis.
pub fn env() -> TuiEnv {
    TuiEnv {
        launch: Box::new(fake_launch),
        partition_preview: Box::new(|_| Ok(preview())),
        load_run: Box::new(fedsa_engine::runs::load_run),
        analyze: Box::new(|path| {
            fedsa_engine::analyze::analyze_run(path, None, fedsa_engine::analyze::Mode::Checkpoint)
        }),
    }
}
