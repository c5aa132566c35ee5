//! The Clients screen: how the partitioner splits the data before training, one row per client
//! with its train/test sizes, its label counts and a bar of its label mix.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Widget};

use super::{PALETTE, WIDE, placeholder};
use crate::tui::app::App;
use crate::tui::preview::{ClientsPreview, Preview};

/// Label columns shown before the rest are summed into one.
const MAX_LABEL_COLUMNS: usize = 6;
/// One glyph per label in the mix bar, so the mix reads without colour too.
const GLYPHS: [char; 6] = ['█', '▓', '▒', '░', '▚', '·'];

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
    match &app.preview {
        Preview::Ready(preview) if preview.clients.is_empty() => {
            placeholder("The partition has no clients.", inner, buf);
        }
        Preview::Ready(preview) => render_table(preview, app.clients_offset, inner, buf),
        Preview::Failed(e) => {
            Paragraph::new(vec![
                Line::from("The partition could not be computed:").red(),
                Line::from(e.clone()),
                Line::default(),
                Line::from("Fix the setup (1) and press u to try again.").dark_gray(),
            ])
            .wrap(ratatui::widgets::Wrap { trim: false })
            .render(inner, buf);
        }
        Preview::Stale => placeholder("Press u to compute the partition.", inner, buf),
    }
}

fn render_table(preview: &ClientsPreview, offset: usize, area: Rect, buf: &mut Buffer) {
    let [table_area, legend_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    let labels = &preview.label_names;
    let shown = labels.len().min(MAX_LABEL_COLUMNS);
    let rest = labels.len() > shown;
    let fixed = 7 + 7 + 7 + 8 * (shown + usize::from(rest)) as u16;
    let bar_width = table_area
        .width
        .saturating_sub(fixed)
        .min(if area.width >= WIDE { 60 } else { 30 }) as usize;

    let mut header: Vec<String> = vec!["Client".into(), "Train".into(), "Test".into()];
    header.extend(labels.iter().take(shown).map(|l| truncate(l, 7)));
    if rest {
        header.push("other".into());
    }
    header.push("Label mix".into());

    let rows = preview
        .clients
        .iter()
        .enumerate()
        .skip(offset)
        .map(|(id, c)| {
            let mut cells: Vec<Cell> = vec![
                Cell::from(id.to_string()),
                Cell::from(c.train.to_string()),
                Cell::from(c.test.to_string()),
            ];
            cells.extend(
                (0..shown)
                    .map(|l| Cell::from(c.train_hist.get(l).copied().unwrap_or(0).to_string())),
            );
            if rest {
                let other: usize = c.train_hist.iter().skip(shown).sum();
                cells.push(Cell::from(other.to_string()));
            }
            cells.push(Cell::from(mix_bar(&c.train_hist, bar_width)));
            Row::new(cells)
        });
    let mut widths = vec![
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
    ];
    widths.extend((0..shown + usize::from(rest)).map(|_| Constraint::Length(7)));
    widths.push(Constraint::Fill(1));
    Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().bold().fg(Color::Cyan)))
        .render(table_area, buf);

    let mut legend = vec![Span::raw(format!(
        "{} train, {} test examples   ",
        preview.total_train(),
        preview.total_test()
    ))];
    for (i, name) in labels.iter().enumerate().take(GLYPHS.len()) {
        legend.push(Span::styled(
            format!("{} {name}  ", GLYPHS[i]),
            Style::new().fg(PALETTE[i % PALETTE.len()]),
        ));
    }
    Paragraph::new(Line::from(legend)).render(legend_area, buf);
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
