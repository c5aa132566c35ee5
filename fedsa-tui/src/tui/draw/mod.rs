//! Drawing: the tab bar, the current screen, the footer and the help overlay, all rendered from
//! `&App` alone. Layouts fit an 80x24 terminal and give a wider one more charts and columns.

mod chart;
mod client_settings;
mod clients;
mod compare;
mod help;
mod setup;
mod similarity;
mod train;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Tabs, Widget};

use super::app::{App, Screen};
use super::events::RunStatus;

/// Terminals at least this wide get side-by-side panels and extra columns.
pub(crate) const WIDE: u16 = 110;

/// Series colours, in order; the first is for means.
pub(crate) const PALETTE: [Color; 8] = [
    Color::Cyan,
    Color::Yellow,
    Color::Magenta,
    Color::Green,
    Color::LightRed,
    Color::LightBlue,
    Color::LightGreen,
    Color::LightMagenta,
];

/// Draws the app into a frame.
pub fn draw(frame: &mut Frame, app: &App) {
    frame.render_widget(app, frame.area());
}

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let [top, body, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(area);
        render_tabs(self, top, buf);
        match self.screen {
            Screen::Setup => setup::render(self, body, buf),
            Screen::Clients => clients::render(self, body, buf),
            Screen::Train => train::render(self, body, buf),
            Screen::Compare => compare::render(self, body, buf),
            Screen::Similarity => similarity::render(self, body, buf),
        }
        render_footer(self, footer, buf);
        if self.show_help {
            help::render(area, buf);
        }
    }
}

fn render_tabs(app: &App, area: Rect, buf: &mut Buffer) {
    let status = run_badge(app);
    let badge_width = (status.width() as u16 + 1).min(area.width / 2);
    let [tabs_area, badge_area] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(badge_width)]).areas(area);
    // The Similarity tab shows only while it is open: it is reached from Compare.
    let open = (app.screen == Screen::Similarity).then_some(Screen::Similarity);
    let titles = Screen::ALL
        .iter()
        .chain(open.as_ref())
        .enumerate()
        .map(|(i, s)| format!("{} {}", i + 1, s.title()));
    Tabs::new(titles)
        .select(app.screen.index())
        .highlight_style(Style::new().fg(Color::Black).bg(Color::Cyan).bold())
        .divider("│")
        .render(tabs_area, buf);
    Paragraph::new(status)
        .right_aligned()
        .render(badge_area, buf);
}

/// The run's state in a few words, for the tab bar.
fn run_badge(app: &App) -> Line<'static> {
    let run = &app.run;
    let (text, color) = match &run.status {
        RunStatus::Idle => ("idle".to_string(), Color::DarkGray),
        RunStatus::Starting => ("● starting".to_string(), Color::Yellow),
        RunStatus::Running => (
            run.current_round.map_or_else(
                || "● running".to_string(),
                |r| format!("● round {r}/{}", run.total_rounds),
            ),
            Color::Green,
        ),
        RunStatus::Stopping => ("● stopping".to_string(), Color::Yellow),
        RunStatus::Finished => ("✓ finished".to_string(), Color::Green),
        RunStatus::Stopped => ("■ stopped".to_string(), Color::Yellow),
        RunStatus::Failed(_) => ("✗ failed".to_string(), Color::Red),
    };
    Line::from(Span::styled(text, Style::new().fg(color)))
}

fn render_footer(app: &App, area: Rect, buf: &mut Buffer) {
    let line = if let Some(notice) = &app.notice {
        let style = if notice.error {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(Color::Green)
        };
        Line::from(Span::styled(notice.text.clone(), style))
    } else {
        hints(key_hints(app))
    };
    Paragraph::new(line).render(area, buf);
}

/// The keys that matter in the current state, as (key, what) pairs.
fn key_hints(app: &App) -> &'static [(&'static str, &'static str)] {
    if app.form.editing().is_some() {
        return &[("enter", "apply"), ("esc", "cancel"), ("ctrl-u", "clear")];
    }
    if app.compare.input.is_some() {
        return &[("enter", "load run folder"), ("esc", "cancel")];
    }
    if app.show_help {
        return &[("esc", "close help")];
    }
    match app.screen {
        Screen::Setup => &[
            ("↑↓", "field"),
            ("enter", "edit"),
            ("←→", "choose"),
            ("s", "save"),
            ("r", "run"),
            ("tab", "screen"),
            ("?", "help"),
            ("q", "quit"),
        ],
        Screen::Clients => &[
            ("↑↓←→", "cell"),
            ("+-", "value"),
            ("d", "reset"),
            ("u", "recompute"),
            ("r", "run"),
            ("tab", "screen"),
            ("?", "help"),
            ("q", "quit"),
        ],
        Screen::Train => &[
            ("r", "run"),
            ("x", "stop"),
            ("↑↓", "client"),
            ("tab", "screen"),
            ("?", "help"),
            ("q", "quit"),
        ],
        Screen::Compare => &[
            ("a", "add run"),
            ("d", "remove"),
            ("f", "find runs"),
            ("↑↓", "select"),
            ("tab", "screen"),
            ("?", "help"),
            ("q", "quit"),
        ],
        Screen::Similarity => &[
            ("↑↓", "scroll"),
            ("u", "reanalyse"),
            ("esc", "back to Compare"),
            ("tab", "screen"),
            ("?", "help"),
            ("q", "quit"),
        ],
    }
}

fn hints(pairs: &[(&str, &str)]) -> Line<'static> {
    let mut spans = Vec::new();
    for (key, what) in pairs {
        spans.push(Span::styled(
            format!(" {key}"),
            Style::new().fg(Color::Cyan).bold(),
        ));
        spans.push(Span::raw(format!(" {what} ")));
    }
    Line::from(spans)
}

/// Seconds as `mm:ss`, or `h:mm:ss` past an hour.
pub(crate) fn clock(seconds: f64) -> String {
    let s = if seconds.is_finite() && seconds > 0.0 {
        seconds.round() as u64
    } else {
        0
    };
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

pub(crate) use fedsa_engine::units::human_bytes;

/// An optional fraction as a percentage with one decimal, `-` when absent.
pub(crate) fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), super::events::percent)
}

/// An optional loss with four decimals, `-` when absent.
pub(crate) fn loss(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.4}"))
}

/// A dimmed, centred message for empty panels.
pub(crate) fn placeholder(text: &str, area: Rect, buf: &mut Buffer) {
    let [_, middle, _] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(2),
        Constraint::Fill(1),
    ])
    .areas(area);
    Paragraph::new(text.to_string())
        .centered()
        .wrap(ratatui::widgets::Wrap { trim: true })
        .dark_gray()
        .render(middle, buf);
}
