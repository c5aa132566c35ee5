//! The command line front end: arguments, the subcommands' output (progress lines, summary
//! tables, PNG plots). It calls the engine and never the TUI.

pub mod args;
pub mod commands;
pub mod flower;
mod flower_procs;
pub mod plot;
pub mod progress;
pub mod report;
pub mod tables;
