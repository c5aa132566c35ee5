//! The `fedsa` binary's library: command-line front end, headless batch runs and the
//! interactive terminal UI, all consumers of the same federation event stream.

pub mod runner;
pub mod tui;
