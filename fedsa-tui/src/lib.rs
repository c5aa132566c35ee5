//! The `fedsa` binary's library: command-line front end, headless batch runs and the
//! interactive terminal UI, all consumers of the same federation event stream.

pub mod analysis;
pub mod analyze;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod compare;
pub mod generation;
pub mod headless;
pub mod pipeline;
pub mod plot;
pub mod report;
pub mod run_dir;
pub mod runner;
pub mod tui;
