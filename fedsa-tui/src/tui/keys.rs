//! Key handling as a pure function: a key changes the app's state and names what the event loop
//! must do (save, launch, stop, load). No I/O here, so every binding is unit-tested.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{Action, App, Screen};
use super::client_edits::{self, Edit, client_rows};
use super::preview::Preview;

/// Rows a page key moves.
const PAGE: isize = 10;

/// Applies `key` to `app`; returns what the loop must do.
pub fn handle_key(app: &mut App, key: KeyEvent) -> Action {
    // Terminals that report releases (Windows) would otherwise act twice per key.
    if key.kind == KeyEventKind::Release {
        return Action::None;
    }
    app.notice = None;
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        return Action::Quit;
    }
    if app.form.editing().is_some() {
        return edit_key(app, key, ctrl);
    }
    if app.compare.input.is_some() {
        return compare_input_key(app, key, ctrl);
    }
    if app.show_help {
        if matches!(
            key.code,
            KeyCode::Esc | KeyCode::Char('?' | 'q') | KeyCode::Enter
        ) {
            app.show_help = false;
        }
        return Action::None;
    }
    if app.confirm_quit {
        app.confirm_quit = false;
        if matches!(key.code, KeyCode::Char('q' | 'y')) {
            return Action::Quit;
        }
        if key.code == KeyCode::Esc {
            return Action::None;
        }
    }
    match key.code {
        KeyCode::Char('q') => return quit(app),
        KeyCode::Char('?') => app.show_help = true,
        KeyCode::Tab => return go_to(app, app.screen.step(1)),
        KeyCode::BackTab => return go_to(app, app.screen.step(-1)),
        KeyCode::Char(c @ '1'..='4') => {
            let i = c as usize - '1' as usize;
            return go_to(app, Screen::ALL[i]);
        }
        KeyCode::Char('5') => return go_to(app, Screen::Similarity),
        KeyCode::Char('s') if ctrl => return Action::Save,
        KeyCode::Char('r') => return launch(app),
        KeyCode::Char('x') => return stop(app),
        _ => {
            return match app.screen {
                Screen::Setup => setup_key(app, key),
                Screen::Clients => clients_key(app, key),
                Screen::Train => train_key(app, key),
                Screen::Compare => compare_key(app, key),
                Screen::Similarity => similarity_key(app, key),
            };
        }
    }
    Action::None
}

fn quit(app: &mut App) -> Action {
    if app.run.status.is_active() {
        app.confirm_quit = true;
        app.error("training is running: q again stops it and quits, esc stays");
        Action::None
    } else if app.form.is_modified() {
        app.confirm_quit = true;
        app.error("the setup has unsaved edits: q again quits without saving, esc stays");
        Action::None
    } else {
        Action::Quit
    }
}

/// Switches screen; entering a screen whose data is missing asks the loop to fetch it.
fn go_to(app: &mut App, screen: Screen) -> Action {
    app.screen = screen;
    match screen {
        Screen::Clients if app.preview == Preview::Stale => Action::Preview,
        Screen::Compare if !app.compare.searched => Action::FindRuns,
        Screen::Similarity => {
            let target = similarity_target(app);
            let fresh =
                app.similarity.path.as_ref() == Some(&target) && app.similarity.report.is_some();
            if fresh {
                Action::None
            } else {
                Action::Analyze(target)
            }
        }
        _ => Action::None,
    }
}

/// The run the Similarity screen shows: the run selected on Compare, else the setup's own run
/// folder (where a launched run writes).
fn similarity_target(app: &App) -> std::path::PathBuf {
    app.compare.runs.get(app.compare.selected).map_or_else(
        || {
            let config = app.form.assembled();
            config.output_dir.join(&config.name)
        },
        |run| run.path.clone(),
    )
}

fn launch(app: &mut App) -> Action {
    if app.run.status.is_active() {
        app.error("a run is already in progress (x stops it)");
        return Action::None;
    }
    if let Err(e) = app.form.config() {
        app.error(format!("cannot launch: {e}"));
        app.screen = Screen::Setup;
        return Action::None;
    }
    app.screen = Screen::Train;
    Action::Launch
}

fn stop(app: &mut App) -> Action {
    if app.run.status.is_active() {
        Action::Stop
    } else {
        app.error("no run in progress");
        Action::None
    }
}

/// Moves a selection `delta` rows within `len` rows.
fn step(selected: usize, delta: isize, len: usize) -> usize {
    selected
        .saturating_add_signed(delta)
        .min(len.saturating_sub(1))
}

/// Up/down/page keys as a row delta.
fn vertical(code: KeyCode) -> Option<isize> {
    match code {
        KeyCode::Up | KeyCode::Char('k') => Some(-1),
        KeyCode::Down | KeyCode::Char('j') => Some(1),
        KeyCode::PageUp => Some(-PAGE),
        KeyCode::PageDown => Some(PAGE),
        KeyCode::Home => Some(isize::MIN),
        KeyCode::End => Some(isize::MAX),
        _ => None,
    }
}

fn setup_key(app: &mut App, key: KeyEvent) -> Action {
    if let Some(delta) = vertical(key.code) {
        app.form.move_selection(delta);
        return Action::None;
    }
    let changed = match key.code {
        KeyCode::Enter | KeyCode::Char('e') => {
            app.form.begin_edit();
            false
        }
        KeyCode::Left | KeyCode::Char('h') => app.form.cycle(-1),
        KeyCode::Right | KeyCode::Char('l' | ' ') => app.form.cycle(1),
        KeyCode::Char('s') => return Action::Save,
        _ => false,
    };
    if changed {
        app.preview = Preview::Stale;
    }
    Action::None
}

fn edit_key(app: &mut App, key: KeyEvent, ctrl: bool) -> Action {
    match key.code {
        // The guard commits the edit; only a changed value makes the partition stale.
        KeyCode::Enter if app.form.commit_edit() => app.preview = Preview::Stale,
        KeyCode::Esc => app.form.cancel_edit(),
        KeyCode::Backspace => app.form.edit_pop(),
        KeyCode::Char('u') if ctrl => app.form.edit_clear(),
        KeyCode::Char(c) if !ctrl && !c.is_control() => app.form.edit_push(c),
        _ => {}
    }
    Action::None
}

/// Up/down pick a client, left/right its setting, `+`/`-` change it and `d` gives it back the
/// run-wide value. The edits do not touch the partition, so the preview stays as it is.
fn clients_key(app: &mut App, key: KeyEvent) -> Action {
    if let Some(delta) = vertical(key.code) {
        let rows = client_rows(app);
        app.clients_cursor.row = step(app.clients_cursor.row, delta, rows);
        return Action::None;
    }
    match key.code {
        KeyCode::Char('u') => return Action::Preview,
        KeyCode::Left | KeyCode::Char('h') => {
            let config = app.form.assembled();
            app.clients_cursor.move_field(-1, &config);
        }
        KeyCode::Right | KeyCode::Char('l') => {
            let config = app.form.assembled();
            app.clients_cursor.move_field(1, &config);
        }
        // `=` and `_` are `+` and `-` without shift.
        KeyCode::Char('+' | '=') => client_edits::edit(app, Edit::Raise),
        KeyCode::Char('-' | '_') => client_edits::edit(app, Edit::Lower),
        KeyCode::Char('d') | KeyCode::Delete => client_edits::edit(app, Edit::Reset),
        _ => {}
    }
    Action::None
}

fn train_key(app: &mut App, key: KeyEvent) -> Action {
    if let Some(delta) = vertical(key.code) {
        app.train_selected = step(app.train_selected, delta, app.run.clients.len());
    }
    Action::None
}

fn compare_key(app: &mut App, key: KeyEvent) -> Action {
    if let Some(delta) = vertical(key.code) {
        app.compare.selected = step(app.compare.selected, delta, app.compare.runs.len());
        return Action::None;
    }
    match key.code {
        KeyCode::Char('a') => app.compare.input = Some(String::new()),
        KeyCode::Char('d') | KeyCode::Delete => app.compare.remove_selected(),
        KeyCode::Char('f') => return Action::FindRuns,
        KeyCode::Char('s') => return go_to(app, Screen::Similarity),
        _ => {}
    }
    Action::None
}

fn similarity_key(app: &mut App, key: KeyEvent) -> Action {
    if let Some(delta) = vertical(key.code) {
        let rows = match &app.similarity.report {
            Some(Ok(r)) => r.modules.len(),
            _ => 0,
        };
        app.similarity.offset = step(app.similarity.offset, delta, rows);
        return Action::None;
    }
    match key.code {
        KeyCode::Char('u') => {
            let path = app
                .similarity
                .path
                .clone()
                .unwrap_or_else(|| similarity_target(app));
            Action::Analyze(path)
        }
        KeyCode::Esc => go_to(app, Screen::Compare),
        _ => Action::None,
    }
}

fn compare_input_key(app: &mut App, key: KeyEvent, ctrl: bool) -> Action {
    let Some(text) = &mut app.compare.input else {
        return Action::None;
    };
    match key.code {
        KeyCode::Enter => {
            let path = text.trim().to_string();
            app.compare.input = None;
            if !path.is_empty() {
                return Action::LoadRun(path.into());
            }
        }
        KeyCode::Esc => app.compare.input = None,
        KeyCode::Backspace => {
            text.pop();
        }
        KeyCode::Char('u') if ctrl => text.clear(),
        KeyCode::Char(c) if !ctrl && !c.is_control() => text.push(c),
        _ => {}
    }
    Action::None
}
