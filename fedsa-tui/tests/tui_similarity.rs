//! The A/B similarity screen: reached from Compare (`s`) or with `5`, it asks the loop to
//! analyse the selected run (or the setup's run folder), scrolls, goes back, and draws a report
//! with its means, bars and notes; a folder that cannot be analysed shows why.

mod tui_common;

use std::path::PathBuf;
use std::sync::mpsc;

use fedsa_core::Role;
use fedsa_engine::analysis::{Measures, ModuleRow, TensorSimilarity};
use fedsa_engine::analyze::{AnalysisReport, Measured};
use fedsa_engine::runs::RunHistory;
use fedsa_tui::tui::{Action, App, Runtime, Screen, handle_key};
use insta::assert_snapshot;
use ratatui::crossterm::event::KeyCode;
use tui_common::{app, ch, key, render};

fn m(cosine: f64, subspace: f64) -> Measures {
    Measures { cosine, subspace }
}

/// A 2-layer report where A is more alike than B, as the paper finds.
fn report() -> AnalysisReport {
    let modules: Vec<ModuleRow> = [
        (0, "query", m(0.62, 0.71), m(0.08, 0.22)),
        (0, "value", m(0.55, 0.66), m(-0.12, 0.19)),
        (1, "query", m(0.48, 0.58), m(0.05, 0.25)),
        (1, "value", m(0.41, 0.52), m(0.02, 0.18)),
    ]
    .into_iter()
    .map(|(layer, short, a, b)| ModuleRow {
        module: format!("encoder.layer.{layer}.attention.self.{short}"),
        layer: Some(layer),
        short: short.into(),
        a: Some(a),
        b: Some(b),
    })
    .collect();
    let tensors = modules
        .iter()
        .flat_map(|row| {
            [(Role::A, row.a), (Role::B, row.b)].map(|(role, s)| TensorSimilarity {
                module: row.module.clone(),
                tensor: String::new(),
                role,
                cosine: s.unwrap().cosine,
                subspace: s.unwrap().subspace,
            })
        })
        .collect();
    AnalysisReport {
        run: "local".into(),
        path: "runs/local".into(),
        strategy: "local".into(),
        adapter: "lora".into(),
        round: 5,
        measured: Measured::Checkpoint,
        num_clients: 4,
        mean_a: Some(m(0.515, 0.6175)),
        mean_b: Some(m(0.0075, 0.21)),
        modules,
        tensors,
        notes: Vec::new(),
    }
}

fn curves(name: &str) -> RunHistory {
    RunHistory {
        name: name.into(),
        path: PathBuf::from("runs").join(name),
        strategy: Some("local".into()),
        rounds: Vec::new(),
        clients: Vec::new(),
        ..RunHistory::default()
    }
}

fn showing(report: AnalysisReport) -> App {
    let mut app = app();
    app.screen = Screen::Similarity;
    app.similarity.set(report.path.clone(), Ok(report));
    app
}

#[test]
fn similarity_80x24() {
    assert_snapshot!(render(&showing(report()), 80, 24));
}

#[test]
fn similarity_wide_with_a_note() {
    let mut r = report();
    r.strategy = "fedit".into();
    r.notes = vec![
        "`fedit` shares A: every client holds the same aggregated A at a checkpoint, so its \
         similarity is 1 by construction (--from local-round measures the clients' own updates)"
            .into(),
    ];
    assert_snapshot!(render(&showing(r), 140, 40));
}

#[test]
fn similarity_error_80x24() {
    let mut app = app();
    app.screen = Screen::Similarity;
    app.similarity.set(
        "runs/quickstart".into(),
        Err("runs/quickstart is not a fedsa run folder (no config.toml)".into()),
    );
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn s_on_compare_analyses_the_selected_run_and_esc_goes_back() {
    let mut app = app();
    app.screen = Screen::Compare;
    app.compare.searched = true;
    app.compare.add(curves("fedit"));
    app.compare.add(curves("local"));
    handle_key(&mut app, key(KeyCode::Up));
    assert_eq!(
        handle_key(&mut app, ch('s')),
        Action::Analyze(PathBuf::from("runs/fedit"))
    );
    assert_eq!(app.screen, Screen::Similarity);
    // Once analysed, coming back does not analyse again; `u` does.
    app.similarity.set("runs/fedit".into(), Ok(report()));
    handle_key(&mut app, key(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Compare);
    assert_eq!(handle_key(&mut app, ch('s')), Action::None);
    assert_eq!(
        handle_key(&mut app, ch('u')),
        Action::Analyze(PathBuf::from("runs/fedit"))
    );
}

#[test]
fn five_analyses_the_setups_run_folder_when_no_run_is_loaded() {
    let mut app = app();
    assert_eq!(
        handle_key(&mut app, ch('5')),
        Action::Analyze(PathBuf::from("runs").join("quickstart"))
    );
    assert_eq!(app.screen, Screen::Similarity);
}

#[test]
fn tabs_leave_the_similarity_screen_for_its_neighbours() {
    assert_eq!(Screen::Similarity.step(1), Screen::Setup);
    assert_eq!(Screen::Similarity.step(-1), Screen::Compare);
    let mut app = showing(report());
    handle_key(&mut app, key(KeyCode::Tab));
    assert_eq!(app.screen, Screen::Setup);
    // The tab cycle itself is unchanged.
    assert_eq!(Screen::Compare.step(1), Screen::Setup);
}

#[test]
fn scrolling_stays_within_the_modules() {
    let mut app = showing(report());
    handle_key(&mut app, key(KeyCode::End));
    assert_eq!(app.similarity.offset, 3);
    handle_key(&mut app, key(KeyCode::Down));
    assert_eq!(app.similarity.offset, 3);
    handle_key(&mut app, key(KeyCode::Home));
    assert_eq!(app.similarity.offset, 0);
}

#[test]
fn analysing_a_folder_that_is_not_a_run_shows_why() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, _rx) = mpsc::channel();
    let mut runtime = Runtime::new(tui_common::env(), tx);
    let mut app = app();
    app.screen = Screen::Similarity;
    runtime.perform(&mut app, Action::Analyze(dir.path().to_path_buf()));
    let Some(Err(e)) = &app.similarity.report else {
        panic!("expected an error, got {:?}", app.similarity.report);
    };
    assert!(e.contains("not a fedsa run folder"), "{e}");
    assert_eq!(app.similarity.path.as_deref(), Some(dir.path()));
}
