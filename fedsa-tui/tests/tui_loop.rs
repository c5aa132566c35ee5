//! The event loop and its side effects with injected services: a real federation of fake clients
//! trained on its own thread and seen only through events, stop, a panicking training thread,
//! saving, the partition preview, loading runs, and the loop itself on a `TestBackend`.

mod tui_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use fedsa_core::Event;
use fedsa_engine::RunHandle;
use fedsa_tui::tui::{
    Action, App, Msg, Preview, RunStatus, Runtime, Screen, TuiEnv, handle_key, run_loop,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::KeyCode;
use tui_common::{app, ch, env, key};

/// Feeds every message the runtime receives back into it until the run is over and its thread
/// collected, as the loop does.
fn pump(runtime: &mut Runtime, app: &mut App, rx: &Receiver<Msg>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the run did not end");
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(msg) => {
                assert!(!runtime.handle(app, msg).unwrap());
            }
            Err(_) => {
                runtime.handle(app, Msg::Tick).unwrap();
            }
        }
        if !app.run.status.is_active() && rx.try_recv().is_err() {
            // One more tick collects the thread if the stream closed.
            runtime.handle(app, Msg::Tick).unwrap();
            return;
        }
    }
}

#[test]
fn launch_trains_on_its_own_thread_and_reports_through_events() {
    let (tx, rx) = mpsc::channel();
    let mut runtime = Runtime::new(env(), tx);
    let mut app = app();
    let action = handle_key(&mut app, ch('r'));
    assert_eq!(action, Action::Launch);
    assert!(!runtime.perform(&mut app, action));
    assert_eq!(app.run.status, RunStatus::Starting);
    pump(&mut runtime, &mut app, &rx);
    assert_eq!(app.run.status, RunStatus::Finished);
    assert_eq!(app.run.rounds.len(), 5);
    assert_eq!(app.run.clients.len(), 4);
    assert!(app.log.lines().any(|l| l.starts_with("run finished")));
    assert!(app.elapsed.is_some());
    // A finished run can be launched again, from a clean dashboard.
    assert_eq!(handle_key(&mut app, ch('r')), Action::Launch);
}

/// A launcher whose run waits for its stop flag, then ends as the federation does when stopped.
fn stoppable_launch(_config: fedsa_core::Config, events: mpsc::Sender<Event>) -> RunHandle {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let join = std::thread::spawn(move || {
        let _ = events.send(Event::RunStarted {
            num_clients: 4,
            rounds: 5,
            first_round: 1,
            strategy: "fedsa".into(),
            aggregator: "fedavg".into(),
        });
        while !flag.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = events.send(Event::RunFailed {
            error: fedsa_core::Error::Stopped.to_string(),
        });
        anyhow::bail!(fedsa_core::Error::Stopped)
    });
    RunHandle { stop, join }
}

#[test]
fn x_stops_the_run_between_rounds() {
    let (tx, rx) = mpsc::channel();
    let env = TuiEnv {
        launch: Box::new(stoppable_launch),
        ..env()
    };
    let mut runtime = Runtime::new(env, tx);
    let mut app = app();
    let action = handle_key(&mut app, ch('r'));
    runtime.perform(&mut app, action);
    // Wait for RunStarted so the run is Running.
    let msg = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    runtime.handle(&mut app, msg).unwrap();
    assert_eq!(app.run.status, RunStatus::Running);
    let action = handle_key(&mut app, ch('x'));
    assert_eq!(action, Action::Stop);
    runtime.perform(&mut app, action);
    assert_eq!(app.run.status, RunStatus::Stopping);
    pump(&mut runtime, &mut app, &rx);
    assert_eq!(app.run.status, RunStatus::Stopped);
}

fn panicking_launch(_config: fedsa_core::Config, events: mpsc::Sender<Event>) -> RunHandle {
    let stop = Arc::new(AtomicBool::new(false));
    let join = std::thread::spawn(move || {
        let _ = events.send(Event::RunStarted {
            num_clients: 2,
            rounds: 3,
            first_round: 1,
            strategy: "fedsa".into(),
            aggregator: "fedavg".into(),
        });
        panic!("boom in round 1");
    });
    RunHandle { stop, join }
}

#[test]
fn a_panicking_training_thread_is_reported_not_fatal() {
    let (tx, rx) = mpsc::channel();
    let env = TuiEnv {
        launch: Box::new(panicking_launch),
        ..env()
    };
    let mut runtime = Runtime::new(env, tx);
    let mut app = app();
    runtime.perform(&mut app, Action::Launch);
    pump(&mut runtime, &mut app, &rx);
    match &app.run.status {
        RunStatus::Failed(e) => assert!(e.contains("panicked: boom in round 1"), "{e}"),
        other => panic!("expected a failed run, got {other:?}"),
    }
}

#[test]
fn save_writes_a_config_that_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("setup.toml");
    let (tx, _rx) = mpsc::channel();
    let mut runtime = Runtime::new(env(), tx);
    let mut app = App::new(tui_common::config(), path.clone());
    let rounds = fedsa_tui::tui::FIELDS
        .iter()
        .position(|f| f.key == "federation.rounds")
        .unwrap();
    app.form.set_value(rounds, "7");
    assert!(app.form.is_modified());
    runtime.perform(&mut app, Action::Save);
    assert!(!app.form.is_modified());
    let saved = fedsa_core::Config::load(&path).unwrap();
    assert_eq!(saved.federation.rounds, 7);
    assert_eq!(saved, app.form.config().unwrap());

    // An invalid setup is not saved.
    app.form.set_value(rounds, "0");
    runtime.perform(&mut app, Action::Save);
    assert!(app.notice.as_ref().is_some_and(|n| n.error));
    assert_eq!(
        fedsa_core::Config::load(&path).unwrap().federation.rounds,
        7
    );
}

#[test]
fn preview_uses_the_service_or_says_what_to_fix() {
    let (tx, _rx) = mpsc::channel();
    let mut runtime = Runtime::new(env(), tx);
    let mut app = app();
    let action = handle_key(&mut app, ch('2'));
    runtime.perform(&mut app, action);
    assert_eq!(app.preview, Preview::Ready(tui_common::preview()));

    let failing = TuiEnv {
        partition_preview: Box::new(|_| anyhow::bail!("assets/rt.csv: no such file")),
        ..env()
    };
    let (tx, _rx) = mpsc::channel();
    let mut runtime = Runtime::new(failing, tx);
    runtime.perform(&mut app, Action::Preview);
    assert_eq!(
        app.preview,
        Preview::Failed("assets/rt.csv: no such file".into())
    );
    app.form.set_value(0, "");
    runtime.perform(&mut app, Action::Preview);
    assert!(matches!(&app.preview, Preview::Failed(e) if e.contains("name")));
}

#[test]
fn loading_runs_reports_errors_in_the_footer() {
    let (tx, _rx) = mpsc::channel();
    let mut runtime = Runtime::new(env(), tx);
    let mut app = app();
    let dir = tempfile::tempdir().unwrap();
    runtime.perform(&mut app, Action::LoadRun(dir.path().join("nope")));
    assert!(
        app.notice
            .as_ref()
            .is_some_and(|n| n.error && n.text.contains("metrics.jsonl"))
    );
    assert!(app.compare.runs.is_empty());
    // FindRuns in an output folder with nothing in it says so.
    app.form.set_value(1, &dir.path().display().to_string());
    runtime.perform(&mut app, Action::FindRuns);
    assert!(app.compare.searched);
    assert!(
        app.notice
            .as_ref()
            .is_some_and(|n| n.text.contains("no run folders"))
    );
}

#[test]
fn the_loop_multiplexes_keys_and_events_and_quits() {
    let (tx, rx) = mpsc::channel();
    for e in tui_common::scripted_events(2) {
        tx.send(Msg::Fed(Box::new(e))).unwrap();
    }
    tx.send(Msg::Key(ch('3'))).unwrap();
    tx.send(Msg::Resize).unwrap();
    tx.send(Msg::Tick).unwrap();
    tx.send(Msg::Key(ch('?'))).unwrap();
    tx.send(Msg::Key(key(KeyCode::Esc))).unwrap();
    // The run is on: the first q asks, the second quits.
    tx.send(Msg::Key(ch('q'))).unwrap();
    tx.send(Msg::Key(ch('q'))).unwrap();
    let mut runtime = Runtime::new(env(), tx);
    let mut app = app();
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    run_loop(&mut terminal, &mut app, &mut runtime, &rx).unwrap();
    assert_eq!(app.screen, Screen::Train);
    assert_eq!(app.run.rounds.len(), 2);
    assert!(!app.show_help);
    // The first frame was drawn before any message.
    assert!(terminal.backend().to_string().contains("Setup"));
}

#[test]
fn the_loop_ends_with_an_error_when_input_fails() {
    let (tx, rx) = mpsc::channel();
    tx.send(Msg::InputFailed("not a terminal".into())).unwrap();
    let mut runtime = Runtime::new(env(), tx);
    let mut app = app();
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let e = run_loop(&mut terminal, &mut app, &mut runtime, &rx).unwrap_err();
    assert!(e.to_string().contains("not a terminal"), "{e}");
}
