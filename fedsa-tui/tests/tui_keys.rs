//! Key handling as a pure function: every binding, and that keys never do I/O themselves.

mod tui_common;

use fedsa_tui::tui::{Action, Preview, RunStatus, Screen, apply_event, handle_key};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tui_common::{app, ch, ctrl, key, scripted_events};

fn field_index(k: &str) -> usize {
    fedsa_tui::tui::FIELDS
        .iter()
        .position(|f| f.key == k)
        .expect("field exists")
}

#[test]
fn tab_and_digits_switch_screens_and_ask_for_missing_data() {
    let mut app = app();
    assert_eq!(app.screen, Screen::Setup);
    assert_eq!(handle_key(&mut app, key(KeyCode::Tab)), Action::Preview);
    assert_eq!(app.screen, Screen::Clients);
    assert_eq!(handle_key(&mut app, key(KeyCode::Tab)), Action::None);
    assert_eq!(app.screen, Screen::Train);
    assert_eq!(handle_key(&mut app, key(KeyCode::Tab)), Action::FindRuns);
    assert_eq!(app.screen, Screen::Compare);
    assert_eq!(handle_key(&mut app, key(KeyCode::Tab)), Action::None);
    assert_eq!(app.screen, Screen::Setup);
    handle_key(&mut app, key(KeyCode::BackTab));
    assert_eq!(app.screen, Screen::Compare);
    handle_key(&mut app, ch('3'));
    assert_eq!(app.screen, Screen::Train);
    // Once searched, entering Compare again does not search again.
    app.compare.searched = true;
    assert_eq!(handle_key(&mut app, ch('4')), Action::None);
    // Once computed, the preview is not recomputed on entry.
    app.preview = Preview::Failed("x".into());
    assert_eq!(handle_key(&mut app, ch('2')), Action::None);
}

#[test]
fn quit_is_immediate_when_nothing_would_be_lost() {
    let mut app = app();
    assert_eq!(handle_key(&mut app, ch('q')), Action::Quit);
    assert_eq!(handle_key(&mut app, ctrl('c')), Action::Quit);
}

#[test]
fn quit_asks_again_while_a_run_is_on_and_esc_stays() {
    let mut app = app();
    apply_event(&mut app, &scripted_events(1)[0]);
    assert_eq!(app.run.status, RunStatus::Running);
    assert_eq!(handle_key(&mut app, ch('q')), Action::None);
    assert!(app.confirm_quit);
    assert!(app.notice.as_ref().is_some_and(|n| n.error));
    assert_eq!(handle_key(&mut app, key(KeyCode::Esc)), Action::None);
    assert!(!app.confirm_quit);
    handle_key(&mut app, ch('q'));
    assert_eq!(handle_key(&mut app, ch('q')), Action::Quit);
    // Ctrl-C never asks.
    let mut app2 = tui_common::app();
    apply_event(&mut app2, &scripted_events(1)[0]);
    assert_eq!(handle_key(&mut app2, ctrl('c')), Action::Quit);
}

#[test]
fn quit_asks_again_with_unsaved_edits() {
    let mut app = app();
    handle_key(&mut app, key(KeyCode::Down));
    handle_key(&mut app, key(KeyCode::Enter));
    handle_key(&mut app, ch('x'));
    handle_key(&mut app, key(KeyCode::Enter));
    assert!(app.form.is_modified());
    assert_eq!(handle_key(&mut app, ch('q')), Action::None);
    assert_eq!(handle_key(&mut app, ch('q')), Action::Quit);
}

#[test]
fn setup_selection_moves_and_clamps() {
    let mut app = app();
    handle_key(&mut app, key(KeyCode::Up));
    assert_eq!(app.form.selected(), 0);
    handle_key(&mut app, key(KeyCode::Down));
    handle_key(&mut app, ch('j'));
    assert_eq!(app.form.selected(), 2);
    handle_key(&mut app, ch('k'));
    assert_eq!(app.form.selected(), 1);
    handle_key(&mut app, key(KeyCode::End));
    assert_eq!(app.form.selected(), app.form.len() - 1);
    handle_key(&mut app, key(KeyCode::PageDown));
    assert_eq!(app.form.selected(), app.form.len() - 1);
    handle_key(&mut app, key(KeyCode::Home));
    assert_eq!(app.form.selected(), 0);
}

#[test]
fn editing_a_field_types_applies_and_revalidates() {
    let mut app = app();
    app.form.select(field_index("federation.clients_per_round"));
    app.preview = Preview::Failed("old".into());
    handle_key(&mut app, key(KeyCode::Enter));
    assert_eq!(app.form.editing(), Some("2"));
    // While editing, global keys are text.
    for c in ['q', '9'] {
        assert_eq!(handle_key(&mut app, ch(c)), Action::None);
    }
    assert_eq!(app.form.editing(), Some("2q9"));
    handle_key(&mut app, key(KeyCode::Backspace));
    handle_key(&mut app, key(KeyCode::Backspace));
    handle_key(&mut app, ch('9'));
    handle_key(&mut app, key(KeyCode::Enter));
    assert_eq!(app.form.editing(), None);
    let i = field_index("federation.clients_per_round");
    assert_eq!(app.form.value(i), "29");
    let error = app.form.error(i).expect("29 of 4 clients is an error");
    assert!(error.contains("between 1 and"), "{error}");
    assert_eq!(
        app.preview,
        Preview::Stale,
        "an edit invalidates the partition"
    );
    // Fix it; ctrl-u clears the text.
    handle_key(&mut app, key(KeyCode::Enter));
    handle_key(&mut app, ctrl('u'));
    handle_key(&mut app, ch('3'));
    handle_key(&mut app, key(KeyCode::Enter));
    assert_eq!(app.form.error(i), None);
    assert!(app.form.is_valid());
}

#[test]
fn esc_cancels_an_edit() {
    let mut app = app();
    handle_key(&mut app, key(KeyCode::Enter));
    handle_key(&mut app, ch('!'));
    handle_key(&mut app, key(KeyCode::Esc));
    assert_eq!(app.form.editing(), None);
    assert_eq!(app.form.value(0), "quickstart");
    assert!(!app.form.is_modified());
}

#[test]
fn arrows_cycle_the_choices_of_choice_fields_only() {
    let mut app = app();
    let strategy = field_index("strategy.name");
    app.form.select(strategy);
    handle_key(&mut app, key(KeyCode::Right));
    assert_eq!(app.form.value(strategy), "fedit");
    handle_key(&mut app, ch('l'));
    assert_eq!(app.form.value(strategy), "ffa");
    handle_key(&mut app, key(KeyCode::Left));
    handle_key(&mut app, key(KeyCode::Left));
    handle_key(&mut app, key(KeyCode::Left));
    assert_eq!(app.form.value(strategy), "custom", "wraps around");
    assert!(
        app.form
            .error(strategy)
            .is_some_and(|e| e.contains("required")),
        "custom needs strategy.roles, shown on the strategy field: {:?}",
        app.form.error(strategy)
    );
    let rounds = field_index("federation.rounds");
    app.form.select(rounds);
    handle_key(&mut app, key(KeyCode::Right));
    assert_eq!(app.form.value(rounds), "5");
}

#[test]
fn save_keys_ask_the_loop_to_save() {
    let mut app = app();
    assert_eq!(handle_key(&mut app, ch('s')), Action::Save);
    app.screen = Screen::Train;
    assert_eq!(
        handle_key(&mut app, ch('s')),
        Action::None,
        "s saves only on Setup"
    );
    assert_eq!(handle_key(&mut app, ctrl('s')), Action::Save);
}

#[test]
fn launch_needs_a_valid_setup_and_no_run_in_progress() {
    let mut app = app();
    app.form.set_value(field_index("adapter.rank"), "eight");
    app.screen = Screen::Compare;
    assert_eq!(handle_key(&mut app, ch('r')), Action::None);
    assert_eq!(app.screen, Screen::Setup, "sent to the field to fix");
    let notice = app.notice.clone().expect("says why");
    assert!(
        notice.error && notice.text.contains("adapter.rank"),
        "{notice:?}"
    );

    app.form.set_value(field_index("adapter.rank"), "4");
    assert_eq!(handle_key(&mut app, ch('r')), Action::Launch);
    assert_eq!(app.screen, Screen::Train);

    apply_event(&mut app, &scripted_events(1)[0]);
    assert_eq!(handle_key(&mut app, ch('r')), Action::None);
    assert!(app.notice.is_some());
}

#[test]
fn stop_only_while_a_run_is_on() {
    let mut app = app();
    assert_eq!(handle_key(&mut app, ch('x')), Action::None);
    assert!(
        app.notice
            .as_ref()
            .is_some_and(|n| n.text.contains("no run"))
    );
    apply_event(&mut app, &scripted_events(1)[0]);
    assert_eq!(handle_key(&mut app, ch('x')), Action::Stop);
}

#[test]
fn help_overlay_swallows_keys_until_closed() {
    let mut app = app();
    handle_key(&mut app, ch('?'));
    assert!(app.show_help);
    assert_eq!(handle_key(&mut app, ch('r')), Action::None);
    assert_eq!(handle_key(&mut app, key(KeyCode::Tab)), Action::None);
    assert_eq!(app.screen, Screen::Setup);
    handle_key(&mut app, key(KeyCode::Esc));
    assert!(!app.show_help);
    handle_key(&mut app, ch('?'));
    handle_key(&mut app, ch('?'));
    assert!(!app.show_help);
}

#[test]
fn key_releases_are_ignored() {
    let mut app = app();
    let mut release = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    release.kind = KeyEventKind::Release;
    assert_eq!(handle_key(&mut app, release), Action::None);
}

#[test]
fn compare_prompt_reads_a_path_and_removes_runs() {
    let mut app = app();
    app.screen = Screen::Compare;
    assert_eq!(handle_key(&mut app, ch('f')), Action::FindRuns);
    handle_key(&mut app, ch('a'));
    for c in "runs/q".chars() {
        handle_key(&mut app, ch(c));
    }
    assert_eq!(app.compare.input.as_deref(), Some("runs/q"));
    assert_eq!(
        handle_key(&mut app, key(KeyCode::Enter)),
        Action::LoadRun("runs/q".into())
    );
    assert_eq!(app.compare.input, None);
    // An empty path loads nothing; esc cancels.
    handle_key(&mut app, ch('a'));
    assert_eq!(handle_key(&mut app, key(KeyCode::Enter)), Action::None);
    handle_key(&mut app, ch('a'));
    handle_key(&mut app, ch('z'));
    assert_eq!(handle_key(&mut app, key(KeyCode::Esc)), Action::None);
    assert_eq!(app.compare.input, None);
    // d on an empty list is harmless.
    handle_key(&mut app, ch('d'));
    assert!(app.compare.runs.is_empty());
}

#[test]
fn train_selection_follows_the_client_rows() {
    let mut app = app();
    app.screen = Screen::Train;
    handle_key(&mut app, key(KeyCode::Down));
    assert_eq!(app.train_selected, 0, "no rows yet");
    apply_event(&mut app, &scripted_events(1)[0]);
    for _ in 0..10 {
        handle_key(&mut app, key(KeyCode::Down));
    }
    assert_eq!(app.train_selected, 3);
}

#[test]
fn clients_screen_moves_its_cursor_and_recomputes() {
    let mut app = app();
    app.screen = Screen::Clients;
    app.set_preview(Ok(tui_common::preview()));
    handle_key(&mut app, key(KeyCode::PageDown));
    assert_eq!(
        app.clients_cursor.row, 3,
        "the cursor stops at the last client"
    );
    assert_eq!(handle_key(&mut app, ch('u')), Action::Preview);
}

#[test]
fn a_notice_lasts_until_the_next_key() {
    let mut app = app();
    app.info("saved");
    handle_key(&mut app, key(KeyCode::Down));
    assert_eq!(app.notice, None);
}
