//! The layer every JSON Lines reader shares: one JSON object per line, blank lines skipped, and
//! field access whose errors name the file, the line, the field and the setting that named it.

use std::path::Path;

use fedsa_core::{Error, Result};
use serde_json::{Map, Value};

use super::{SINGLE_CATEGORY, label_value};

/// One object of a JSON Lines file, with where it was read.
pub(crate) struct JsonObject<'a> {
    path: &'a Path,
    /// 1-based line of the object.
    pub line: usize,
    object: Map<String, Value>,
}

/// Reads every object of a JSON Lines file; an empty file, invalid UTF-8 or JSON, or a line that
/// is not an object is an error naming the line.
pub(crate) fn read_objects(path: &Path) -> Result<Vec<JsonObject<'_>>> {
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
        out.push(JsonObject { path, line, object });
    }
    Ok(out)
}

impl JsonObject<'_> {
    /// A data error at this object's line.
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::data(self.path, self.line, message)
    }

    /// Field `name` (named by the setting `field`), which must be present.
    pub fn get(&self, name: &str, field: &str) -> Result<&Value> {
        self.object.get(name).ok_or_else(|| {
            let mut keys: Vec<&str> = self.object.keys().map(String::as_str).collect();
            keys.sort_unstable();
            self.error(format!(
                "missing field `{name}` (named by {field}); the object has: {}",
                keys.join(", ")
            ))
        })
    }

    /// A field that must hold a string.
    pub fn string(&self, name: &str, field: &str) -> Result<String> {
        match self.get(name, field)? {
            Value::String(s) => Ok(s.clone()),
            other => Err(self.error(format!(
                "field `{name}` must be a string, got {}",
                kind(other)
            ))),
        }
    }

    /// A field that may hold a string, number or boolean, read as text (labels, keys).
    pub fn scalar(&self, name: &str, field: &str) -> Result<String> {
        match self.get(name, field)? {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(self.error(format!(
                "field `{name}` must be a string, number or boolean, got {}",
                kind(other)
            ))),
        }
    }
}

impl JsonObject<'_> {
    /// The example's category: the value of `field` (a non-empty scalar), or
    /// [`SINGLE_CATEGORY`] when no field is configured.
    pub fn category(&self, field: Option<&str>) -> Result<String> {
        match field {
            Some(name) => {
                let raw = self.scalar(name, "the category field")?;
                label_value(self.path, self.line, name, &raw)
            }
            None => Ok(SINGLE_CATEGORY.to_string()),
        }
    }

    /// The example's grouping key: the value of `field`, if one is configured.
    pub fn key(&self, field: Option<&str>) -> Result<Option<String>> {
        field.map(|k| self.scalar(k, "partition.key")).transpose()
    }
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
