//! Fixtures for the workspace-level integration tests: a tiny random BERT model folder, a
//! matching WordPiece tokenizer, and a small learnable sentiment corpus, all written to disk so
//! the real loading code runs end to end in seconds; a tiny LLaMA-architecture model for
//! generation runs.

pub mod fixtures;
pub mod llama_fixture;
