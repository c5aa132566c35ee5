//! GSM8K's own JSON Lines layout: `{"question": ..., "answer": ...}` where the answer is a worked
//! solution whose last line is `#### N`. The question becomes the example's prompt (`text`), the
//! worked answer its response (`text_pair`). GSM8K has no categories: every example gets the
//! label [`SINGLE_CATEGORY`](super::SINGLE_CATEGORY) unless a category field is configured (for files that add one).

use std::path::Path;

use fedsa_core::Result;

use super::RawRecord;
use super::json_object::read_objects;
use crate::answer::{ANSWER_MARKER, exact_number};

/// How to read a GSM8K-layout file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gsm8kSpec {
    /// Field whose value is the example's category (its label for partitioning), if any.
    pub category: Option<String>,
    /// Field whose value groups examples for partitioning by key, if any.
    pub key: Option<String>,
    /// Remove GSM8K's calculator annotations (`48/2 = <<48/2=24>>24` becomes `48/2 = 24`): they
    /// are tool calls of the original data collection, not reasoning a model should imitate.
    pub strip_calculator: bool,
}

impl Default for Gsm8kSpec {
    fn default() -> Self {
        Self {
            category: None,
            key: None,
            strip_calculator: true,
        }
    }
}

/// Reads every problem of a GSM8K-layout file. An answer without a final `#### N` line, with
/// anything but one number after the marker, or an empty question is an error naming the line.
pub fn read_gsm8k(path: &Path, spec: &Gsm8kSpec) -> Result<Vec<RawRecord>> {
    let mut out = Vec::new();
    for object in read_objects(path)? {
        let question = object.string("question", "the GSM8K layout")?;
        let answer = object.string("answer", "the GSM8K layout")?;
        if question.trim().is_empty() {
            return Err(object.error("empty `question`"));
        }
        let Some(at) = answer.rfind(ANSWER_MARKER) else {
            return Err(object.error(format!(
                "the `answer` has no final `{ANSWER_MARKER} N` line"
            )));
        };
        let after = &answer[at + ANSWER_MARKER.len()..];
        if exact_number(after).is_none() {
            return Err(object.error(format!(
                "the `answer` must end in `{ANSWER_MARKER} N` with N a number, got `{ANSWER_MARKER}{after}`"
            )));
        }
        let answer = if spec.strip_calculator {
            strip_calculator(&answer)
        } else {
            answer
        };
        out.push(RawRecord {
            line: object.line,
            text: question,
            text_pair: Some(answer),
            label: object.category(spec.category.as_deref())?,
            key: object.key(spec.key.as_deref())?,
        });
    }
    Ok(out)
}

/// `text` without its `<<...>>` annotations; an unclosed `<<` is kept as written.
fn strip_calculator(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("<<") {
        let Some(close) = rest[open..].find(">>") else {
            break;
        };
        out.push_str(&rest[..open]);
        rest = &rest[open + close + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::strip_calculator;

    #[test]
    fn calculator_annotations_are_removed() {
        assert_eq!(
            strip_calculator("48/2 = <<48/2=24>>24 clips, <<24+48=72>>72 in all"),
            "48/2 = 24 clips, 72 in all"
        );
        assert_eq!(strip_calculator("a << b"), "a << b");
    }
}
