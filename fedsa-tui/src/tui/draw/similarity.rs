//! The A/B similarity screen: for one run folder, how alike the clients' A updates are to each
//! other and their B updates, per adapted module — the paper's central measurement, with bars
//! so the asymmetry reads at a glance.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Widget, Wrap};

use super::{WIDE, placeholder};
use crate::tui::app::App;
use fedsa_engine::analysis::Measures;
use fedsa_engine::analyze::{AnalysisReport, measured_text};

/// Width of a similarity bar in cells.
const BAR: usize = 10;

pub(super) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let view = &app.similarity;
    let title = match &view.path {
        Some(p) => format!(" A/B similarity · {} ", p.display()),
        None => " A/B similarity ".to_string(),
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    match &view.report {
        None => placeholder(
            "No run analysed. On Compare, select a run and press s; 5 analyses the setup's run folder.",
            inner,
            buf,
        ),
        Some(Err(e)) => {
            Paragraph::new(vec![
                Line::from(Span::styled(
                    "Cannot analyse this run:",
                    Style::new().fg(Color::Red).bold(),
                )),
                Line::from(e.clone()),
                Line::from(""),
                Line::from(
                    "It needs a finished run folder with init.safetensors and a checkpoint."
                        .dark_gray(),
                ),
            ])
            .wrap(Wrap { trim: true })
            .render(inner, buf);
        }
        Some(Ok(report)) => render_report(report, view.offset, area.width >= WIDE, inner, buf),
    }
}

fn render_report(report: &AnalysisReport, offset: usize, wide: bool, area: Rect, buf: &mut Buffer) {
    let notes: Vec<Line> = report
        .notes
        .iter()
        .map(|n| {
            Line::from(Span::styled(
                format!("note: {n}"),
                Style::new().fg(Color::Yellow),
            ))
        })
        .collect();
    let notes_height = if notes.is_empty() {
        0
    } else {
        // Notes wrap; give them what they need on this width, within reason.
        let width = usize::from(area.width.max(1));
        let lines: usize = report
            .notes
            .iter()
            .map(|n| (n.chars().count() + 6).div_ceil(width))
            .sum();
        (lines as u16).min(area.height / 3)
    };
    let [head, table_area, notes_area] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(0),
        Constraint::Length(notes_height),
    ])
    .areas(area);
    Paragraph::new(vec![
        Line::from(vec![
            Span::styled(
                format!("{} / {}", report.strategy, report.adapter),
                Style::new().fg(Color::Cyan).bold(),
            ),
            Span::raw(format!(
                " · {} clients · {}",
                report.num_clients,
                measured_text(report)
            )),
        ]),
        verdict(report),
    ])
    .render(head, buf);
    render_table(report, offset, wide, table_area, buf);
    Paragraph::new(notes)
        .wrap(Wrap { trim: true })
        .render(notes_area, buf);
}

/// The headline: mean cosine of A and of B, and which is more alike across clients.
fn verdict(report: &AnalysisReport) -> Line<'static> {
    let (Some(a), Some(b)) = (report.mean_a, report.mean_b) else {
        return Line::from("only one factor is trained: nothing to set side by side".dark_gray());
    };
    let (text, colour) = if a.cosine > b.cosine {
        ("A more alike than B", Color::Green)
    } else {
        ("B as alike as A or more", Color::Yellow)
    };
    Line::from(vec![
        Span::raw(format!(
            "mean cos A {:.3} B {:.3} · sub A {:.3} B {:.3} · ",
            a.cosine, b.cosine, a.subspace, b.subspace
        )),
        Span::styled(text, Style::new().fg(colour)),
    ])
}

/// A bar of `BAR` cells for a value in [-1, 1]: its length is the magnitude, red if negative.
fn bar(v: Option<f64>) -> Span<'static> {
    let Some(v) = v.filter(|v| v.is_finite()) else {
        return Span::raw("");
    };
    let cells = (v.abs().min(1.0) * BAR as f64).round() as usize;
    let colour = if v < 0.0 { Color::Red } else { Color::Cyan };
    Span::styled("█".repeat(cells), Style::new().fg(colour))
}

fn value(v: Option<f64>) -> Cell<'static> {
    match v {
        Some(v) => Cell::from(format!("{v:>6.3}")),
        None => Cell::from("     -"),
    }
}

fn render_table(report: &AnalysisReport, offset: usize, wide: bool, area: Rect, buf: &mut Buffer) {
    let mut header = vec![
        // Numbers are right-aligned in 6 cells; so are their headers.
        "Layer",
        "Module",
        " A cos",
        " B cos",
        " A sub",
        " B sub",
        "A cos bar",
        "B cos bar",
    ];
    let module_width = report
        .modules
        .iter()
        .map(|m| m.short.chars().count())
        .max()
        .unwrap_or(0)
        .max(6) as u16;
    let mut widths = vec![
        Constraint::Length(5),
        Constraint::Length(module_width),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(BAR as u16),
        Constraint::Length(BAR as u16),
    ];
    if wide {
        header.extend(["A sub bar", "B sub bar"]);
        widths.extend([
            Constraint::Length(BAR as u16),
            Constraint::Length(BAR as u16),
        ]);
    }
    let row = |layer: String, name: String, a: Option<Measures>, b: Option<Measures>| {
        let mut cells = vec![
            Cell::from(layer),
            Cell::from(name),
            value(a.map(|m| m.cosine)),
            value(b.map(|m| m.cosine)),
            value(a.map(|m| m.subspace)),
            value(b.map(|m| m.subspace)),
            Cell::from(bar(a.map(|m| m.cosine))),
            Cell::from(bar(b.map(|m| m.cosine))),
        ];
        if wide {
            cells.extend([
                Cell::from(bar(a.map(|m| m.subspace))),
                Cell::from(bar(b.map(|m| m.subspace))),
            ]);
        }
        Row::new(cells)
    };
    // The mean stays visible as the last row however far the modules scroll.
    let visible = usize::from(area.height.saturating_sub(2)).max(1);
    let mut rows: Vec<Row> = report
        .modules
        .iter()
        .skip(offset)
        .take(visible.saturating_sub(1))
        .map(|m| {
            row(
                m.layer.map_or_else(|| "-".into(), |l| l.to_string()),
                m.short.clone(),
                m.a,
                m.b,
            )
        })
        .collect();
    rows.push(
        row(String::new(), "mean".into(), report.mean_a, report.mean_b).style(Style::new().bold()),
    );
    Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().bold().fg(Color::Cyan)))
        .column_spacing(1)
        .flex(Flex::Start)
        .render(area, buf);
}
