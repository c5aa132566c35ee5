//! The `fedsa` binary's front ends, both on fedsa-engine: the command line ([`cli`]: arguments,
//! progress, summary tables, PNG plots) and the interactive terminal UI ([`tui`]). Neither
//! imports the other.

pub mod cli;
pub mod tui;
