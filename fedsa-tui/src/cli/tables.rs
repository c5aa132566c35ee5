//! The plain-text tables of `fedsa analyze` and `fedsa compare`.

use std::fmt::Write as _;

use fedsa_core::{MeanFigure, MeanFigures, TaskKind};
use fedsa_engine::analysis::Measures;
use fedsa_engine::analyze::{AnalysisReport, measured_text};
use fedsa_engine::runs::RunFigures;
use fedsa_engine::units::{human_bytes, percent_or_dash};

/// A value to three decimals, `-` when absent.
fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.3}"))
}

/// The report as a plain-text table: one row per module, then the means.
pub fn analysis_table(report: &AnalysisReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "A/B similarity across {} clients of {} ({} / {}, {})",
        report.num_clients,
        report.run,
        report.strategy,
        report.adapter,
        measured_text(report)
    );
    let _ = writeln!(
        out,
        "cosine: mean pairwise cosine of the updates; subspace: mean pairwise overlap of the \
         spanned subspaces (0..1)\n"
    );
    let width = report
        .modules
        .iter()
        .map(|m| m.short.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        out,
        "{:>5}  {:<width$}  {:>8}  {:>8}  {:>10}  {:>10}",
        "layer", "module", "A cosine", "B cosine", "A subspace", "B subspace"
    );
    let row =
        |out: &mut String, layer: &str, name: &str, a: Option<Measures>, b: Option<Measures>| {
            let _ = writeln!(
                out,
                "{layer:>5}  {name:<width$}  {:>8}  {:>8}  {:>10}  {:>10}",
                cell(a.map(|m| m.cosine)),
                cell(b.map(|m| m.cosine)),
                cell(a.map(|m| m.subspace)),
                cell(b.map(|m| m.subspace)),
            );
        };
    for m in &report.modules {
        let layer = m.layer.map_or_else(|| "-".into(), |l| l.to_string());
        row(&mut out, &layer, &m.short, m.a, m.b);
    }
    row(&mut out, "", "mean", report.mean_a, report.mean_b);
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

fn pct(v: Option<f64>) -> String {
    percent_or_dash(v, 1)
}

/// The two header lines of the client-means rows ([`means_rows`]).
pub fn means_header() -> [String; 2] {
    [
        format!("{:<11}  {:^21}   {:^21}", "", "unweighted", "weighted")
            .trim_end()
            .to_string(),
        format!(
            "{:<11}  {:>6}  {:>6}  {:>5}   {:>6}  {:>6}  {:>5}",
            "measure", "last", "best", "round", "last", "best", "round"
        ),
    ]
}

/// What the client-means columns mean, under them.
pub const MEANS_NOTE: &str = "last: the last evaluated round; best: the best round (earliest on \
     ties).\nunweighted: each client counts once; weighted: by its test examples.";

/// The client means as rows of a table, in percent with two decimals: accuracy (`accuracy`
/// names it: exact match for generation), then macro-F1 but for generation, where it repeats
/// exact match. Each row: the unweighted mean last, best and the best's round, the same for
/// the example-weighted mean; `-` for a figure the run has not recorded.
pub fn means_rows(means: &MeanFigures, accuracy: &str) -> Vec<String> {
    let mut rows = vec![(accuracy, means.accuracy, means.weighted_accuracy)];
    if accuracy != TaskKind::Generation.accuracy_name() {
        rows.push(("macro-F1", means.macro_f1, means.weighted_f1));
    }
    let cells = |f: MeanFigure| {
        format!(
            "{:>6}  {:>6}  {:>5}",
            percent_or_dash(f.last, 2),
            percent_or_dash(f.best, 2),
            f.best_round.map_or_else(|| "-".into(), |r| r.to_string())
        )
    };
    rows.into_iter()
        .map(|(measure, plain, weighted)| {
            format!("{measure:<11}  {}   {}", cells(plain), cells(weighted))
        })
        .collect()
}

/// The comparison as plain-text tables: the headline figures, then each run's client means,
/// then each client's final figures.
pub fn comparison_table(runs: &[RunFigures]) -> String {
    let mut out = String::new();
    let w = runs.iter().map(|r| r.name.len()).max().unwrap_or(3).max(3);
    let _ = writeln!(
        out,
        "{:<w$}  {:<8}  {:<7}  {:>7}  {:>6}  {:>7}  {:>7}  {:>6}  {:>7}  {:>10}  {:>10}  {:>8}",
        "run",
        "strategy",
        "adapter",
        "clients",
        "rounds",
        "final %",
        "best %",
        "F1 %",
        "best F1",
        "up",
        "down",
        "seconds"
    );
    for r in runs {
        let _ = writeln!(
            out,
            "{:<w$}  {:<8}  {:<7}  {:>7}  {:>6}  {:>7}  {:>7}  {:>6}  {:>7}  {:>10}  {:>10}  {:>8.1}{}",
            r.name,
            r.strategy,
            r.adapter,
            r.num_clients,
            r.rounds,
            pct(r.final_accuracy),
            pct(r.best_accuracy),
            pct(r.final_f1),
            pct(r.best_f1),
            human_bytes(r.bytes_up),
            human_bytes(r.bytes_down),
            r.seconds,
            if r.complete { "" } else { "  (incomplete)" }
        );
    }
    if runs
        .iter()
        .any(|r| r.accuracy_measure == TaskKind::Generation.accuracy_name())
    {
        let _ = writeln!(
            out,
            "(generation runs: accuracy is the exact match of the final answer; F1 repeats it)"
        );
    }
    if !runs.is_empty() {
        let _ = writeln!(out, "\nclient means % (paper: best unweighted)");
        for (i, line) in means_header().iter().enumerate() {
            let first = if i == 1 { "run" } else { "" };
            let _ = writeln!(out, "{}", format!("{first:<w$}  {line}").trim_end());
        }
        for r in runs {
            for (i, line) in means_rows(&r.means, &r.accuracy_measure).iter().enumerate() {
                let name = if i == 0 { r.name.as_str() } else { "" };
                let _ = writeln!(out, "{name:<w$}  {line}");
            }
        }
        let _ = writeln!(out, "{MEANS_NOTE}");
    }
    let most = runs.iter().map(|r| r.clients.len()).max().unwrap_or(0);
    if most > 0 {
        let _ = writeln!(out, "\nfinal accuracy % / macro-F1 % per client");
        let _ = write!(out, "{:<w$}", "run");
        for k in 0..most {
            let _ = write!(out, "  {:>11}", format!("client {k}"));
        }
        out.push('\n');
        for r in runs {
            let _ = write!(out, "{:<w$}", r.name);
            for k in 0..most {
                let text = r.clients.get(k).map_or_else(String::new, |c| {
                    format!("{}/{}", pct(c.accuracy), pct(c.macro_f1))
                });
                let _ = write!(out, "  {text:>11}");
            }
            out.push('\n');
        }
    }
    out
}
