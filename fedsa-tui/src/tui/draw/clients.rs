//! The Clients screen: how the partitioner splits the data before training, one row per client
//! with its own settings (rank, steps, batch; `client_settings`), its train/test sizes, its
//! label counts and a bar of its label mix. The settings stay in view and editable while the
//! partition is not computed or fails.

use fedsa_core::Config;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Widget, Wrap};

use super::client_settings::{
    Settings, defaults_line, render_with_cursor, selected_row, setup_error, window,
};
use super::{PALETTE, WIDE, placeholder};
use crate::tui::app::App;
use crate::tui::preview::{ClientsPreview, Preview};

/// Label columns shown before the rest are summed into one.
const MAX_LABEL_COLUMNS: usize = 6;
/// One glyph per label in the mix bar, so the mix reads without colour too.
const GLYPHS: [char; 6] = ['█', '▓', '▒', '░', '▚', '·'];
/// The most lines for why the setup is invalid, under the table.
const ERROR_LINES: u16 = 3;

pub(super) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let config = app.form.assembled();
    let p = &config.partition;
    let how = match p.kind {
        fedsa_core::config::PartitionKind::Iid => "iid".to_string(),
        fedsa_core::config::PartitionKind::Dirichlet => format!("dirichlet alpha={}", p.alpha),
        fedsa_core::config::PartitionKind::Key => {
            format!("by key {}", p.key.as_deref().unwrap_or("?"))
        }
    };
    let title = format!(
        " Clients: {how}, {} clients, {} per round ",
        config.federation.num_clients, config.federation.clients_per_round
    );
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    let message: Vec<Line<'static>> = match &app.preview {
        Preview::Ready(preview) if preview.clients.is_empty() => {
            placeholder("The partition has no clients.", inner, buf);
            return;
        }
        Preview::Ready(preview) => {
            render_ready(app, &config, preview, inner, buf);
            return;
        }
        Preview::Failed(e) => vec![
            Line::from("The partition could not be computed:").red(),
            Line::from(e.clone()),
            Line::from("Fix the setup (1) or the values below, and press u to try again.")
                .dark_gray(),
        ],
        Preview::Stale => vec![Line::from("Press u to compute the partition.").dark_gray()],
    };
    let failed = match &app.preview {
        Preview::Failed(e) => Some(e.as_str()),
        _ => None,
    };
    let error = setup_error(app, failed);
    let [message_area, _, table_area, defaults_area, error_area] = Layout::vertical([
        Constraint::Length(wrapped_height(&message, inner.width)),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(error_height(error.as_ref(), inner.width)),
    ])
    .areas(inner);
    wrapped(message).render(message_area, buf);
    super::client_settings::render_table(app, &config, table_area, buf);
    defaults_line(&config).render(defaults_area, buf);
    if let Some(error) = error {
        wrapped(vec![error]).render(error_area, buf);
    }
}

fn wrapped(lines: Vec<Line<'static>>) -> Paragraph<'static> {
    Paragraph::new(lines).wrap(Wrap { trim: false })
}

fn error_height(error: Option<&Line>, width: u16) -> u16 {
    error.map_or(0, |e| {
        wrapped_height(std::slice::from_ref(e), width).min(ERROR_LINES)
    })
}

/// The lines `lines` take wrapped at word boundaries to `width`, as the paragraph wraps them:
/// the message sits right above the table, whatever the length of the error.
fn wrapped_height(lines: &[Line], width: u16) -> u16 {
    let width = usize::from(width.max(1));
    let mut rows = 0;
    for line in lines {
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        let mut used = 0;
        rows += 1;
        for word in text.split(' ').map(|w| w.chars().count()) {
            if used > 0 && used + 1 + word <= width {
                used += 1 + word;
                continue;
            }
            if used > 0 {
                rows += 1;
            }
            // A word longer than the line is broken across lines.
            rows += word.saturating_sub(1) / width;
            used = (word.saturating_sub(1) % width) + 1;
        }
    }
    rows as u16
}

fn render_ready(
    app: &App,
    config: &Config,
    preview: &ClientsPreview,
    area: Rect,
    buf: &mut Buffer,
) {
    let error = setup_error(app, None);
    let [table_area, defaults_area, error_area, legend_area] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(error_height(error.as_ref(), area.width)),
        Constraint::Length(1),
    ])
    .areas(area);
    render_table(app, config, preview, table_area, buf);
    defaults_line(config).render(defaults_area, buf);
    if let Some(error) = error {
        wrapped(vec![error]).render(error_area, buf);
    }
    render_legend(preview, legend_area, buf);
}

fn render_table(
    app: &App,
    config: &Config,
    preview: &ClientsPreview,
    area: Rect,
    buf: &mut Buffer,
) {
    let window = window(
        selected_row(app),
        preview.clients.len(),
        area.height.saturating_sub(1) as usize,
    );
    let settings = Settings::new(app, config, &window);
    let labels = &preview.label_names;
    let shown = labels.len().min(MAX_LABEL_COLUMNS);
    let rest = labels.len() > shown;
    // The highlight symbol, the client, train and test columns, the settings and the labels,
    // and a space before the border.
    let fixed = 2 + 7 + settings.width() + 7 + 7 + 8 * (shown + usize::from(rest)) as u16 + 1;
    let bar_width = area
        .width
        .saturating_sub(fixed)
        .min(if area.width >= WIDE { 60 } else { 30 }) as usize;

    let mut header: Vec<String> = vec!["Client".into()];
    header.extend(settings.headers());
    header.extend(["Train".into(), "Test".into()]);
    header.extend(labels.iter().take(shown).map(|l| truncate(l, 7)));
    if rest {
        header.push("other".into());
    }
    header.push("Label mix".into());

    let rows = window.clone().map(|id| {
        let c = &preview.clients[id];
        let mut cells: Vec<Cell> = vec![Cell::from(id.to_string())];
        cells.extend(settings.cells(id));
        cells.extend([
            Cell::from(c.train.to_string()),
            Cell::from(c.test.to_string()),
        ]);
        cells.extend(
            (0..shown).map(|l| Cell::from(c.train_hist.get(l).copied().unwrap_or(0).to_string())),
        );
        if rest {
            let other: usize = c.train_hist.iter().skip(shown).sum();
            cells.push(Cell::from(other.to_string()));
        }
        cells.push(Cell::from(mix_bar(&c.train_hist, bar_width)));
        Row::new(cells)
    });
    let mut widths = vec![Constraint::Length(6)];
    widths.extend(settings.widths());
    widths.extend([Constraint::Length(6), Constraint::Length(6)]);
    widths.extend((0..shown + usize::from(rest)).map(|_| Constraint::Length(7)));
    widths.push(Constraint::Fill(1));
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().bold().fg(Color::Cyan)));
    render_with_cursor(table, &settings, &window, area, buf);
}

fn render_legend(preview: &ClientsPreview, area: Rect, buf: &mut Buffer) {
    let mut legend = vec![Span::raw(format!(
        "{} train, {} test examples   ",
        preview.total_train(),
        preview.total_test()
    ))];
    for (i, name) in preview.label_names.iter().enumerate().take(GLYPHS.len()) {
        legend.push(Span::styled(
            format!("{} {name}  ", GLYPHS[i]),
            Style::new().fg(PALETTE[i % PALETTE.len()]),
        ));
    }
    Paragraph::new(Line::from(legend)).render(area, buf);
}

/// The label shares of a histogram as `width` glyphs; rounding is cumulative so the bar is
/// always exactly `width` long when there are examples.
fn mix_bar(hist: &[usize], width: usize) -> Line<'static> {
    let total: usize = hist.iter().sum();
    if total == 0 || width == 0 {
        return Line::default();
    }
    let mut spans = Vec::new();
    let mut cumulative = 0;
    let mut drawn = 0;
    for (i, &count) in hist.iter().enumerate() {
        cumulative += count;
        let end = (cumulative * width + total / 2) / total;
        let n = end.saturating_sub(drawn);
        drawn = end.max(drawn);
        if n > 0 {
            let glyph = GLYPHS[i.min(GLYPHS.len() - 1)];
            spans.push(Span::styled(
                glyph.to_string().repeat(n),
                Style::new().fg(PALETTE[i % PALETTE.len()]),
            ));
        }
    }
    Line::from(spans)
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
