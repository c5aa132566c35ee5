//! Reading examples from files: each reader yields raw records (text, label as written, key,
//! line), and [`load_dataset`] turns them into a [`Dataset`] with one label mapping, the same
//! for every format. The generation readers (GSM8K, instruction JSONL) yield the same records,
//! with the response in `text_pair` and a category as label; `crate::load_generation` maps
//! them.

mod delimited;
mod glue;
mod gsm8k;
mod instruction;
mod json_object;
mod jsonl;
mod rotten_tomatoes;

use std::collections::BTreeSet;
use std::path::Path;

use fedsa_core::config::{DataConfig, DataFormat};
use fedsa_core::{Error, Result, SeededRng};

use crate::example::{Dataset, Example};
use crate::rng::stream;

pub use delimited::{Column, DelimitedSpec, read_delimited};
pub use glue::{GlueSplit, GlueTask, load_glue};
pub use gsm8k::{Gsm8kSpec, read_gsm8k};
pub use instruction::{InstructionSpec, read_instructions};
pub use jsonl::{JsonlSpec, read_jsonl};
pub use rotten_tomatoes::{CORPUS_FILE, read_rotten_tomatoes};

/// The one category of generation examples read without a category field.
pub const SINGLE_CATEGORY: &str = "all";

/// One example as read, before labels are mapped to ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// 1-based line where the record starts, for errors found after reading.
    pub line: usize,
    pub text: String,
    pub text_pair: Option<String>,
    pub label: String,
    pub key: Option<String>,
}

/// Loads the examples `cfg` describes.
///
/// `key_column` is the column that groups examples for partitioning by key (from
/// `partition.key`); the Rotten Tomatoes corpus uses `movie_name` when it is `None`. `cfg.labels`
/// fixes the label order; otherwise a GLUE task uses GLUE's own label ids and any other source
/// the sorted set of labels it contains. With `cfg.max_examples`, a seeded random subset is kept
/// (in file order); label ids are assigned before the cut, so they do not depend on it.
pub fn load_dataset(cfg: &DataConfig, key_column: Option<&str>, seed: u64) -> Result<Dataset> {
    let path = cfg.path.as_path();
    let (source, records, preset_labels) = match cfg.format {
        DataFormat::RottenTomatoes => {
            let file = rotten_tomatoes::corpus_file(path);
            let records = read_rotten_tomatoes(&file, key_column)?;
            (file, records, None)
        }
        DataFormat::Csv | DataFormat::Tsv => {
            let delimiter = if cfg.format == DataFormat::Csv {
                b','
            } else {
                b'\t'
            };
            let spec = DelimitedSpec::from_config(cfg, delimiter, key_column)?;
            (path.to_path_buf(), read_delimited(path, &spec)?, None)
        }
        DataFormat::Jsonl => {
            let spec = JsonlSpec::from_config(cfg, key_column)?;
            (path.to_path_buf(), read_jsonl(path, &spec)?, None)
        }
        DataFormat::Arithmetic | DataFormat::Gsm8k | DataFormat::Instruction => {
            return crate::load_generation(
                &crate::GenerationSource::from_config(cfg, key_column),
                cfg.max_examples,
                seed,
            );
        }
        DataFormat::Glue => {
            let name = cfg.glue_task.as_deref().ok_or_else(|| {
                Error::run_config("data.glue_task", "required when data.format = \"glue\"")
            })?;
            let task = GlueTask::parse(name)?;
            let (file, records) = glue::read_glue(path, task, GlueSplit::Train, key_column)?;
            (file, records, Some(task.labels()))
        }
    };
    let labels: Option<Vec<String>> = cfg
        .labels
        .clone()
        .or_else(|| preset_labels.map(|l| l.iter().map(|s| (*s).to_string()).collect()));
    build_dataset(&source, records, labels, cfg.max_examples, seed)
}

/// Maps labels to ids (fixed by `labels`, else sorted as found) and applies the example cap.
pub fn build_dataset(
    source: &Path,
    records: Vec<RawRecord>,
    labels: Option<Vec<String>>,
    max_examples: Option<usize>,
    seed: u64,
) -> Result<Dataset> {
    if records.is_empty() {
        return Err(Error::data(
            source,
            0,
            "no examples: the file has no data rows (or every row was skipped)",
        ));
    }
    let label_names = if let Some(fixed) = labels {
        let distinct: BTreeSet<&String> = fixed.iter().collect();
        if distinct.len() != fixed.len() {
            return Err(Error::run_config(
                "data.labels",
                format!("label names must be distinct, got {fixed:?}"),
            ));
        }
        fixed
    } else {
        let found: BTreeSet<&str> = records.iter().map(|r| r.label.as_str()).collect();
        if found.len() < 2 {
            return Err(Error::data(
                source,
                0,
                format!(
                    "every example has the label {:?}: a classifier needs at least two labels",
                    found.iter().next().copied().unwrap_or_default()
                ),
            ));
        }
        found.into_iter().map(str::to_string).collect()
    };
    let mut examples = Vec::with_capacity(records.len());
    for r in records {
        let Some(id) = label_names.iter().position(|n| *n == r.label) else {
            return Err(Error::data(
                source,
                r.line,
                format!(
                    "label {:?} is not in the label mapping {label_names:?} (data.labels)",
                    r.label
                ),
            ));
        };
        examples.push(Example {
            text: r.text,
            text_pair: r.text_pair,
            label: id as u32,
            key: r.key,
        });
    }
    if let Some(cap) = max_examples.filter(|&m| m < examples.len()) {
        let mut order: Vec<usize> = (0..examples.len()).collect();
        SeededRng::derive(seed, &[stream::MAX_EXAMPLES]).shuffle(&mut order);
        let mut keep = order[..cap].to_vec();
        keep.sort_unstable();
        let mut all: Vec<Option<Example>> = examples.into_iter().map(Some).collect();
        examples = keep.iter().filter_map(|&i| all[i].take()).collect();
    }
    Ok(Dataset {
        examples,
        label_names,
        source: source.to_path_buf(),
    })
}

/// Text of a field that must hold a label: trimmed, and not empty.
pub(crate) fn label_value(file: &Path, line: usize, column: &str, raw: &str) -> Result<String> {
    let label = raw.trim();
    if label.is_empty() {
        return Err(Error::data(
            file,
            line,
            format!("empty label in column `{column}`"),
        ));
    }
    Ok(label.to_string())
}
