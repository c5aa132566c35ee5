//! GLUE presets: the official GLUE TSV layout of each task, read from the folder the user points
//! at (`data.path`), with GLUE's own label ids.
//!
//! GLUE hides its test labels, so a federation splits the task's `train.tsv` into every client's
//! train and test split ([`load_dataset`](super::load_dataset) reads [`GlueSplit::Train`]). The
//! labelled dev files can be read with [`load_glue`] for a separate evaluation; that is the only
//! place where `mnli` (dev_matched.tsv) and `mnli-mm` (dev_mismatched.tsv) differ.
//!
//! GLUE's TSV files use `"` as ordinary text, so quoting is off; CoLA's files have no header.

use std::path::{Path, PathBuf};

use fedsa_core::{Error, Result};

use super::{Column, DelimitedSpec, RawRecord, build_dataset, read_delimited};
use crate::Dataset;

/// A GLUE task with a labelled classification train set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlueTask {
    Sst2,
    Mnli,
    MnliMismatched,
    Qnli,
    Qqp,
    Rte,
    Cola,
    Mrpc,
}

/// Which file of a task folder to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlueSplit {
    Train,
    /// The labelled dev file (`dev.tsv`; `dev_matched.tsv` / `dev_mismatched.tsv` for MNLI).
    Dev,
}

impl GlueTask {
    /// The names accepted in `data.glue_task`.
    pub const NAMES: [&'static str; 8] = [
        "sst2", "mnli", "mnli-mm", "qnli", "qqp", "rte", "cola", "mrpc",
    ];

    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "sst2" | "sst-2" => Self::Sst2,
            "mnli" | "mnli-m" | "mnli-matched" => Self::Mnli,
            "mnli-mm" | "mnli-mismatched" => Self::MnliMismatched,
            "qnli" => Self::Qnli,
            "qqp" => Self::Qqp,
            "rte" => Self::Rte,
            "cola" => Self::Cola,
            "mrpc" => Self::Mrpc,
            _ => {
                return Err(Error::run_config(
                    "data.glue_task",
                    format!(
                        "unknown GLUE task `{name}` (one of: {})",
                        Self::NAMES.join(", ")
                    ),
                ));
            }
        })
    }

    /// Label names in GLUE's id order (the ids GLUE and Hugging Face use).
    pub fn labels(self) -> &'static [&'static str] {
        match self {
            Self::Mnli | Self::MnliMismatched => &["entailment", "neutral", "contradiction"],
            Self::Qnli | Self::Rte => &["entailment", "not_entailment"],
            Self::Sst2 | Self::Qqp | Self::Cola | Self::Mrpc => &["0", "1"],
        }
    }

    /// The file of `split` inside the task folder.
    pub fn file(self, split: GlueSplit) -> &'static str {
        match (self, split) {
            (_, GlueSplit::Train) => "train.tsv",
            (Self::Mnli, GlueSplit::Dev) => "dev_matched.tsv",
            (Self::MnliMismatched, GlueSplit::Dev) => "dev_mismatched.tsv",
            (_, GlueSplit::Dev) => "dev.tsv",
        }
    }

    /// The task's TSV layout: (header?, fields when headerless, text, pair, label).
    fn layout(self) -> (bool, Option<usize>, Column, Option<Column>, Column) {
        let n = Column::name;
        match self {
            Self::Sst2 => (true, None, n("sentence"), None, n("label")),
            Self::Mnli | Self::MnliMismatched => (
                true,
                None,
                n("sentence1"),
                Some(n("sentence2")),
                n("gold_label"),
            ),
            Self::Qnli => (true, None, n("question"), Some(n("sentence")), n("label")),
            Self::Qqp => (
                true,
                None,
                n("question1"),
                Some(n("question2")),
                n("is_duplicate"),
            ),
            Self::Rte => (true, None, n("sentence1"), Some(n("sentence2")), n("label")),
            // CoLA: source, label, original annotation, sentence; no header.
            Self::Cola => (false, Some(4), Column::Index(3), None, Column::Index(1)),
            Self::Mrpc => (
                true,
                None,
                n("#1 String"),
                Some(n("#2 String")),
                n("Quality"),
            ),
        }
    }
}

/// Reads the raw records of one split of a task folder; returns the file read.
pub(super) fn read_glue(
    folder: &Path,
    task: GlueTask,
    split: GlueSplit,
    key_column: Option<&str>,
) -> Result<(PathBuf, Vec<RawRecord>)> {
    let file = folder.join(task.file(split));
    if !file.is_file() {
        return Err(Error::data(
            &file,
            0,
            format!(
                "no such file: data.path must be the GLUE task folder holding {} (the official GLUE layout)",
                task.file(split)
            ),
        ));
    }
    let (has_header, fields, text, text_pair, label) = task.layout();
    let spec = DelimitedSpec {
        delimiter: b'\t',
        quoting: false,
        has_header,
        fields,
        text,
        text_pair,
        label,
        key: key_column.map(Column::name),
        skip_labels: Vec::new(),
    };
    let records = read_delimited(&file, &spec)?;
    Ok((file, records))
}

/// Reads one split of a GLUE task folder with GLUE's label ids (e.g. the dev file, for an
/// evaluation apart from the federated splits).
pub fn load_glue(folder: &Path, task: GlueTask, split: GlueSplit) -> Result<Dataset> {
    let (file, records) = read_glue(folder, task, split, None)?;
    let labels = task.labels().iter().map(|s| (*s).to_string()).collect();
    build_dataset(&file, records, Some(labels), None, 0)
}
