//! Instruction/response JSON Lines files: each object holds a prompt and the response to learn,
//! under configurable field names (`prompt`/`completion` by default; Alpaca-style files use
//! `instruction`, `input` and `output`). The prompt becomes the example's `text`, the response
//! its `text_pair`; the label is a category used only for partitioning.

use std::path::Path;

use fedsa_core::Result;

use super::RawRecord;
use super::json_object::read_objects;

/// Which fields of each object hold what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstructionSpec {
    pub prompt: String,
    pub completion: String,
    /// A field of extra context appended to the prompt after a blank line when it is not empty
    /// (Alpaca's `input`).
    pub input: Option<String>,
    /// Field whose value is the example's category; without it every example is `all`.
    pub category: Option<String>,
    /// Field whose value groups examples for partitioning by key, if any.
    pub key: Option<String>,
}

impl Default for InstructionSpec {
    fn default() -> Self {
        Self {
            prompt: "prompt".to_string(),
            completion: "completion".to_string(),
            input: None,
            category: None,
            key: None,
        }
    }
}

impl InstructionSpec {
    /// The Alpaca layout: `instruction`, optional `input`, `output`.
    pub fn alpaca() -> Self {
        Self {
            prompt: "instruction".to_string(),
            completion: "output".to_string(),
            input: Some("input".to_string()),
            ..Self::default()
        }
    }
}

/// Reads every prompt/response pair; an empty prompt or response is an error naming the line
/// (an empty response would give the example nothing to learn).
pub fn read_instructions(path: &Path, spec: &InstructionSpec) -> Result<Vec<RawRecord>> {
    let mut out = Vec::new();
    for object in read_objects(path)? {
        let mut prompt = object.string(&spec.prompt, "the prompt field")?;
        let completion = object.string(&spec.completion, "the completion field")?;
        if let Some(field) = &spec.input {
            let input = object.string(field, "the input field")?;
            if !input.trim().is_empty() {
                prompt = format!("{prompt}\n\n{input}");
            }
        }
        for (name, value) in [(&spec.prompt, &prompt), (&spec.completion, &completion)] {
            if value.trim().is_empty() {
                return Err(object.error(format!("empty field `{name}`")));
            }
        }
        out.push(RawRecord {
            line: object.line,
            text: prompt,
            text_pair: Some(completion),
            label: object.category(spec.category.as_deref())?,
            key: object.key(spec.key.as_deref())?,
        });
    }
    Ok(out)
}
