//! JSON Lines files: one JSON object per line, fields named by the config. Labels and keys may
//! be strings, numbers or booleans (written as text); texts must be strings. Blank lines are
//! skipped.

use std::path::Path;

use fedsa_core::config::DataConfig;
use fedsa_core::{Error, Result};
use serde_json::Value;

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
            Error::config(
                "data",
                "data.text_column",
                "required for csv, tsv and jsonl data",
            )
        })?;
        let label = cfg.label_column.clone().ok_or_else(|| {
            Error::config(
                "data",
                "data.label_column",
                "required for csv, tsv and jsonl data",
            )
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
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::data(
            path,
            1,
            "the file is empty: expected one JSON object per line",
        ));
    }
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let text = std::str::from_utf8(raw)
            .map_err(|e| Error::data(path, line, format!("invalid UTF-8: {e}")))?;
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::data(path, line, format!("invalid JSON: {e}")))?;
        let Value::Object(object) = value else {
            return Err(Error::data(
                path,
                line,
                "expected a JSON object with the example's fields",
            ));
        };
        let get = |name: &str, field: &str| -> Result<&Value> {
            object.get(name).ok_or_else(|| {
                let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
                keys.sort_unstable();
                Error::data(
                    path,
                    line,
                    format!(
                        "missing field `{name}` (named by {field}); the object has: {}",
                        keys.join(", ")
                    ),
                )
            })
        };
        let string = |name: &str, field: &str| -> Result<String> {
            match get(name, field)? {
                Value::String(s) => Ok(s.clone()),
                other => Err(Error::data(
                    path,
                    line,
                    format!("field `{name}` must be a string, got {}", kind(other)),
                )),
            }
        };
        let scalar = |name: &str, field: &str| -> Result<String> {
            match get(name, field)? {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                other => Err(Error::data(
                    path,
                    line,
                    format!(
                        "field `{name}` must be a string, number or boolean, got {}",
                        kind(other)
                    ),
                )),
            }
        };
        let label = scalar(&spec.label, "data.label_column")?;
        out.push(RawRecord {
            line,
            text: string(&spec.text, "data.text_column")?,
            text_pair: spec
                .text_pair
                .as_deref()
                .map(|p| string(p, "data.text_pair_column"))
                .transpose()?,
            label: label_value(path, line, &spec.label, &label)?,
            key: spec
                .key
                .as_deref()
                .map(|k| scalar(k, "partition.key"))
                .transpose()?,
        });
    }
    Ok(out)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
