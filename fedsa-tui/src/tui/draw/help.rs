//! The help overlay: every key binding, drawn over the current screen.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};

/// (keys, what they do); an empty key starts a section.
const KEYS: &[(&str, &str)] = &[
    ("", "Everywhere"),
    ("tab / shift-tab", "next / previous screen"),
    ("1 2 3 4, 5", "Setup, Clients, Train, Compare; A/B"),
    ("r / x", "launch / stop the run (after this round)"),
    ("ctrl-s", "save the setup to its TOML file"),
    ("?", "this help (esc closes)"),
    ("q, ctrl-c", "quit (asks while a run is on)"),
    ("", "Setup"),
    ("↑↓ j k, pgup pgdn", "select a field"),
    ("enter, e", "edit it; enter applies, esc cancels"),
    ("← → h l, space", "cycle the field's choices"),
    ("s", "save"),
    ("", "Clients"),
    ("↑↓ ← →", "a client's rank, steps or batch size"),
    ("+ / -, d", "raise / lower it (min 1); d: run-wide"),
    ("u", "recompute the partition"),
    ("", "Train / Compare"),
    ("↑↓", "select a client or a run"),
    ("a / d, f", "add / remove a run folder; find runs"),
    ("s / 5", "A/B similarity of the selected / own run"),
];

pub(super) fn render(area: Rect, buf: &mut Buffer) {
    let popup = area.centered(
        Constraint::Length(area.width.saturating_sub(4).min(62)),
        Constraint::Length(area.height.saturating_sub(2).min(KEYS.len() as u16 + 2)),
    );
    Clear.render(popup, buf);
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(keys, what)| {
            if keys.is_empty() {
                Line::from(Span::styled(*what, Style::new().bold().fg(Color::Cyan)))
            } else {
                Line::from(vec![
                    Span::styled(format!(" {keys:<19}"), Style::new().fg(Color::Yellow)),
                    Span::raw(*what),
                ])
            }
        })
        .collect();
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(
            Block::bordered()
                .title(" Keys ")
                .title_bottom(Line::from(" esc closes ").right_aligned())
                .border_style(Style::new().fg(Color::Cyan)),
        )
        .render(popup, buf);
}
