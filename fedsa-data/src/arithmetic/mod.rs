//! The bundled offline generation dataset: arithmetic word problems written from templates,
//! with exact integer answers and GSM8K-style worked solutions ending in `#### N`. Nothing is
//! downloaded, the same seed always gives the same problems, and each problem's category is its
//! kind (addition, subtraction, ...), so a Dirichlet partition over categories gives clients
//! different mixes of problem kinds.

mod templates;

use std::path::PathBuf;

use fedsa_core::{Error, Result, SeededRng};

use crate::example::Dataset;
use crate::readers::{RawRecord, build_dataset};
use crate::rng::stream;

/// What a problem asks for. Kinds take turns, so every kind is equally common.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemKind {
    /// `a + b`.
    Addition,
    /// `a - b`, never negative.
    Subtraction,
    /// `a * b`.
    Multiplication,
    /// `a / b` with no remainder.
    Division,
    /// `a * b - c`, never negative: two steps, mixing operations.
    TwoStep,
}

impl ProblemKind {
    /// Every kind, in label-id order.
    pub const ALL: [ProblemKind; 5] = [
        ProblemKind::Addition,
        ProblemKind::Subtraction,
        ProblemKind::Multiplication,
        ProblemKind::Division,
        ProblemKind::TwoStep,
    ];

    /// The category name, as it appears in `Dataset::label_names`.
    pub fn name(self) -> &'static str {
        match self {
            ProblemKind::Addition => "addition",
            ProblemKind::Subtraction => "subtraction",
            ProblemKind::Multiplication => "multiplication",
            ProblemKind::Division => "division",
            ProblemKind::TwoStep => "two_step",
        }
    }
}

/// How many problems to write, from which seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArithmeticSpec {
    pub count: usize,
    /// The problems' own seed: the dataset stays the same when only the run's seed changes.
    pub seed: u64,
}

/// One generated problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    /// Which of the kind's sentence templates wrote it.
    pub template: usize,
    pub question: String,
    /// The worked solution, ending in `#### {answer}`.
    pub solution: String,
    pub answer: i64,
}

impl Problem {
    /// The grouping key for partitioning by key: the template, e.g. `division/1`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.kind.name(), self.template)
    }
}

/// The problems `spec` describes, in a fixed order for its seed.
pub fn generate_problems(spec: &ArithmeticSpec) -> Vec<Problem> {
    let mut rng = SeededRng::derive(spec.seed, &[stream::ARITHMETIC]);
    (0..spec.count)
        .map(|i| templates::write(ProblemKind::ALL[i % ProblemKind::ALL.len()], &mut rng))
        .collect()
}

/// The generated problems as a dataset: question as `text`, worked solution as `text_pair`,
/// kind as label (ids in [`ProblemKind::ALL`] order), template as key.
pub fn arithmetic_dataset(spec: &ArithmeticSpec) -> Result<Dataset> {
    let (source, records, labels) = arithmetic_records(spec)?;
    build_dataset(&source, records, Some(labels), None, spec.seed)
}

/// The problems as raw records, with the dataset's source name and the category names.
pub(crate) fn arithmetic_records(
    spec: &ArithmeticSpec,
) -> Result<(PathBuf, Vec<RawRecord>, Vec<String>)> {
    if spec.count == 0 {
        // The count is the config's `data.max_examples` (see `GenerationSource::from_config`).
        return Err(Error::run_config(
            "data.max_examples",
            "the arithmetic generator needs a count of at least 1",
        ));
    }
    let records = generate_problems(spec)
        .into_iter()
        .enumerate()
        .map(|(i, p)| RawRecord {
            line: i + 1,
            key: Some(p.key()),
            label: p.kind.name().to_string(),
            text: p.question,
            text_pair: Some(p.solution),
        })
        .collect();
    let labels = ProblemKind::ALL
        .iter()
        .map(|k| k.name().to_string())
        .collect();
    let source = PathBuf::from(format!("arithmetic(seed={})", spec.seed));
    Ok((source, records, labels))
}
