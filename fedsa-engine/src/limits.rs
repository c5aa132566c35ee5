//! A model's own limits checked against the config before any example is encoded: texts longer
//! than the model's positions, or token ids past its embeddings, would otherwise fail only when
//! such a batch comes up, one client at a time.

use std::path::Path;

use anyhow::Result;
use fedsa_core::Error;

/// `model.max_length` against the `positions` the model at `file` has.
pub fn check_positions(max_length: usize, positions: usize, file: &Path) -> Result<()> {
    if max_length > positions {
        return Err(Error::run_config(
            "model.max_length",
            format!(
                "{max_length} is more than the {positions} positions the model has \
                 (max_position_embeddings in {})",
                file.display()
            ),
        )
        .into());
    }
    Ok(())
}

/// The tokenizer's ids against the `embeddings` of the model at `file`.
pub fn check_vocabulary(tokens: usize, embeddings: usize, file: &Path) -> Result<()> {
    if tokens > embeddings {
        return Err(Error::run_config(
            "model.path",
            format!(
                "the tokenizer produces {tokens} token ids but the model has {embeddings} \
                 embeddings (vocab_size in {}): the tokenizer does not belong to this model",
                file.display()
            ),
        )
        .into());
    }
    Ok(())
}
