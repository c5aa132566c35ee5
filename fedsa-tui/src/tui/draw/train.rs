//! The training dashboard: round progress with an ETA, charts per round (mean accuracy, loss,
//! accuracy per client), the per-client table and the log. Everything comes from `app.run`,
//! which only the federation's events fill.

use std::fmt::Write as _;

use fedsa_engine::units::epsilon_text;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Cell, Gauge, HighlightSpacing, Paragraph, Row, StatefulWidget, Table, TableState, Widget,
};

use super::chart::{Scale, Series, line_chart};
use super::{PALETTE, WIDE, clock, human_bytes, loss, pct};
use crate::tui::app::App;
use crate::tui::events::{ClientStatus, RunState, RunStatus};

pub(super) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let run = &app.run;
    let wide = area.width >= WIDE;
    // The charts keep at least half the height: the table scrolls (it follows the selection)
    // and the log shows its tail.
    let rest = area.height.saturating_sub(2);
    let rows = run.clients.len() as u16 + 3;
    let (table_height, log_height) = if wide {
        (rows.clamp(4, (rest / 3).max(4)), 0)
    } else {
        (rows.min(2 + (rest / 4).max(2)), (rest / 6).clamp(4, 10))
    };
    let bottom_height = if wide {
        table_height.max(8)
    } else {
        table_height + log_height
    };
    let [gauge_area, info_area, charts_area, bottom_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(bottom_height),
    ])
    .areas(area);
    render_gauge(app, gauge_area, buf);
    render_info(app, info_area, buf);
    // Before a run announces its rounds, the axis shows the configured ones.
    let rounds = if run.total_rounds == 0 {
        app.form.assembled().federation.rounds
    } else {
        run.total_rounds
    };
    render_charts(
        run,
        app.form.assembled().task.kind,
        (run.first_round.max(1), rounds),
        wide,
        charts_area,
        buf,
    );
    let (table_area, log_area) = if wide {
        let [t, l] = Layout::horizontal([Constraint::Percentage(60), Constraint::Fill(1)])
            .areas(bottom_area);
        (t, l)
    } else {
        let [t, l] = Layout::vertical([Constraint::Length(table_height), Constraint::Min(0)])
            .areas(bottom_area);
        (t, l)
    };
    render_clients(app, wide, table_area, buf);
    render_log(app, log_area, buf);
}

fn render_gauge(app: &App, area: Rect, buf: &mut Buffer) {
    let run = &app.run;
    let rounds_done = run
        .rounds
        .last()
        .map_or(run.first_round.saturating_sub(1), |r| r.round);
    let label = match &run.status {
        RunStatus::Idle => format!("not started: r launches `{}`", app.form.assembled().name),
        RunStatus::Starting => "starting: loading model and data".into(),
        RunStatus::Running | RunStatus::Stopping => {
            let mut text = match run.current_round {
                Some(round) => format!(
                    "round {round}/{}  client {}/{}",
                    run.total_rounds,
                    run.done_in_round,
                    run.sampled.len()
                ),
                None => format!("round {rounds_done}/{} done", run.total_rounds),
            };
            if let Some(eta) = run.eta_seconds() {
                let _ = write!(text, "  ETA {}", clock(eta));
            }
            if run.status == RunStatus::Stopping {
                text.push_str("  (stopping after this round)");
            }
            text
        }
        RunStatus::Finished => format!(
            "finished {}/{} rounds: mean acc {}%  best {}%",
            rounds_done,
            run.total_rounds,
            pct(run.summary.as_ref().and_then(|s| s.mean_accuracy)),
            pct(run.summary.as_ref().and_then(|s| s.best_mean_accuracy)),
        ),
        RunStatus::Stopped => format!("stopped after round {rounds_done}/{}", run.total_rounds),
        RunStatus::Failed(e) => format!("failed: {e}"),
    };
    let color = match run.status {
        RunStatus::Failed(_) => Color::Red,
        RunStatus::Stopped | RunStatus::Stopping => Color::Yellow,
        _ => Color::Green,
    };
    Gauge::default()
        .ratio(run.progress())
        .label(label)
        .gauge_style(Style::new().fg(color).bg(Color::DarkGray))
        .render(area, buf);
}

fn render_info(app: &App, area: Rect, buf: &mut Buffer) {
    let run = &app.run;
    let dim = Style::new().fg(Color::DarkGray);
    let mut spans = Vec::new();
    if run.status != RunStatus::Idle {
        spans.extend([
            Span::styled(" strategy ", dim),
            Span::raw(run.strategy.clone()).bold(),
            Span::styled("  aggregator ", dim),
            Span::raw(run.aggregator.clone()),
            Span::styled("  up ", dim),
            Span::raw(human_bytes(run.bytes_up)),
            Span::styled("  down ", dim),
            Span::raw(human_bytes(run.bytes_down)),
        ]);
        // The privacy spent so far, after the last round that reported it.
        if let Some(spent) = run.rounds.iter().rev().find_map(|r| r.privacy) {
            spans.push(Span::styled("  privacy ", dim));
            spans.push(Span::raw(epsilon_text(&spent)));
        }
        if let Some(elapsed) = app.elapsed {
            spans.push(Span::styled("  elapsed ", dim));
            spans.push(Span::raw(clock(elapsed.as_secs_f64())));
        }
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}

fn render_charts(
    run: &RunState,
    task: fedsa_core::TaskKind,
    rounds: (usize, usize),
    wide: bool,
    area: Rect,
    buf: &mut Buffer,
) {
    // Generation runs report exact match where classification reports accuracy.
    let (means_title, clients_title, narrow_title) = if task.is_generation() {
        (
            "Mean exact match %",
            "Exact match per client %",
            "Exact match %",
        )
    } else {
        ("Mean accuracy, F1 %", "Accuracy per client %", "Accuracy %")
    };
    let per_round = |f: fn(&fedsa_core::RoundRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        run.rounds
            .iter()
            .filter_map(|r| f(r).map(|v| (r.round as f64, v)))
            .collect()
    };
    let mean_acc = Series {
        name: "mean".into(),
        points: per_round(|r| r.mean_accuracy),
        color: PALETTE[0],
        bold: true,
    };
    let per_client: Vec<Series> = run
        .clients
        .iter()
        .enumerate()
        .map(|(i, c)| Series {
            name: format!("c{i}"),
            points: c.accuracy.clone(),
            color: PALETTE[1 + i % (PALETTE.len() - 1)],
            bold: false,
        })
        .collect();
    let losses = [
        Series {
            name: "eval".into(),
            points: per_round(|r| r.mean_loss),
            color: PALETTE[0],
            bold: true,
        },
        Series {
            name: "train".into(),
            points: per_round(|r| r.mean_train_loss),
            color: PALETTE[1],
            bold: false,
        },
    ];
    if wide {
        let [acc_area, loss_area, clients_area] = Layout::horizontal([
            Constraint::Fill(1),
            Constraint::Fill(1),
            Constraint::Fill(1),
        ])
        .areas(area);
        let means = [
            mean_acc,
            Series {
                name: "F1".into(),
                points: per_round(|r| r.mean_f1),
                color: PALETTE[2],
                bold: false,
            },
        ];
        line_chart(means_title, &means, rounds, Scale::Percent, acc_area, buf);
        line_chart(
            "Mean loss",
            &losses,
            rounds,
            Scale::FromZero,
            loss_area,
            buf,
        );
        line_chart(
            clients_title,
            &per_client,
            rounds,
            Scale::Percent,
            clients_area,
            buf,
        );
    } else {
        let [acc_area, loss_area] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(area);
        // Per-client lines first so the mean is drawn on top of them.
        let mut acc = per_client;
        acc.push(mean_acc);
        line_chart(narrow_title, &acc, rounds, Scale::Percent, acc_area, buf);
        line_chart("Loss", &losses, rounds, Scale::FromZero, loss_area, buf);
    }
}

fn render_clients(app: &App, wide: bool, area: Rect, buf: &mut Buffer) {
    let run = &app.run;
    let mut header = vec![
        "Client", "Status", "Acc %", "F1 %", "Loss", "Examples", "Fails",
    ];
    let mut widths = vec![
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(5),
    ];
    if wide {
        header.extend(["Train loss", "Up", "Down"]);
        widths.extend([
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(8),
        ]);
    }
    let rows = run.clients.iter().enumerate().map(|(i, c)| {
        let status_style = match c.status {
            ClientStatus::Training => Style::new().fg(Color::Yellow),
            ClientStatus::Failed => Style::new().fg(Color::Red),
            ClientStatus::Trained => Style::new().fg(Color::Green),
            ClientStatus::Queued | ClientStatus::Idle => Style::new().fg(Color::DarkGray),
        };
        let eval = c.eval.as_ref();
        let mut cells = vec![
            Cell::from(i.to_string()),
            Cell::from(c.status.label()).style(status_style),
            Cell::from(pct(eval.map(|e| e.accuracy))),
            Cell::from(pct(eval.map(|e| e.macro_f1))),
            Cell::from(loss(eval.map(|e| e.loss))),
            Cell::from(c.num_train_examples.to_string()),
            Cell::from(c.failures.to_string()),
        ];
        if wide {
            cells.extend([
                Cell::from(loss(c.train_loss)),
                Cell::from(human_bytes(c.bytes_up)),
                Cell::from(human_bytes(c.bytes_down)),
            ]);
        }
        Row::new(cells)
    });
    let mean = run.last_evaluated().map_or_else(String::new, |r| {
        format!(
            " mean acc {}%  F1 {}%  loss {} ",
            pct(r.mean_accuracy),
            pct(r.mean_f1),
            loss(r.mean_loss)
        )
    });
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().bold().fg(Color::Cyan)))
        .block(
            Block::bordered()
                .title(" Clients ")
                .title_bottom(Line::from(mean).right_aligned()),
        )
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_spacing(HighlightSpacing::Never);
    let selected = (!run.clients.is_empty()).then_some(app.train_selected);
    let mut state = TableState::default().with_selected(selected);
    StatefulWidget::render(table, area, buf, &mut state);
}

fn render_log(app: &App, area: Rect, buf: &mut Buffer) {
    let block = Block::bordered().title(" Log ");
    let height = block.inner(area).height as usize;
    let skip = app.log.len().saturating_sub(height);
    let lines: Vec<Line> = app.log.lines().skip(skip).map(Line::from).collect();
    Paragraph::new(lines).block(block).render(area, buf);
}
