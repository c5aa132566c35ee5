//! JSON Lines files: one JSON object per line, fields named by the config. Labels and keys may
//! be strings, numbers or booleans (written as text); texts must be strings. Blank lines are
//! skipped.

use std::path::Path;

use fedsa_core::config::DataConfig;
use fedsa_core::{Error, Result};

use super::json_object::read_objects;
use super::{RawRecord, label_value};

/// Which fields of each object hold what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonlSpec {
    pub text: String,
    pub text_pair: Option<String>,
    pub label: String,
    pub key: Option<String>,
}

impl JsonlSpec {
    pub fn from_config(cfg: &DataConfig, key: Option<&str>) -> Result<Self> {
        let text = cfg.text_column.clone().ok_or_else(|| {
            Error::run_config("data.text_column", "required for csv, tsv and jsonl data")
        })?;
        let label = cfg.label_column.clone().ok_or_else(|| {
            Error::run_config("data.label_column", "required for csv, tsv and jsonl data")
        })?;
        Ok(Self {
            text,
            text_pair: cfg.text_pair_column.clone(),
            label,
            key: key.map(str::to_string),
        })
    }
}

/// Reads every example of a JSON Lines file.
pub fn read_jsonl(path: &Path, spec: &JsonlSpec) -> Result<Vec<RawRecord>> {
    let mut out = Vec::new();
    for object in read_objects(path)? {
        let label = object.scalar(&spec.label, "data.label_column")?;
        out.push(RawRecord {
            line: object.line,
            text: object.string(&spec.text, "data.text_column")?,
            text_pair: spec
                .text_pair
                .as_deref()
                .map(|p| object.string(p, "data.text_pair_column"))
                .transpose()?,
            label: label_value(path, object.line, &spec.label, &label)?,
            key: spec
                .key
                .as_deref()
                .map(|k| object.scalar(k, "partition.key"))
                .transpose()?,
        });
    }
    Ok(out)
}
