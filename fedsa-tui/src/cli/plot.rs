//! PNG figures for `fedsa analyze` (a heatmap of A/B similarity per module) and `fedsa compare`
//! (accuracy and F1 per round, and each client's final accuracy), drawn with plotters.
//!
//! Text is rendered by plotters' pure-Rust `ab_glyph` path from a font bundled in the binary
//! (DejaVu Sans, see `assets/fonts/`), so plotting needs no system font libraries.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use fedsa_engine::analysis::Measures;
use fedsa_engine::analyze::AnalysisReport;
use fedsa_engine::runs::RunFigures;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Line colours (Tableau 10): distinct, and readable on white.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Registers the bundled font under plotters' `sans-serif` family, once per process.
fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!("the bundled plotting font could not be read"))
    }
}

/// Creates `path`'s folder, draws with `paint` on a `size` canvas, and writes the PNG.
fn render(
    path: &Path,
    size: (u32, u32),
    paint: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> Result<()>,
) -> Result<()> {
    register_font()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--png: creating {}", dir.display()))?;
    }
    // The encoder reports a failed write as its own error type's debug text; trying the file
    // first gives the operating system's reason, named.
    std::fs::File::create(path).with_context(|| format!("--png: writing {}", path.display()))?;
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_error(path, &e))?;
    paint(&root).with_context(|| format!("drawing {}", path.display()))?;
    root.present().map_err(|e| draw_error(path, &e))?;
    Ok(())
}

fn draw_error(path: &Path, e: &dyn std::fmt::Display) -> anyhow::Error {
    anyhow!("--png: writing {}: {e}", path.display())
}

/// Maps a plotters error to anyhow (its error type is generic over the backend).
fn de<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("{e}")
}

/// A diverging colour for a similarity in [-1, 1]: red for -1, white for 0, blue for 1.
pub fn similarity_colour(v: f64) -> RGBColor {
    let v = if v.is_finite() {
        v.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let (r, g, b) = if v >= 0.0 {
        (33.0, 102.0, 172.0) // blue
    } else {
        (178.0, 24.0, 43.0) // red
    };
    let t = v.abs();
    let mix = |c: f64| (255.0 + (c - 255.0) * t).round() as u8;
    RGBColor(mix(r), mix(g), mix(b))
}

/// Black or white, whichever reads better on `bg`.
fn ink_on(bg: RGBColor) -> RGBColor {
    let luma = 0.299 * f64::from(bg.0) + 0.587 * f64::from(bg.1) + 0.114 * f64::from(bg.2);
    if luma < 140.0 { WHITE } else { BLACK }
}

fn text_style(size: f64, colour: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    ("sans-serif", size)
        .into_font()
        .color(&colour)
        .pos(Pos::new(h, v))
}

/// The analysis as a heatmap: one row per adapted module, columns for A and B under each
/// measure, each cell coloured by its value and labelled with it; a colour bar on the right.
pub fn similarity_heatmap(report: &AnalysisReport, path: &Path) -> Result<()> {
    const COLUMNS: [&str; 4] = ["A cosine", "B cosine", "A subspace", "B subspace"];
    // A gap between the cosine and the subspace columns groups them by measure.
    const GAP: i32 = 18;
    let rows = &report.modules;
    let cell_h: i32 = 30;
    let cell_w: i32 = 140;
    let left: i32 = 190;
    let top: i32 = 110;
    let col_x = |i: usize| left + cell_w * i as i32 + if i >= 2 { GAP } else { 0 };
    let grid_w = cell_w * COLUMNS.len() as i32 + GAP;
    let body_h = cell_h * (rows.len() as i32 + 1); // one extra row: the mean
    let notes: Vec<String> = report
        .notes
        .iter()
        .flat_map(|n| wrap(&format!("note: {n}"), 105))
        .collect();
    let width = (left + grid_w + GAP + 150) as u32;
    let height = (top + body_h + 60 + 20 * notes.len() as i32) as u32;
    render(path, (width, height), |root| {
        let centre_x = (left + grid_w / 2, 0);
        root.draw(&Text::new(
            format!("A/B similarity across {} clients", report.num_clients),
            (centre_x.0, 14),
            text_style(24.0, BLACK, HPos::Center, VPos::Top),
        ))
        .map_err(de)?;
        root.draw(&Text::new(
            format!(
                "run {} · {} · {} · {}",
                report.run,
                report.strategy,
                report.adapter,
                fedsa_engine::analyze::measured_text(report)
            ),
            (centre_x.0, 46),
            text_style(16.0, RGBColor(70, 70, 70), HPos::Center, VPos::Top),
        ))
        .map_err(de)?;
        for (i, name) in COLUMNS.iter().enumerate() {
            let x = col_x(i) + cell_w / 2;
            root.draw(&Text::new(
                (*name).to_string(),
                (x, top - 10),
                text_style(16.0, BLACK, HPos::Center, VPos::Bottom),
            ))
            .map_err(de)?;
        }
        let draw_row = |row: i32, label: &str, a: Option<Measures>, b: Option<Measures>| {
            let y = top + cell_h * row;
            root.draw(&Text::new(
                label.to_string(),
                (left - 12, y + cell_h / 2),
                text_style(15.0, BLACK, HPos::Right, VPos::Center),
            ))
            .map_err(de)?;
            let values = [
                a.map(|m| m.cosine),
                b.map(|m| m.cosine),
                a.map(|m| m.subspace),
                b.map(|m| m.subspace),
            ];
            for (i, v) in values.iter().enumerate() {
                let x = col_x(i);
                let bg = v.map_or(RGBColor(235, 235, 235), similarity_colour);
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell_w, y + cell_h)],
                    bg.filled(),
                ))
                .map_err(de)?;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell_w, y + cell_h)],
                    WHITE.stroke_width(2),
                ))
                .map_err(de)?;
                let text = v.map_or_else(|| "n/a".into(), |v| format!("{v:.3}"));
                root.draw(&Text::new(
                    text,
                    (x + cell_w / 2, y + cell_h / 2),
                    text_style(15.0, ink_on(bg), HPos::Center, VPos::Center),
                ))
                .map_err(de)?;
            }
            Ok::<(), anyhow::Error>(())
        };
        for (r, m) in rows.iter().enumerate() {
            let label = match m.layer {
                Some(l) => format!("layer {l} · {}", m.short),
                None => m.short.clone(),
            };
            draw_row(r as i32, &label, m.a, m.b)?;
        }
        draw_row(rows.len() as i32, "mean", report.mean_a, report.mean_b)?;
        // A rule above the mean row sets it apart from the modules.
        let y = top + cell_h * rows.len() as i32;
        root.draw(&PathElement::new(
            vec![(left - 100, y), (left + grid_w, y)],
            BLACK.stroke_width(2),
        ))
        .map_err(de)?;
        colour_bar(root, left + grid_w + 40, top, body_h)?;
        let update = match report.measured {
            fedsa_engine::analyze::Measured::Checkpoint => "learned − initial",
            fedsa_engine::analyze::Measured::LocalRound => "over one local round",
        };
        root.draw(&Text::new(
            format!(
                "cosine: mean pairwise cosine of the clients' updates ({update});  \
                 subspace: overlap of the updates' spanned subspaces, from 0 to 1"
            ),
            (centre_x.0, top + body_h + 24),
            text_style(13.0, RGBColor(70, 70, 70), HPos::Center, VPos::Top),
        ))
        .map_err(de)?;
        for (i, line) in notes.iter().enumerate() {
            root.draw(&Text::new(
                line.clone(),
                (centre_x.0, top + body_h + 46 + 20 * i as i32),
                text_style(13.0, RGBColor(150, 60, 0), HPos::Center, VPos::Top),
            ))
            .map_err(de)?;
        }
        Ok(())
    })
}

/// `text` broken into lines of at most `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().expect("lines start non-empty");
        if !last.is_empty() && last.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

/// A vertical bar from -1 (bottom) to 1 (top) with ticks.
fn colour_bar(root: &DrawingArea<BitMapBackend, Shift>, x: i32, y: i32, h: i32) -> Result<()> {
    let w = 22;
    for i in 0..h {
        let v = 1.0 - 2.0 * f64::from(i) / f64::from(h.max(1));
        root.draw(&Rectangle::new(
            [(x, y + i), (x + w, y + i + 1)],
            similarity_colour(v).filled(),
        ))
        .map_err(de)?;
    }
    root.draw(&Rectangle::new(
        [(x, y), (x + w, y + h)],
        BLACK.stroke_width(1),
    ))
    .map_err(de)?;
    for (v, label) in [
        (1.0, "1"),
        (0.5, "0.5"),
        (0.0, "0"),
        (-0.5, "-0.5"),
        (-1.0, "-1"),
    ] {
        let ty = y + ((1.0 - v) / 2.0 * f64::from(h)).round() as i32;
        root.draw(&PathElement::new(
            vec![(x + w, ty), (x + w + 5, ty)],
            BLACK.stroke_width(1),
        ))
        .map_err(de)?;
        root.draw(&Text::new(
            label.to_string(),
            (x + w + 8, ty),
            text_style(13.0, BLACK, HPos::Left, VPos::Center),
        ))
        .map_err(de)?;
    }
    Ok(())
}

/// Runs per line of the shared legend.
const LEGEND_PER_LINE: usize = 5;

/// The comparison: one legend for all panels under the title, mean accuracy and mean macro-F1
/// per round (one line per run), and each client's final accuracy per run (grouped bars).
pub fn comparison_plot(runs: &[RunFigures], path: &Path) -> Result<()> {
    let legend_lines = runs.len().div_ceil(LEGEND_PER_LINE).max(1) as u32;
    render(path, (1400, 950 + 26 * legend_lines), |root| {
        let title = match runs.len() {
            1 => "Comparison of 1 run".to_string(),
            n => format!("Comparison of {n} runs"),
        };
        root.margin(10, 0, 0, 0)
            .titled(&title, ("sans-serif", 26))
            .map_err(de)
            .and_then(|area| {
                let (legend, area) = area.split_vertically(10 + 26 * legend_lines);
                shared_legend(&legend, runs)?;
                let (top, bottom) = area.split_vertically(520);
                let (acc, f1) = top.split_horizontally(700);
                curve_panel(
                    &acc,
                    runs,
                    "Mean client accuracy per round",
                    "accuracy %",
                    |p| p.mean_accuracy,
                )?;
                curve_panel(
                    &f1,
                    runs,
                    "Mean client macro-F1 per round",
                    "macro-F1 %",
                    |p| p.mean_f1,
                )?;
                client_bars(&bottom, runs)
            })
    })
}

/// The runs' colours and names, centred, `LEGEND_PER_LINE` to a line: one legend serves every
/// panel, and none covers a curve.
fn shared_legend(area: &DrawingArea<BitMapBackend, Shift>, runs: &[RunFigures]) -> Result<()> {
    let (width, _) = area.dim_in_pixel();
    let slot = 260;
    for (line, chunk) in runs.chunks(LEGEND_PER_LINE).enumerate() {
        let used = slot * chunk.len() as i32;
        let x0 = (width as i32 - used) / 2;
        let y = 14 + 26 * line as i32;
        for (j, run) in chunk.iter().enumerate() {
            let colour = PALETTE[(line * LEGEND_PER_LINE + j) % PALETTE.len()];
            let x = x0 + slot * j as i32;
            area.draw(&PathElement::new(
                vec![(x, y), (x + 28, y)],
                colour.stroke_width(4),
            ))
            .map_err(de)?;
            let name: String = run.name.chars().take(28).collect();
            area.draw(&Text::new(
                name,
                (x + 36, y),
                text_style(15.0, BLACK, HPos::Left, VPos::Center),
            ))
            .map_err(de)?;
        }
    }
    Ok(())
}

/// One panel of curves: `value` of every round of every run, in percent.
fn curve_panel(
    area: &DrawingArea<BitMapBackend, Shift>,
    runs: &[RunFigures],
    title: &str,
    y_label: &str,
    value: fn(&fedsa_engine::runs::RoundPoint) -> Option<f64>,
) -> Result<()> {
    let points: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .map(|r| {
            r.curve
                .iter()
                .filter_map(|p| value(p).map(|v| (p.round as f64, 100.0 * v)))
                .collect()
        })
        .collect();
    let last_round = runs
        .iter()
        .flat_map(|r| r.curve.iter().map(|p| p.round))
        .max()
        .unwrap_or(1)
        .max(2);
    let (lo, hi) = y_range(points.iter().flatten().map(|p| p.1));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .margin_right(30)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(1f64..last_round as f64, lo..hi)
        .map_err(de)?;
    chart
        .configure_mesh()
        .x_desc("round")
        .y_desc(y_label)
        .x_labels(last_round.min(12))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(de)?;
    for (i, pts) in points.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(3)))
            .map_err(de)?;
        chart
            .draw_series(
                pts.iter()
                    .map(|&(x, y)| Circle::new((x, y), 4, colour.filled())),
            )
            .map_err(de)?;
    }
    Ok(())
}

/// A y range in percent that holds every value with a little room, clamped to 0..100.
fn y_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 100.0);
    }
    let pad = ((hi - lo) * 0.1).max(2.0);
    ((lo - pad).max(0.0).floor(), (hi + pad).min(100.0).ceil())
}

/// Each client's final accuracy, grouped by client, one bar per run.
fn client_bars(area: &DrawingArea<BitMapBackend, Shift>, runs: &[RunFigures]) -> Result<()> {
    let clients = runs
        .iter()
        .map(|r| r.clients.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Final accuracy of each client on its own test split",
            ("sans-serif", 20),
        )
        .margin(14)
        .margin_right(30)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(0f64..clients as f64, 0f64..100f64)
        .map_err(de)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("client")
        .y_desc("accuracy %")
        .x_labels(clients * 2 + 1)
        // Bars sit around k + 0.5: label the centres only.
        .x_label_formatter(&|x| {
            let frac = x - x.floor();
            if (frac - 0.5).abs() < 1e-6 {
                format!("{:.0}", x.floor())
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(de)?;
    let group = 0.8;
    let bar = group / runs.len().max(1) as f64;
    for (i, run) in runs.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let bars = run.clients.iter().filter_map(|c| {
            let v = 100.0 * c.accuracy?;
            let x0 = c.client as f64 + (1.0 - group) / 2.0 + bar * i as f64;
            Some(Rectangle::new(
                [(x0, 0.0), (x0 + bar * 0.92, v)],
                colour.filled(),
            ))
        });
        chart.draw_series(bars).map_err(de)?;
        // Values on the bars while they are wide enough to carry them.
        if runs.len() * clients <= 30 {
            let labels = run.clients.iter().filter_map(|c| {
                let v = 100.0 * c.accuracy?;
                let x = c.client as f64 + (1.0 - group) / 2.0 + bar * (i as f64 + 0.46);
                Some(Text::new(
                    format!("{v:.1}"),
                    (x, v),
                    text_style(13.0, BLACK, HPos::Center, VPos::Bottom),
                ))
            });
            chart.draw_series(labels).map_err(de)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_run_from_red_through_white_to_blue() {
        assert_eq!(similarity_colour(0.0), RGBColor(255, 255, 255));
        assert_eq!(similarity_colour(1.0), RGBColor(33, 102, 172));
        assert_eq!(similarity_colour(-1.0), RGBColor(178, 24, 43));
        // Out of range and NaN do not panic: clamped, and white.
        assert_eq!(similarity_colour(7.0), similarity_colour(1.0));
        assert_eq!(similarity_colour(f64::NAN), similarity_colour(0.0));
        assert_eq!(ink_on(similarity_colour(1.0)), WHITE);
        assert_eq!(ink_on(similarity_colour(0.1)), BLACK);
    }

    #[test]
    fn notes_wrap_at_spaces() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("a-long-word x", 4), ["a-long-word", "x"]);
    }

    #[test]
    fn y_ranges_hold_the_values_within_percent() {
        assert_eq!(y_range([50.0, 60.0].into_iter()), (48.0, 62.0));
        assert_eq!(y_range([0.5, 99.9].into_iter()), (0.0, 100.0));
        assert_eq!(y_range(std::iter::empty()), (0.0, 100.0));
    }
}
