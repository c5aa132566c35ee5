//! The pure state functions: `apply_event` folding the federation's events into the dashboard,
//! and the setup form's round trip and validation.

mod tui_common;

use fedsa_core::Event;
use fedsa_tui::tui::{ClientStatus, FIELDS, Form, RunStatus, apply_event};
use tui_common::{app, config, fake_run_events, scripted_events};

fn index(key: &str) -> usize {
    FIELDS.iter().position(|f| f.key == key).expect("field")
}

#[test]
fn events_build_the_dashboard_step_by_step() {
    let mut app = app();
    let events = scripted_events(2);
    // RunStarted, RoundStarted(1), ClientStarted(0).
    for e in &events[..3] {
        apply_event(&mut app, e);
    }
    let run = &app.run;
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!((run.num_clients, run.total_rounds), (4, 5));
    assert_eq!(run.current_round, Some(1));
    let statuses: Vec<ClientStatus> = run.clients.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [
            ClientStatus::Training,
            ClientStatus::Queued,
            ClientStatus::Idle,
            ClientStatus::Idle
        ]
    );
    assert_eq!(run.progress(), 0.0);
    apply_event(&mut app, &events[3]); // client 0 finished: half of round 1 of 5
    assert!((app.run.progress() - 0.1).abs() < 1e-9);
    assert_eq!(app.run.eta_seconds(), None, "no finished round to time yet");

    for e in &events[4..] {
        apply_event(&mut app, e);
    }
    let run = &app.run;
    assert_eq!(run.rounds.len(), 2);
    assert_eq!(run.current_round, None);
    assert!((run.progress() - 0.4).abs() < 1e-9);
    assert_eq!(run.eta_seconds(), Some(36.0), "3 rounds left at 12 s each");
    assert_eq!(run.clients[1].failures, 1, "client 1 failed in round 2");
    assert_eq!(run.clients[1].status, ClientStatus::Failed);
    assert_eq!(run.clients[2].status, ClientStatus::Trained);
    assert_eq!(run.clients[0].accuracy.len(), 2, "evaluated every round");
    assert_eq!(run.bytes_up, 3 * 3072, "the failed client sent nothing");
    assert_eq!(run.bytes_down, 4 * 3072);
    assert_eq!(run.clients[3].num_train_examples, 420);
    let log: Vec<&str> = app.log.lines().collect();
    assert!(log[0].starts_with("run started: 4 clients"), "{log:?}");
    assert!(
        log.iter()
            .any(|l| l.contains("client 1 failed: simulated crash")),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l.contains("checkpoint")), "{log:?}");
}

#[test]
fn a_stopped_run_is_not_a_failed_one() {
    let mut app = app();
    apply_event(&mut app, &scripted_events(1)[0]);
    apply_event(
        &mut app,
        &Event::RunFailed {
            error: fedsa_core::Error::Stopped.to_string(),
        },
    );
    assert_eq!(app.run.status, RunStatus::Stopped);
    apply_event(
        &mut app,
        &Event::RunFailed {
            error: "out of memory".into(),
        },
    );
    assert_eq!(app.run.status, RunStatus::Failed("out of memory".into()));
    assert!(!app.run.status.is_active());
}

#[test]
fn odd_events_do_not_panic() {
    let mut app = app();
    // Events before RunStarted, and a client beyond the announced count.
    apply_event(
        &mut app,
        &Event::ClientStarted {
            round: 1,
            client: 9,
        },
    );
    apply_event(
        &mut app,
        &Event::RoundStarted {
            round: 1,
            sampled: vec![12],
        },
    );
    assert_eq!(app.run.clients.len(), 13);
    assert_eq!(app.run.progress(), 0.0);
    let mut log = app.clone();
    for _ in 0..1500 {
        apply_event(
            &mut log,
            &Event::Log {
                message: "x".into(),
            },
        );
    }
    assert_eq!(log.log.len(), 1000, "the log is bounded");
}

#[test]
fn a_real_federation_stream_finishes_the_dashboard() {
    let mut app = app();
    app.compare.searched = true;
    let events = fake_run_events(&config());
    for e in &events {
        apply_event(&mut app, e);
    }
    let run = &app.run;
    assert_eq!(run.status, RunStatus::Finished);
    assert_eq!(run.rounds.len(), 5);
    assert!((run.progress() - 1.0).abs() < 1e-9);
    let summary = run.summary.as_ref().expect("summary");
    assert_eq!(summary.rounds, 5);
    assert!(run.clients.iter().all(|c| c.eval.is_some()));
    assert!(
        !app.compare.searched,
        "a finished run makes Compare look for runs again"
    );
    assert_eq!(
        run.bytes_up, summary.total_bytes_up,
        "byte totals add up to the run's"
    );
}

#[test]
fn the_form_writes_back_exactly_the_loaded_config() {
    let c = config();
    let form = Form::new(c.clone(), "quickstart.toml");
    assert!(form.is_valid(), "{:?}", form.config());
    assert_eq!(form.config().expect("valid"), c);
    // Also a config with every optional value set and lists of several items.
    let mut c = config();
    c.plugins = vec!["plugins/a.so".into(), "plugins/b.so".into()];
    c.adapter.target_modules = vec!["query".into(), "key".into(), "value".into()];
    c.partition.key = Some("movie_name".into());
    c.training.lr = 3e-5;
    c.partition.alpha = 0.1;
    let form = Form::new(c.clone(), "q.toml");
    assert_eq!(form.config().expect("valid"), c);
}

#[test]
fn parse_and_validation_errors_sit_on_their_field() {
    let mut form = Form::new(config(), "quickstart.toml");
    for (key, text, expect) in [
        ("adapter.rank", "eight", "not a whole number"),
        ("adapter.rank", "0", "at least 1"),
        ("training.lr", "fast", "not a number"),
        ("partition.alpha", "-1", "must be > 0"),
        ("name", "../escape", "letters, digits"),
        ("data.format", "xml", "not one of rotten_tomatoes"),
        ("device", "gpu", "neither `cpu` nor `cuda:N`"),
        ("model.path", "", "required"),
        ("federation.rounds", "0", "at least 1"),
        ("strategy.name", "fedx", "unknown strategy"),
    ] {
        let mut f = form.clone();
        f.set_value(index(key), text);
        let error = f.error(index(key)).unwrap_or_default().to_string();
        assert!(error.contains(expect), "{key} = {text:?}: {error:?}");
        assert!(!f.is_valid());
        assert!(f.config().is_err_and(|e| e.contains(key)));
    }
    // Key partitioning without a key: the key field shows it.
    form.set_value(index("partition.kind"), "key");
    assert!(form.error(index("partition.key")).is_some());
    form.set_value(index("partition.key"), "movie_name");
    assert!(form.is_valid());
}

#[test]
fn a_custom_strategy_can_switch_to_a_builtin_and_back() {
    let text = format!(
        "{}\n[strategy]\nname = \"custom\"\n[strategy.roles]\na = {{ train = true, share = false }}\nb = {{ train = true, share = true }}\nhead = {{ train = true, share = false }}\n",
        tui_common::CONFIG
    );
    let custom = fedsa_core::Config::from_toml_str(&text, "custom.toml").unwrap();
    let mut form = Form::new(custom.clone(), "custom.toml");
    assert!(form.is_valid());
    form.set_value(index("strategy.name"), "fedit");
    assert!(form.is_valid(), "{:?}", form.config());
    assert_eq!(form.config().unwrap().strategy.roles, None);
    form.set_value(index("strategy.name"), "custom");
    assert_eq!(form.config().unwrap(), custom);
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_needs_a_cuda_build() {
    let mut form = Form::new(config(), "quickstart.toml");
    form.set_value(index("device"), "cuda:0");
    assert!(
        form.error(index("device"))
            .is_some_and(|e| e.contains("--features cuda"))
    );
}

#[test]
fn errors_about_keys_the_form_hides_are_shown_apart() {
    let mut c = config();
    c.training.batch_size = 0;
    let form = Form::new(c, "quickstart.toml");
    assert!(!form.is_valid());
    let general = form.general_error().expect("general error");
    assert!(general.contains("training.batch_size"), "{general}");
}
