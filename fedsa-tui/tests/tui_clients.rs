//! Per-client settings on the Clients screen: keys move a cursor over each client's rank, steps
//! and batch size and change them; the form's `[clients]` lists follow (written on the first
//! edit, unset once all run-wide again, fitted to the client count) and reach the saved and the
//! launched config; a setup the core refuses shows why.

mod tui_common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use fedsa_core::Config;
use fedsa_tui::tui::{
    Action, App, ClientField, FIELDS, Preview, Runtime, Screen, TuiEnv, handle_key,
};
use ratatui::crossterm::event::KeyCode;
use tui_common::{ch, config, env, key, render};

fn index(k: &str) -> usize {
    FIELDS.iter().position(|f| f.key == k).expect("field")
}

/// The quickstart with `n` clients (2 per round) on the Clients screen, its partition computed.
fn clients_app(n: usize) -> App {
    let mut c = config();
    c.federation.num_clients = n;
    let mut app = App::new(c, "quickstart.toml".into());
    app.screen = Screen::Clients;
    let mut preview = tui_common::preview();
    preview.clients.resize(n, preview.clients[0].clone());
    app.set_preview(Ok(preview));
    app
}

fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        handle_key(app, ch(c));
    }
}

fn ranks(app: &App) -> Option<Vec<usize>> {
    app.form.assembled().clients.rank
}

#[test]
fn plus_raises_the_selected_clients_rank_and_writes_the_whole_list() {
    let mut app = clients_app(3);
    let default = app.form.assembled().adapter.rank;
    assert_eq!(default, 8);
    assert_eq!(ranks(&app), None);
    handle_key(&mut app, key(KeyCode::Down));
    assert_eq!(handle_key(&mut app, ch('+')), Action::None);
    assert_eq!(ranks(&app), Some(vec![default, default + 1, default]));
    // `=` is `+` without shift.
    press(&mut app, "=");
    assert_eq!(ranks(&app), Some(vec![8, 10, 8]));
    let assembled = app.form.assembled();
    assert_eq!(assembled.clients.local_steps, None, "only the rank changed");
    assert_eq!(assembled.clients.batch_size, None);
    assert_eq!(assembled.client_adapter(1).rank, 10);
    assert!(app.form.is_modified(), "quitting now asks first");
    assert!(
        matches!(app.preview, Preview::Ready(_)),
        "a client's rank does not change the partition"
    );
}

#[test]
fn left_and_right_pick_the_setting_and_each_list_is_its_own() {
    let mut app = clients_app(3);
    assert_eq!(app.clients_cursor.field, ClientField::Rank);
    handle_key(&mut app, key(KeyCode::Left));
    assert_eq!(
        app.clients_cursor.field,
        ClientField::Rank,
        "stops at the first"
    );
    handle_key(&mut app, key(KeyCode::Right));
    assert_eq!(app.clients_cursor.field, ClientField::Steps);
    press(&mut app, "+");
    handle_key(&mut app, key(KeyCode::Right));
    handle_key(&mut app, key(KeyCode::Right));
    assert_eq!(
        app.clients_cursor.field,
        ClientField::Batch,
        "stops at the last"
    );
    handle_key(&mut app, key(KeyCode::End));
    press(&mut app, "--");
    let c = app.form.assembled();
    assert_eq!(c.clients.rank, None);
    assert_eq!(c.clients.local_steps, Some(vec![21, 20, 20]));
    assert_eq!(c.clients.batch_size, Some(vec![16, 16, 14]));
    assert_eq!(c.client_training(2).batch_size, 14);
}

#[test]
fn minus_never_goes_below_one() {
    let mut app = clients_app(3);
    press(&mut app, &"-".repeat(20));
    assert_eq!(ranks(&app), Some(vec![1, 8, 8]));
    // `_` is `-` with shift; the batch size stops at 1 as well.
    handle_key(&mut app, key(KeyCode::Right));
    handle_key(&mut app, key(KeyCode::Right));
    press(&mut app, &"_".repeat(40));
    assert_eq!(
        app.form.assembled().clients.batch_size,
        Some(vec![1, 16, 16])
    );
    assert!(app.form.assembled().validate("t").is_err_and(|e| {
        let e = e.to_string();
        e.contains("clients.rank") && !e.contains("is 0")
    }));
}

#[test]
fn reset_and_lowering_back_unset_a_list_of_only_run_wide_values() {
    let mut app = clients_app(3);
    handle_key(&mut app, key(KeyCode::Down));
    press(&mut app, "+");
    handle_key(&mut app, key(KeyCode::Down));
    press(&mut app, "++");
    assert_eq!(ranks(&app), Some(vec![8, 9, 10]));
    press(&mut app, "d");
    assert_eq!(ranks(&app), Some(vec![8, 9, 8]));
    handle_key(&mut app, key(KeyCode::Up));
    handle_key(&mut app, key(KeyCode::Delete));
    assert_eq!(ranks(&app), None, "every client is back at the run's rank");
    assert_eq!(
        app.form.clients().rank,
        None,
        "the form keeps no list either"
    );
    // Raising and lowering again also ends unset; the saved config would have no [clients].
    press(&mut app, "+-");
    assert_eq!(ranks(&app), None);
    assert!(app.form.is_valid(), "{:?}", app.form.config());
    let text = app.form.config().unwrap().to_toml_string().unwrap();
    assert!(!text.contains("[clients]"), "{text}");
}

#[test]
fn the_run_wide_value_counts_as_it_is_when_the_list_is_written() {
    let mut app = clients_app(3);
    handle_key(&mut app, key(KeyCode::Down));
    press(&mut app, "+");
    // A later run-wide rank leaves the written clients as they are; an unset client follows.
    app.form.set_value(index("adapter.rank"), "4");
    assert_eq!(ranks(&app), Some(vec![8, 9, 8]));
    app.form.set_value(index("federation.num_clients"), "4");
    assert_eq!(ranks(&app), Some(vec![8, 9, 8, 4]));
}

#[test]
fn a_changed_client_count_fits_the_lists_without_panic() {
    let mut app = clients_app(4);
    handle_key(&mut app, key(KeyCode::Down));
    press(&mut app, "+");
    handle_key(&mut app, key(KeyCode::End));
    press(&mut app, "++++");
    assert_eq!(ranks(&app), Some(vec![8, 9, 8, 12]));
    let clients = index("federation.num_clients");
    let per_round = index("federation.clients_per_round");

    // Fewer clients drop the last ones' values; the partition is older than the count now.
    app.form.set_value(clients, "2");
    assert_eq!(ranks(&app), Some(vec![8, 9]));
    assert!(
        app.form
            .config()
            .unwrap_err()
            .contains("clients.rank: the clients' ranks differ")
    );
    render(&app, 80, 24);
    press(&mut app, "+");
    assert!(
        app.notice
            .as_ref()
            .is_some_and(|n| n.error && n.text.contains("recomputes")),
        "client 3 of an old partition is refused: {:?}",
        app.notice
    );
    assert_eq!(ranks(&app), Some(vec![8, 9]));
    app.preview = Preview::Stale;
    assert_eq!(app.form.assembled().clients.rank.unwrap().len(), 2);
    render(&app, 80, 24);
    // One client with the run's rank: no list at all.
    app.form.set_value(per_round, "1");
    app.form.set_value(clients, "1");
    assert_eq!(ranks(&app), None);
    assert!(app.form.is_valid(), "{:?}", app.form.config());

    // More clients take the run-wide value; the ones set before come back with theirs.
    app.form.set_value(per_round, "2");
    app.form.set_value(clients, "6");
    assert_eq!(ranks(&app), Some(vec![8, 9, 8, 12, 8, 8]));
    handle_key(&mut app, key(KeyCode::End));
    assert_eq!(
        app.clients_cursor.row, 5,
        "rows follow the count while stale"
    );
    press(&mut app, "-");
    assert_eq!(ranks(&app), Some(vec![8, 9, 8, 12, 8, 7]));
    render(&app, 80, 24);

    // A count far too large for a list per client: nothing is allocated, the list is left as
    // it is and validation names it; the keys refuse to edit.
    app.form.set_value(clients, "1000000000000");
    let error = app.form.config().unwrap_err();
    assert!(error.contains("clients.rank"), "{error}");
    handle_key(&mut app, key(KeyCode::End));
    press(&mut app, "+");
    assert!(app.notice.as_ref().is_some_and(|n| n.error));
    render(&app, 80, 24);
    render(&app, 140, 40);
    app.form.set_value(clients, "0");
    render(&app, 80, 24);
    press(&mut app, "+d");
}

#[test]
fn with_local_epochs_steps_are_shown_as_epochs_and_not_edited() {
    let mut c = config();
    c.training.local_epochs = Some(2);
    let mut app = App::new(c, "quickstart.toml".into());
    app.screen = Screen::Clients;
    app.set_preview(Ok(tui_common::preview()));
    handle_key(&mut app, key(KeyCode::Right));
    assert_eq!(
        app.clients_cursor.field,
        ClientField::Batch,
        "steps are skipped"
    );
    press(&mut app, "+");
    handle_key(&mut app, key(KeyCode::Left));
    assert_eq!(app.clients_cursor.field, ClientField::Rank);
    let c = app.form.assembled();
    assert_eq!(c.clients.local_steps, None);
    assert_eq!(c.clients.batch_size, Some(vec![17, 16, 16, 16]));
    let screen = render(&app, 80, 24);
    assert!(screen.contains("Epochs"), "{screen}");
    assert!(
        screen.contains("run-wide: rank 8, 2 epochs, batch 16"),
        "{screen}"
    );
}

/// An env whose launcher records the config it was given, then trains fake clients.
fn recording_env() -> (TuiEnv, Arc<Mutex<Option<Config>>>) {
    let launched = Arc::new(Mutex::new(None));
    let record = Arc::clone(&launched);
    let env = TuiEnv {
        launch: Box::new(move |config, events| {
            *record.lock().unwrap() = Some(config.clone());
            tui_common::fake_launch(config, events)
        }),
        ..env()
    };
    (env, launched)
}

#[test]
fn per_client_values_are_saved_and_launched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("setup.toml");
    let (env, launched) = recording_env();
    let (tx, _rx) = mpsc::channel();
    let mut runtime = Runtime::new(env, tx);
    let mut app = App::new(config(), path.clone());
    app.screen = Screen::Clients;
    app.set_preview(Ok(tui_common::preview()));
    // Client 2 takes 5 more steps, client 3 a batch of 8.
    handle_key(&mut app, key(KeyCode::Right));
    handle_key(&mut app, key(KeyCode::Down));
    handle_key(&mut app, key(KeyCode::Down));
    press(&mut app, "+++++");
    handle_key(&mut app, key(KeyCode::Right));
    handle_key(&mut app, key(KeyCode::Down));
    press(&mut app, &"-".repeat(8));

    let action = handle_key(&mut app, tui_common::ctrl('s'));
    runtime.perform(&mut app, action);
    assert!(!app.form.is_modified(), "{:?}", app.notice);
    let saved = Config::load(&path).unwrap();
    assert_eq!(saved.clients.local_steps, Some(vec![20, 20, 25, 20]));
    assert_eq!(saved.clients.batch_size, Some(vec![16, 16, 16, 8]));
    assert_eq!(saved.clients.rank, None);
    assert_eq!(saved, app.form.config().unwrap());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("[clients]"), "{text}");

    let action = handle_key(&mut app, ch('r'));
    assert_eq!(action, Action::Launch);
    runtime.perform(&mut app, action);
    let config = launched.lock().unwrap().clone().expect("launched");
    assert_eq!(config.client_training(2).local_steps, 25);
    assert_eq!(config.client_training(3).batch_size, 8);
    runtime.shutdown();
}

#[test]
fn clients_of_different_ranks_are_refused_as_the_core_says() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("setup.toml");
    let (env, launched) = recording_env();
    let (tx, _rx) = mpsc::channel();
    let mut runtime = Runtime::new(env, tx);
    let mut app = App::new(config(), path.clone());
    app.screen = Screen::Clients;
    app.set_preview(Ok(tui_common::preview()));
    press(&mut app, "+");
    // The form's own validation (the core's) says why, and the screen shows it.
    let error = app.form.config().unwrap_err();
    assert!(error.starts_with("clients.rank: "), "{error}");
    assert!(render(&app, 80, 24).contains("✗ clients.rank"));
    // Launching and saving are refused with it, as for any other invalid setup.
    assert_eq!(handle_key(&mut app, ch('r')), Action::None);
    let notice = app.notice.clone().unwrap();
    assert!(
        notice.error && notice.text.contains("clients.rank"),
        "{notice:?}"
    );
    assert_eq!(app.screen, Screen::Setup);
    assert!(
        app.form
            .general_error()
            .is_some_and(|e| e.contains("clients.rank"))
    );
    runtime.perform(&mut app, Action::Launch);
    runtime.perform(&mut app, Action::Save);
    assert!(launched.lock().unwrap().is_none(), "nothing was launched");
    assert!(!path.exists(), "nothing was saved");
    // The partition preview needs a valid setup too: it fails naming the rank, and the
    // settings stay in view and editable there.
    runtime.perform(&mut app, Action::Preview);
    assert!(matches!(&app.preview, Preview::Failed(e) if e.contains("clients.rank")));
    app.screen = Screen::Clients;
    assert!(render(&app, 80, 24).contains("9*"));
    press(&mut app, "d");
    assert!(app.form.is_valid(), "{:?}", app.form.config());
}
