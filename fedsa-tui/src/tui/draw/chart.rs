//! Line charts of per-round series (accuracy, loss), shared by the Train and Compare screens.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Widget};

/// One line: points are (round, value).
pub(crate) struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: Color,
    /// Drawn emphasised (means over clients).
    pub bold: bool,
}

/// The value axis of a chart.
#[derive(Clone, Copy)]
pub(crate) enum Scale {
    /// Fractions shown as 0..100 %.
    Percent,
    /// From 0 to just above the largest value.
    FromZero,
}

/// Draws `series` against rounds `first..=last` in a titled box.
pub(crate) fn line_chart(
    title: &str,
    series: &[Series],
    rounds: (usize, usize),
    scale: Scale,
    area: Rect,
    buf: &mut Buffer,
) {
    let (first, last) = (rounds.0.max(1), rounds.1.max(rounds.0.max(1) + 1));
    let scaled: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .filter(|(_, y)| y.is_finite())
                .map(|&(x, y)| match scale {
                    Scale::Percent => (x, y * 100.0),
                    Scale::FromZero => (x, y),
                })
                .collect()
        })
        .collect();
    let (y_max, y_labels) = match scale {
        Scale::Percent => (100.0, vec!["0".to_string(), "50".into(), "100".into()]),
        Scale::FromZero => {
            let top = scaled.iter().flatten().map(|p| p.1).fold(0.0_f64, f64::max);
            let top = if top > 0.0 { top * 1.1 } else { 1.0 };
            (top, vec!["0".to_string(), short(top / 2.0), short(top)])
        }
    };
    let datasets: Vec<Dataset> = series
        .iter()
        .zip(&scaled)
        .map(|(s, points)| {
            let mut style = Style::new().fg(s.color);
            if s.bold {
                style = style.add_modifier(Modifier::BOLD);
            }
            Dataset::default()
                .name(s.name.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(style)
                .data(points)
        })
        .collect();
    Chart::new(datasets)
        .block(Block::bordered().title(format!(" {title} ")))
        .x_axis(
            Axis::default()
                .bounds([first as f64, last as f64])
                .labels([first.to_string(), last.to_string()])
                .style(Style::new().fg(Color::DarkGray)),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, y_max])
                .labels(y_labels)
                .style(Style::new().fg(Color::DarkGray)),
        )
        .render(area, buf);
}

/// A value in at most four significant characters, for axis labels.
fn short(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
