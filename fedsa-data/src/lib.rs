//! fedsa-data: the examples a federation trains on, and how they are split into clients.
//!
//! - [`load_dataset`] reads the bundled Rotten Tomatoes corpus, CSV/TSV/JSONL files with
//!   configurable columns, or a GLUE task folder, into a [`Dataset`] of labelled [`Example`]s.
//! - [`partition`] splits a dataset into clients (IID, Dirichlet over labels, or by a key such as
//!   the movie), each with a train and a test split drawn from the client's own distribution.
//! - [`PartitionReport`] summarises a partition (sizes and label histograms per client).
//! - [`TextTokenizer`] turns examples into [`fedsa_core::EncodedExample`]s with the model's own
//!   `tokenizer.json`, unpadded: batches are padded dynamically by [`fedsa_core::Batch::pad`].
//!
//! Generation (causal language models):
//! - [`load_generation`] reads prompt/response pairs (GSM8K's layout, instruction JSONL, or the
//!   bundled [arithmetic generator](arithmetic_dataset)) into the same [`Dataset`]: prompt in
//!   `text`, response in `text_pair`, and a category as label, so the partitioners apply.
//! - [`CausalTokenizer`] (from a `tokenizer.json` or a GGUF file's [`GgufVocab`]) turns them
//!   into [`fedsa_core::EncodedSequence`]s and decodes generated ids; [`answer_of`] extracts
//!   the final answer of a response for exact-match evaluation.
//!
//! No input makes these functions panic: a malformed file is a [`fedsa_core::Error::Data`] that
//! names the file, the line and what is wrong.

mod answer;
mod arithmetic;
mod causal_tokenize;
mod example;
mod generation;
mod gguf_vocab;
mod partition;
pub mod readers;
mod report;
mod rng;
mod tokenize;

pub use answer::{ANSWER_MARKER, answer_of};
pub use arithmetic::{ArithmeticSpec, Problem, ProblemKind, arithmetic_dataset, generate_problems};
pub use causal_tokenize::{
    CausalOptions, CausalTokenizer, PROMPT_PLACEHOLDER, PromptTemplate, fit,
};
pub use example::{Dataset, Example, LabelMap, label_map_json};
pub use fedsa_core::GgufVocab;
pub use generation::{DEFAULT_ARITHMETIC_COUNT, GenerationSource, load_generation};
pub use gguf_vocab::gguf_tokenizer;
pub use partition::{ClientSplit, partition};
pub use readers::{
    GlueSplit, GlueTask, Gsm8kSpec, InstructionSpec, SINGLE_CATEGORY, load_dataset, load_glue,
};
pub use report::{ClientReport, PartitionReport};
pub use tokenize::TextTokenizer;
