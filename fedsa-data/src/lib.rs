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
//! No input makes these functions panic: a malformed file is a [`fedsa_core::Error::Data`] that
//! names the file, the line and what is wrong.

mod example;
mod partition;
pub mod readers;
mod report;
mod rng;
mod tokenize;

pub use example::{Dataset, Example, LabelMap, label_map_json};
pub use partition::{ClientSplit, partition};
pub use readers::{GlueSplit, GlueTask, load_dataset, load_glue};
pub use report::{ClientReport, PartitionReport};
pub use tokenize::TextTokenizer;
