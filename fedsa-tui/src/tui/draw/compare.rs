//! The Compare screen: several run folders side by side (e.g. FedSA vs FedIT vs FFA-LoRA), a
//! table of their final figures (on a wide terminal also the best example-weighted mean
//! accuracy) and their mean accuracy and loss curves overlaid.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Cell, HighlightSpacing, Paragraph, Row, StatefulWidget, Table, TableState, Widget,
};

use super::chart::{Scale, Series, line_chart};
use super::{PALETTE, WIDE, human_bytes, loss, pct, placeholder};
use crate::tui::app::App;

pub(super) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let runs = &app.compare.runs;
    let input_height = u16::from(app.compare.input.is_some());
    let [main, input_area] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(input_height)]).areas(area);
    if let Some(text) = &app.compare.input {
        Paragraph::new(Line::from(vec![
            Span::styled(" run folder: ", Style::new().fg(Color::Cyan)),
            Span::styled(
                format!("{text}▏"),
                Style::new().fg(Color::Black).bg(Color::Yellow),
            ),
        ]))
        .render(input_area, buf);
    }
    if runs.is_empty() {
        let block = Block::bordered().title(" Compare runs ");
        let inner = block.inner(main);
        block.render(main, buf);
        let out = app.form.assembled().output_dir;
        placeholder(
            &format!(
                "No runs loaded. f loads the runs in {}, a adds any run folder.",
                out.display()
            ),
            inner,
            buf,
        );
        return;
    }
    let table_height = (runs.len() as u16 + 3).min(10);
    let [table_area, charts_area] =
        Layout::vertical([Constraint::Length(table_height), Constraint::Min(0)]).areas(main);
    render_table(app, area.width >= WIDE, table_area, buf);

    let last_round = runs
        .iter()
        .filter_map(|r| r.rounds.last().map(|x| x.round))
        .max()
        .unwrap_or(1);
    let first_round = runs
        .iter()
        .filter_map(|r| r.rounds.first().map(|x| x.round))
        .min()
        .unwrap_or(1);
    let series = |f: fn(&fedsa_core::RoundRecord) -> Option<f64>| -> Vec<Series> {
        runs.iter()
            .enumerate()
            .map(|(i, run)| Series {
                name: run.name.clone(),
                points: run
                    .rounds
                    .iter()
                    .filter_map(|r| f(r).map(|v| (r.round as f64, v)))
                    .collect(),
                color: PALETTE[i % PALETTE.len()],
                bold: i == app.compare.selected,
            })
            .collect()
    };
    let [acc_area, loss_area] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(charts_area);
    line_chart(
        "Mean accuracy %",
        &series(|r| r.mean_accuracy),
        (first_round, last_round),
        Scale::Percent,
        acc_area,
        buf,
    );
    line_chart(
        "Mean loss",
        &series(|r| r.mean_loss),
        (first_round, last_round),
        Scale::FromZero,
        loss_area,
        buf,
    );
}

fn render_table(app: &App, wide: bool, area: Rect, buf: &mut Buffer) {
    let mut header = vec!["Run", "Strategy", "Rounds", "Final %", "Best %", "Loss"];
    let mut widths = vec![
        Constraint::Fill(1),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
    ];
    if wide {
        // The example-weighted mean's best round beside the plain one (the paper's headline).
        header.insert(5, "Wtd best");
        widths.insert(5, Constraint::Length(8));
        header.extend(["Up", "Folder"]);
        widths.extend([Constraint::Length(10), Constraint::Fill(2)]);
    }
    let rows = app.compare.runs.iter().enumerate().map(|(i, run)| {
        let mut cells = vec![
            Cell::from(run.name.clone()).style(Style::new().fg(PALETTE[i % PALETTE.len()])),
            Cell::from(run.strategy.clone().unwrap_or_else(|| "?".into())),
            Cell::from(run.rounds.len().to_string()),
            Cell::from(pct(run.final_accuracy())),
            Cell::from(pct(run.best_accuracy())),
            Cell::from(loss(run.final_loss())),
        ];
        if wide {
            cells.insert(5, Cell::from(pct(run.means().weighted_accuracy.best)));
            cells.extend([
                Cell::from(human_bytes(run.bytes_up())),
                Cell::from(run.path.display().to_string()),
            ]);
        }
        Row::new(cells)
    });
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().bold().fg(Color::Cyan)))
        .block(Block::bordered().title(" Compare runs "))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("▶ ")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = TableState::default().with_selected(Some(app.compare.selected));
    StatefulWidget::render(table, area, buf, &mut state);
}
