//! The `fedsa` binary: the TUI with no subcommand (or `fedsa tui`), the command line otherwise.
//! Both front ends sit on fedsa-engine and meet only here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fedsa_tui::cli::args::{Cli, Command, QUICKSTART};

fn main() -> ExitCode {
    fedsa_adapters::tune_host_runtime();
    let cli = Cli::parse();
    let result = match cli.command {
        None => fedsa_tui::tui::open(&PathBuf::from(QUICKSTART)),
        Some(Command::Tui { config }) => {
            fedsa_tui::tui::open(&config.unwrap_or_else(|| QUICKSTART.into()))
        }
        Some(command) => fedsa_tui::cli::commands::dispatch(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit_code(&e)
        }
    }
}

/// The exit code of a failure (the README's "Exit codes"): 3 for a run that went through its
/// rounds but counts as failed, 1 for every other error (clap exits 2 on bad arguments).
fn exit_code(e: &anyhow::Error) -> ExitCode {
    if e.downcast_ref::<fedsa_engine::FailedRun>().is_some() {
        ExitCode::from(3)
    } else {
        ExitCode::FAILURE
    }
}
