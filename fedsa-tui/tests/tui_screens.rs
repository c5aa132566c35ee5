//! Snapshots of every screen on an 80x24 terminal and a larger one, drawn with ratatui's
//! `TestBackend` from synthetic events or a fake-client federation; times are masked.

mod tui_common;

use std::path::PathBuf;
use std::time::Duration;

use fedsa_engine::runs::RunHistory;
use fedsa_tui::tui::{
    App, ClientPreviewRow, ClientsPreview, FIELDS, Preview, Screen, apply_event, handle_key,
};
use insta::assert_snapshot;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::Rect;
use ratatui::widgets::Widget;
use tui_common::{
    app, ch, client_records, config, fake_run_events, key, render, round_record, scripted_events,
    scripted_sample,
};

const WIDE: (u16, u16) = (140, 40);

fn index(k: &str) -> usize {
    FIELDS.iter().position(|f| f.key == k).expect("field")
}

#[test]
fn setup_80x24() {
    assert_snapshot!(render(&app(), 80, 24));
}

#[test]
fn setup_with_errors_in_place_80x24() {
    let mut app = app();
    app.form
        .set_value(index("federation.clients_per_round"), "9");
    app.form.set_value(index("adapter.rank"), "eight");
    app.form.select(index("federation.clients_per_round"));
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn setup_editing_scrolled_80x24() {
    let mut app = app();
    app.form.select(index("training.lr"));
    handle_key(&mut app, key(KeyCode::Enter));
    handle_key(&mut app, key(KeyCode::Backspace));
    handle_key(&mut app, ch('1'));
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn setup_wide() {
    let mut app = app();
    app.form.select(index("strategy.name"));
    assert_snapshot!(render(&app, WIDE.0, WIDE.1));
}

#[test]
fn clients_80x24() {
    let mut app = app();
    app.screen = Screen::Clients;
    app.set_preview(Ok(tui_common::preview()));
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn clients_many_labels_wide() {
    let mut app = app();
    app.screen = Screen::Clients;
    let labels = 8;
    app.set_preview(Ok(ClientsPreview {
        label_names: (0..labels).map(|l| format!("topic-{l}")).collect(),
        clients: (0..12)
            .map(|c| {
                let hist: Vec<usize> = (0..labels).map(|l| (c * 7 + l * 13) % 50 + 1).collect();
                let train = hist.iter().sum();
                ClientPreviewRow {
                    train,
                    test: train / 4,
                    train_hist: hist,
                }
            })
            .collect(),
    }));
    assert_snapshot!(render(&app, WIDE.0, WIDE.1));
}

#[test]
fn clients_failed_preview_80x24() {
    let mut app = app();
    app.screen = Screen::Clients;
    app.set_preview(Err(
        "assets/rotten_tomatoes.csv: No such file or directory (run scripts/fetch-assets)".into(),
    ));
    assert_snapshot!(render(&app, 80, 24));
}

/// Three clients of ranks 4, 8 and 16 (the run's rank is 8): the two that differ are marked,
/// the cursor is on client 2's rank, and the core's refusal of differing ranks under FedSA
/// shows under the table.
fn per_client_ranks() -> App {
    let mut c = config();
    c.federation.num_clients = 3;
    c.clients.rank = Some(vec![4, 8, 16]);
    let mut app = App::new(c, PathBuf::from("quickstart.toml"));
    app.screen = Screen::Clients;
    let mut preview = tui_common::preview();
    preview.clients.truncate(3);
    app.set_preview(Ok(preview));
    handle_key(&mut app, key(KeyCode::End));
    app
}

#[test]
fn clients_per_client_ranks_80x24() {
    assert_snapshot!(render(&per_client_ranks(), 80, 24));
}

#[test]
fn clients_per_client_ranks_wide() {
    assert_snapshot!(render(&per_client_ranks(), WIDE.0, WIDE.1));
}

/// Before the partition is computed the settings alone are listed and editable; a run that
/// trains local epochs shows them in place of steps. Client 1 has a batch of its own.
#[test]
fn clients_settings_before_the_partition_with_epochs_80x24() {
    let mut c = config();
    c.training.local_epochs = Some(3);
    c.clients.batch_size = Some(vec![16, 32, 16, 16]);
    let mut app = App::new(c, PathBuf::from("quickstart.toml"));
    app.screen = Screen::Clients;
    handle_key(&mut app, key(KeyCode::Down));
    handle_key(&mut app, key(KeyCode::Right));
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn train_idle_80x24() {
    let mut app = app();
    app.screen = Screen::Train;
    assert_snapshot!(render(&app, 80, 24));
}

/// Two rounds done, the third under way with its first client training.
fn mid_run() -> App {
    let mut app = app();
    app.screen = Screen::Train;
    let mut events = scripted_events(2);
    events.push(fedsa_core::Event::RoundStarted {
        round: 3,
        sampled: scripted_sample(3),
    });
    events.push(fedsa_core::Event::ClientStarted {
        round: 3,
        client: scripted_sample(3)[0],
    });
    for e in &events {
        apply_event(&mut app, e);
    }
    app.elapsed = Some(Duration::from_secs(29));
    app
}

#[test]
fn train_running_80x24() {
    assert_snapshot!(render(&mid_run(), 80, 24));
}

#[test]
fn train_running_wide() {
    assert_snapshot!(render(&mid_run(), WIDE.0, WIDE.1));
}

/// A differentially private run: the info line carries the privacy spent after the last round,
/// and each round's log line its own.
#[test]
fn train_shows_the_privacy_spent() {
    let mut app = app();
    app.screen = Screen::Train;
    for mut event in scripted_events(2) {
        if let fedsa_core::Event::RoundFinished { record, .. } = &mut event {
            record.privacy = Some(fedsa_core::PrivacySpent {
                epsilon: 1.5 * record.round as f64,
                delta: 1e-5,
                releases: record.round,
            });
        }
        apply_event(&mut app, &event);
    }
    let screen = render(&app, WIDE.0, WIDE.1);
    assert!(screen.contains("privacy ε 3.00 (δ 1e-5)"), "{screen}");
    assert!(screen.contains("loss 0.5975  ε 1.50"), "{screen}");
    // Without [privacy] nothing of it is drawn.
    assert!(!render(&mid_run(), WIDE.0, WIDE.1).contains("privacy"));
}

#[test]
fn train_finished_fake_federation_80x24() {
    let mut app = app();
    app.screen = Screen::Train;
    for e in &fake_run_events(&config()) {
        apply_event(&mut app, e);
    }
    app.elapsed = Some(Duration::from_secs(61));
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn train_failed_80x24() {
    let mut app = mid_run();
    apply_event(
        &mut app,
        &fedsa_core::Event::RunFailed {
            error: "aggregator `fedavg`: round 3: the aggregate is not finite".into(),
        },
    );
    assert_snapshot!(render(&app, 80, 24));
}

/// Three runs as the paper compares them: FedSA ahead of FedIT and FFA-LoRA.
fn compared() -> App {
    let mut app = app();
    app.screen = Screen::Compare;
    app.compare.searched = true;
    for (name, lift) in [("fedsa", 0.06), ("fedit", 0.03), ("ffa", 0.0)] {
        let mut rounds = Vec::new();
        let mut clients = Vec::new();
        for round in 1..=5 {
            let mut records = client_records(round, 4, &scripted_sample(round), &[]);
            for r in &mut records {
                if let Some(e) = &mut r.eval {
                    e.accuracy += lift;
                    e.loss -= lift;
                    // Unequal test splits: the example-weighted mean differs from the plain.
                    e.num_examples = 100 + 50 * r.client;
                }
            }
            rounds.push(round_record(round, &records));
            clients.extend(records);
        }
        app.compare.add(RunHistory {
            name: format!("{name}-alpha0.5"),
            path: PathBuf::from("runs").join(format!("{name}-alpha0.5")),
            strategy: Some(name.into()),
            rounds,
            clients,
            ..RunHistory::default()
        });
    }
    app.compare.selected = 0;
    app
}

#[test]
fn compare_80x24() {
    assert_snapshot!(render(&compared(), 80, 24));
}

#[test]
fn compare_wide() {
    assert_snapshot!(render(&compared(), WIDE.0, WIDE.1));
}

#[test]
fn compare_empty_with_prompt_80x24() {
    let mut app = app();
    app.screen = Screen::Compare;
    app.compare.searched = true;
    handle_key(&mut app, ch('a'));
    for c in "runs/fedsa".chars() {
        handle_key(&mut app, ch(c));
    }
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn help_overlay_80x24() {
    let mut app = mid_run();
    handle_key(&mut app, ch('?'));
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn quit_confirmation_in_the_footer_80x24() {
    let mut app = mid_run();
    handle_key(&mut app, ch('q'));
    assert_snapshot!(render(&app, 80, 24));
}

/// Every screen, with and without help, on terminals far too small: nothing may panic, and
/// the tab bar still says where the user is.
#[test]
fn tiny_terminals_do_not_panic() {
    let mut busy = compared();
    for e in &scripted_events(3) {
        apply_event(&mut busy, e);
    }
    busy.set_preview(Ok(tui_common::preview()));
    for screen in Screen::ALL {
        for help in [false, true] {
            busy.screen = screen;
            busy.show_help = help;
            for (w, h) in [(20, 5), (1, 1), (80, 3), (12, 40)] {
                let text = render(&busy, w, h);
                if (w, h) == (20, 5) && !help {
                    assert!(text.contains("1 Setup"), "{text}");
                }
            }
            // TestBackend cannot be 0 wide; a zero-sized buffer can.
            let mut buf = Buffer::empty(Rect::ZERO);
            (&busy).render(Rect::ZERO, &mut buf);
        }
    }
    busy.show_help = false;
    // The Clients screen's settings alone, before the partition and after it failed.
    busy.screen = Screen::Clients;
    for preview in [Preview::Stale, Preview::Failed("no data".into())] {
        busy.preview = preview;
        for (w, h) in [(20, 5), (1, 1), (80, 3), (12, 40)] {
            render(&busy, w, h);
        }
        (&busy).render(Rect::ZERO, &mut Buffer::empty(Rect::ZERO));
    }
    busy.screen = Screen::Train;
    assert_snapshot!(render(&busy, 20, 5));
}
