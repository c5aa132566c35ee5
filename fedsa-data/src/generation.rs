//! Loading generation datasets: prompt/response pairs whose label is a category used only to
//! partition them (problem kind, a configured column, or the single category `all`). The result
//! is an ordinary [`Dataset`], so the partitioners work on it unchanged.

use std::collections::BTreeSet;
use std::path::PathBuf;

use fedsa_core::Result;
use fedsa_core::config::{DataConfig, DataFormat};

use crate::arithmetic::{ArithmeticSpec, arithmetic_records};
use crate::example::Dataset;
use crate::readers::{Gsm8kSpec, InstructionSpec, build_dataset, read_gsm8k, read_instructions};

/// Where generation examples come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenerationSource {
    /// A file in GSM8K's layout (`question`, `answer` ending in `#### N`).
    Gsm8k { path: PathBuf, spec: Gsm8kSpec },
    /// An instruction/response JSON Lines file with configurable field names.
    Instruction {
        path: PathBuf,
        spec: InstructionSpec,
    },
    /// The bundled generator of arithmetic word problems (no file, no download).
    Arithmetic(ArithmeticSpec),
}

/// Problems the arithmetic generator makes when `data.max_examples` does not say.
pub const DEFAULT_ARITHMETIC_COUNT: usize = 1000;

impl GenerationSource {
    /// The source a `[data]` table names: `text_column` / `text_pair_column` name the prompt and
    /// completion fields of instruction data, `label_column` a category field; the generator
    /// makes `max_examples` problems (seeded by the run's seed through the dataset cap).
    pub fn from_config(cfg: &DataConfig, key_column: Option<&str>) -> GenerationSource {
        let key = key_column.map(str::to_string);
        match cfg.format {
            DataFormat::Gsm8k => GenerationSource::Gsm8k {
                path: cfg.path.clone(),
                spec: Gsm8kSpec {
                    category: cfg.label_column.clone(),
                    key,
                    ..Gsm8kSpec::default()
                },
            },
            DataFormat::Instruction => {
                let default = InstructionSpec::default();
                GenerationSource::Instruction {
                    path: cfg.path.clone(),
                    spec: InstructionSpec {
                        prompt: cfg.text_column.clone().unwrap_or(default.prompt),
                        completion: cfg.text_pair_column.clone().unwrap_or(default.completion),
                        input: None,
                        category: cfg.label_column.clone(),
                        key,
                    },
                }
            }
            _ => GenerationSource::Arithmetic(ArithmeticSpec {
                count: cfg.max_examples.unwrap_or(DEFAULT_ARITHMETIC_COUNT),
                seed: 0,
            }),
        }
    }
}

/// Loads the prompt/response examples `source` describes: prompt in `text`, response in
/// `text_pair`. Categories of a file get ids in sorted order; the generator's follow
/// [`crate::ProblemKind::ALL`]. With `max_examples`, a seeded random subset is kept, in order.
pub fn load_generation(
    source: &GenerationSource,
    max_examples: Option<usize>,
    seed: u64,
) -> Result<Dataset> {
    let (path, records) = match source {
        GenerationSource::Gsm8k { path, spec } => (path, read_gsm8k(path, spec)?),
        GenerationSource::Instruction { path, spec } => (path, read_instructions(path, spec)?),
        GenerationSource::Arithmetic(spec) => {
            let (source, records, labels) = arithmetic_records(spec)?;
            return build_dataset(&source, records, Some(labels), max_examples, seed);
        }
    };
    // Fixed to the categories found, so a single category (`all`) is accepted: unlike a
    // classifier's labels, generation categories only steer the partition.
    let categories: BTreeSet<&str> = records.iter().map(|r| r.label.as_str()).collect();
    let labels = categories.into_iter().map(str::to_string).collect();
    build_dataset(path, records, Some(labels), max_examples, seed)
}
