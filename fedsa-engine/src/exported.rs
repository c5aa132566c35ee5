//! What every kind of export shares: the record's file name and what an export reports back.

use std::path::PathBuf;

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub tensors: usize,
    /// The checkpoint the client was read from.
    pub checkpoint: PathBuf,
}

/// The name of the file that records how an export was made.
pub const EXPORT_RECORD: &str = "fedsa_export.json";
