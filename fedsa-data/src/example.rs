//! The in-memory dataset: labelled text examples, the label names in id order, and the label
//! mapping that is saved with a run so its predictions can be read back as names.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One labelled example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    pub text: String,
    /// The second text of pair tasks (NLI, paraphrase), if any.
    pub text_pair: Option<String>,
    /// Index into [`Dataset::label_names`].
    pub label: u32,
    /// Grouping key for partitioning by key (e.g. the movie), if one was read.
    pub key: Option<String>,
}

/// Examples read from one source.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub examples: Vec<Example>,
    /// Label names in id order: `label_names[example.label]`.
    pub label_names: Vec<String>,
    /// The file the examples were read from.
    pub source: PathBuf,
}

impl Dataset {
    pub fn num_labels(&self) -> usize {
        self.label_names.len()
    }

    /// How many examples carry each label, in id order.
    pub fn label_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.label_names.len()];
        for e in &self.examples {
            if let Some(c) = counts.get_mut(e.label as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// The label mapping, as saved with a run.
    pub fn label_map(&self) -> LabelMap {
        LabelMap::new(&self.label_names)
    }
}

/// Label names ↔ ids, saved with a run (`labels.json`) so that a model's outputs can be named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelMap {
    /// Names in id order.
    pub labels: Vec<String>,
    /// The same mapping keyed by name, for readers that look labels up by name.
    pub ids: BTreeMap<String, u32>,
}

impl LabelMap {
    pub fn new(label_names: &[String]) -> Self {
        Self {
            labels: label_names.to_vec(),
            ids: label_names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i as u32))
                .collect(),
        }
    }
}

/// The dataset's label mapping as pretty JSON (`{"labels": [...], "ids": {...}}`).
pub fn label_map_json(dataset: &Dataset) -> String {
    // Serialising strings and integers into JSON cannot fail.
    serde_json::to_string_pretty(&dataset.label_map()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_map_round_trips_and_matches_ids() {
        let d = Dataset {
            examples: vec![],
            label_names: vec!["fresh".into(), "rotten".into()],
            source: PathBuf::from("x.csv"),
        };
        let json = label_map_json(&d);
        let back: LabelMap = serde_json::from_str(&json).unwrap();
        assert_eq!(back.labels, ["fresh", "rotten"]);
        assert_eq!(back.ids["rotten"], 1);
        assert_eq!(back, d.label_map());
    }
}
