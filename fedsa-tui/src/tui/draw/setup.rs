//! The Setup screen: every editable field with its value and, in place, its validation error;
//! the selected field's help below; on a wide terminal, what the strategy shares.

use fedsa_core::Role;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Cell, HighlightSpacing, Paragraph, Row, StatefulWidget, Table, TableState, Widget, Wrap,
};

use super::WIDE;
use crate::tui::app::App;
use crate::tui::fields::FIELDS;

pub(super) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let (form_area, side) = if area.width >= WIDE {
        let [f, s] = Layout::horizontal([Constraint::Min(60), Constraint::Length(42)]).areas(area);
        (f, Some(s))
    } else {
        (area, None)
    };
    let form = &app.form;
    let modified = if form.is_modified() {
        " [modified]"
    } else {
        ""
    };
    let title = format!(" Setup: {}{modified} ", app.config_path.display());
    let block = Block::bordered().title(title);
    let inner = block.inner(form_area);
    block.render(form_area, buf);
    let [list_area, detail_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(2)]).areas(inner);

    let rows = FIELDS.iter().enumerate().map(|(i, spec)| {
        let selected = i == form.selected();
        let value = match form.editing() {
            Some(text) if selected => Span::styled(
                format!("{text}▏"),
                Style::new().fg(Color::Black).bg(Color::Yellow),
            ),
            _ if selected && !spec.choices.is_empty() => Span::raw(format!("{} ◂▸", form.value(i))),
            _ => Span::raw(form.value(i).to_string()),
        };
        let error = form
            .error(i)
            .map(|e| Span::styled(format!("✗ {e}"), Style::new().fg(Color::Red)))
            .unwrap_or_default();
        Row::new([Cell::from(spec.label), Cell::from(value), Cell::from(error)])
    });
    // Values get the room they need (errors get the rest), within reason on a narrow terminal.
    let longest = (0..form.len())
        .map(|i| form.value(i).chars().count())
        .chain(form.editing().map(|t| t.chars().count()))
        .max()
        .unwrap_or(0) as u16;
    // Not `clamp`: on a tiny terminal half the width is below the minimum.
    let value_width = (longest + 3).max(12).min(list_area.width / 2);
    let table = Table::new(
        rows,
        [
            Constraint::Length(18),
            Constraint::Length(value_width),
            Constraint::Fill(1),
        ],
    )
    .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
    .highlight_symbol("▶ ")
    .highlight_spacing(HighlightSpacing::Always);
    let mut state = TableState::default().with_selected(Some(form.selected()));
    StatefulWidget::render(table, list_area, buf, &mut state);

    let spec = form.spec();
    let mut detail = vec![Line::from(vec![
        Span::styled(format!("{}: ", spec.key), Style::new().fg(Color::Cyan)),
        Span::raw(spec.help),
    ])];
    detail.push(match (form.error(form.selected()), form.general_error()) {
        (Some(e), _) | (None, Some(e)) => Line::from(format!("✗ {e}")).red(),
        (None, None) if form.is_valid() => Line::from("✓ valid: s saves, r launches").green(),
        (None, None) => Line::from(format!(
            "✗ {} field(s) need fixing before saving or launching",
            form.error_count()
        ))
        .red(),
    });
    Paragraph::new(detail).render(detail_area, buf);

    if let Some(side) = side {
        render_strategy(app, side, buf);
    }
}

/// What the configured strategy trains and shares, in the paper's terms.
fn render_strategy(app: &App, area: Rect, buf: &mut Buffer) {
    let config = app.form.assembled();
    let block = Block::bordered().title(" Federation ");
    let mut lines = Vec::new();
    match config.strategy("setup") {
        Ok(strategy) => {
            lines.push(Line::from(vec![
                Span::raw("strategy "),
                Span::styled(strategy.name.clone(), Style::new().bold()),
                Span::raw(format!(", aggregator {}", config.strategy.aggregator)),
            ]));
            lines.push(Line::default());
            lines.push(Line::from("role    trained  shared").bold());
            for (role, name) in [(Role::A, "A"), (Role::B, "B"), (Role::Head, "head")] {
                let yes = |b: bool| if b { "yes" } else { "no" };
                lines.push(Line::from(format!(
                    "{name:<8}{:<9}{}",
                    yes(strategy.trains(role)),
                    yes(strategy.shares(role))
                )));
            }
        }
        Err(e) => lines.push(Line::from(e.to_string()).red()),
    }
    let f = &config.federation;
    lines.push(Line::default());
    lines.push(Line::from(format!(
        "{} of {} clients per round, {} rounds",
        f.clients_per_round, f.num_clients, f.rounds
    )));
    lines.push(Line::from(format!(
        "{} r={} alpha={} on {}",
        config.adapter.kind,
        config.adapter.rank,
        config.adapter.alpha,
        config.adapter.target_modules.join(", ")
    )));
    lines.push(Line::from(format!("run folder {}", run_folder(&config))));
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(block)
        .render(area, buf);
}

fn run_folder(config: &fedsa_core::Config) -> String {
    config.output_dir.join(&config.name).display().to_string()
}
