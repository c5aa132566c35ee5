//! The per-client settings on the Clients screen: each client row's rank, steps (epochs when the
//! run counts epochs) and batch cells with the cursor's cell, the run-wide values under the
//! table, and the table of settings alone while the partition is not computed.

use std::ops::Range;

use fedsa_core::Config;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Cell, HighlightSpacing, Row, StatefulWidget, Table, TableState};

use crate::tui::app::App;
use crate::tui::client_edits::{ClientField, client_rows};

/// Marks a client's own value, so it reads without colour too.
const OWN: &str = "*";

/// The settings columns of the rows in `window`, with the cursor's cell.
pub(super) struct Settings<'a> {
    config: &'a Config,
    cursor: usize,
    field: ClientField,
    widths: [u16; 3],
}

impl<'a> Settings<'a> {
    pub(super) fn new(app: &App, config: &'a Config, window: &Range<usize>) -> Self {
        let cursor = selected_row(app);
        let field = app.clients_cursor.field_in(config);
        let mut settings = Self {
            config,
            cursor,
            field,
            widths: [0; 3],
        };
        // Each column as wide as its widest value in view with the cursor's arrows, so counts
        // of four digits and more fit and the columns stay put as the cursor moves.
        for (i, f) in ClientField::ALL.into_iter().enumerate() {
            let widest = window
                .clone()
                .map(|k| settings.plain(f, k).chars().count() + 2)
                .max()
                .unwrap_or(0);
            settings.widths[i] = widest.max(f.title(config).len()) as u16;
        }
        settings
    }

    pub(super) fn headers(&self) -> [String; 3] {
        ClientField::ALL.map(|f| f.title(self.config).to_string())
    }

    pub(super) fn widths(&self) -> [Constraint; 3] {
        self.widths.map(Constraint::Length)
    }

    /// The sum of the columns' widths, with the spaces between columns.
    pub(super) fn width(&self) -> u16 {
        self.widths.iter().map(|w| w + 1).sum()
    }

    /// The column index of the cursor's setting, counting the client column first.
    pub(super) fn cursor_column(&self) -> usize {
        1 + ClientField::ALL
            .iter()
            .position(|f| *f == self.field)
            .unwrap_or(0)
    }

    pub(super) fn cells(&self, k: usize) -> [Cell<'static>; 3] {
        ClientField::ALL.map(|f| {
            let style = if f.differs(self.config, k) {
                Style::new().bold()
            } else {
                Style::new()
            };
            Cell::from(self.text(f, k)).style(style)
        })
    }

    /// A cell's text: its value, with arrows on the cursor's cell.
    fn text(&self, f: ClientField, k: usize) -> String {
        let plain = self.plain(f, k);
        if k == self.cursor && f == self.field {
            format!("◂{plain}▸")
        } else {
            plain
        }
    }

    /// The value, with `*` when it is the client's own.
    fn plain(&self, f: ClientField, k: usize) -> String {
        let own = if f.differs(self.config, k) { OWN } else { "" };
        format!("{}{own}", f.shown(self.config, k))
    }
}

/// The cursor's row, within the rows there are.
pub(super) fn selected_row(app: &App) -> usize {
    app.clients_cursor
        .row
        .min(client_rows(app).saturating_sub(1))
}

/// The rows of `len` that fit in `height` lines and show `selected`, which sits on the last
/// line once it is past the first screenful. Only these rows are built: a setup may name far
/// more clients than a screen holds.
pub(super) fn window(selected: usize, len: usize, height: usize) -> Range<usize> {
    if len == 0 || height == 0 {
        return 0..0;
    }
    let start = selected.min(len - 1).saturating_sub(height - 1);
    start..(start + height).min(len)
}

/// A table's look on the Clients screen: the cursor's row reversed, its cell picked out.
pub(super) fn styled(table: Table<'_>) -> Table<'_> {
    table
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .cell_highlight_style(
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .remove_modifier(Modifier::REVERSED),
        )
        .highlight_symbol("▶ ")
        .highlight_spacing(HighlightSpacing::Always)
}

/// Renders `table` (the rows of `window`) with the cursor's cell selected.
pub(super) fn render_with_cursor(
    table: Table<'_>,
    settings: &Settings<'_>,
    window: &Range<usize>,
    area: Rect,
    buf: &mut Buffer,
) {
    let mut state = TableState::default();
    if window.contains(&settings.cursor) {
        state =
            state.with_selected_cell((settings.cursor - window.start, settings.cursor_column()));
    }
    StatefulWidget::render(styled(table), area, buf, &mut state);
}

/// The client and settings columns alone, for while the partition is not computed.
pub(super) fn render_table(app: &App, config: &Config, area: Rect, buf: &mut Buffer) {
    let rows = client_rows(app);
    let window = window(
        selected_row(app),
        rows,
        area.height.saturating_sub(1) as usize,
    );
    let settings = Settings::new(app, config, &window);
    let mut header = vec!["Client".to_string()];
    header.extend(settings.headers());
    let body = window.clone().map(|k| {
        let mut cells = vec![Cell::from(k.to_string())];
        cells.extend(settings.cells(k));
        Row::new(cells)
    });
    let mut widths = vec![Constraint::Length(6)];
    widths.extend(settings.widths());
    let table = Table::new(body, widths)
        .header(Row::new(header).style(Style::new().bold().fg(Color::Cyan)));
    render_with_cursor(table, &settings, &window, area, buf);
}

/// The run-wide values the unmarked cells hold, and how a client's own value is marked.
pub(super) fn defaults_line(config: &Config) -> Line<'static> {
    let t = &config.training;
    let steps = match t.local_epochs {
        Some(e) => format!("{e} epochs"),
        None => format!("{} steps", t.local_steps),
    };
    Line::from(format!(
        "run-wide: rank {}, {steps}, batch {}   {OWN} a client's own value",
        config.adapter.rank, t.batch_size
    ))
    .dark_gray()
}

/// Why the setup cannot be saved or launched, as the form says it (clients of different ranks
/// under a strategy that needs one rank, say), unless `shown` already says it.
pub(super) fn setup_error(app: &App, shown: Option<&str>) -> Option<Line<'static>> {
    let error = app.form.config().err()?;
    if shown.is_some_and(|s| s.contains(&error)) {
        return None;
    }
    Some(Line::from(format!("✗ {error}")).red())
}
