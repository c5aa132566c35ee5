//! The `analyze` and `compare` subcommands' front end: compute, print a table or JSON on
//! stdout, write the PNG (and optionally the JSON) and say where on stderr, so `--json` output
//! stays pipeable.

use std::path::{Path, PathBuf};

use anyhow::Result;
use fedsa_core::io::write_atomic;
use serde::Serialize;

use fedsa_engine::analyze::{Mode, analyze_run};
use fedsa_engine::runs::compare_runs;

use super::plot;
use super::tables::{analysis_table, comparison_table};

/// Where a report goes.
#[derive(Debug, Clone)]
pub struct Output {
    /// JSON on stdout instead of a table.
    pub json: bool,
    pub png: PathBuf,
    /// A file to write the JSON to as well, whatever stdout gets.
    pub json_out: Option<PathBuf>,
}

impl Output {
    fn emit<T: Serialize>(&self, value: &T, table: impl FnOnce() -> String) -> Result<()> {
        let text = serde_json::to_string_pretty(value)?;
        if let Some(path) = &self.json_out {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            write_atomic(path, format!("{text}\n").as_bytes())?;
            eprintln!("wrote {}", path.display());
        }
        if self.json {
            println!("{text}");
        } else {
            print!("{}", table());
        }
        Ok(())
    }
}

/// `fedsa analyze RUN [--json] [--round N] [--from MODE] [--png PATH] [--json-out PATH]`.
pub fn analyze(run: &Path, out: &Output, round: Option<usize>, from: Mode) -> Result<()> {
    let report = analyze_run(run, round, from)?;
    // The figures are printed first: a PNG that cannot be written must not lose them.
    out.emit(&report, || analysis_table(&report))?;
    plot::similarity_heatmap(&report, &out.png)?;
    eprintln!("wrote {}", out.png.display());
    Ok(())
}

/// The path the heatmap goes to when none is given: inside the run folder.
pub fn default_png(run: &Path) -> PathBuf {
    run.join("ab-similarity.png")
}

/// `fedsa compare RUN... [--json] [--png PATH] [--json-out PATH]`.
pub fn compare(runs: &[PathBuf], out: &Output) -> Result<()> {
    let figures = compare_runs(runs)?;
    out.emit(&figures, || comparison_table(&figures))?;
    plot::comparison_plot(&figures, &out.png)?;
    eprintln!("wrote {}", out.png.display());
    Ok(())
}
