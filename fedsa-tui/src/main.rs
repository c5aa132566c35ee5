//! The `fedsa` binary.

use std::process::ExitCode;
use std::sync::mpsc;

use anyhow::{Context, Result};
use clap::Parser;
use fedsa_core::Config;
use fedsa_tui::cli::{Cli, Command, PluginsAction, QUICKSTART};
use fedsa_tui::headless::{Progress, summary_table};
use fedsa_tui::pipeline::{self, RunOptions};
use fedsa_tui::{commands, generation, report, runner};

fn main() -> ExitCode {
    fedsa_adapters::tune_host_runtime();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(path: &std::path::Path) -> Result<Config> {
    Ok(Config::load(path)?)
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        None => commands::open_tui(&std::path::PathBuf::from(QUICKSTART)),
        Some(Command::Tui { config }) => {
            commands::open_tui(&config.unwrap_or_else(|| QUICKSTART.into()))
        }
        Some(Command::Run {
            config,
            resume,
            device,
            name,
            output_dir,
        }) => {
            let mut cfg = load_config(&config)?;
            if let Some(d) = device {
                cfg.device = d;
            }
            if let Some(n) = name {
                cfg.name = n;
            }
            if let Some(o) = output_dir {
                cfg.output_dir = o;
            }
            cfg.validate("command line")?;
            run_headless(cfg, resume)
        }
        Some(Command::Partition { config, json }) => {
            let cfg = load_config(&config)?;
            let (_, _, report) = pipeline::load_partition(&cfg)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            Ok(())
        }
        Some(Command::Plugins {
            action: PluginsAction::List,
            plugins,
        }) => commands::list_plugins(&plugins),
        Some(Command::Export { run, client, out }) => commands::export(&run, client, &out),
        Some(Command::Predict { run, client, text }) => commands::predict(&run, client, &text),
        Some(Command::Generate {
            run,
            client,
            prompt,
            max_new_tokens,
            temperature,
            top_p,
            seed,
        }) => {
            if !(temperature >= 0.0 && temperature.is_finite()) {
                anyhow::bail!("--temperature must be >= 0, got {temperature}");
            }
            if !(top_p > 0.0 && top_p <= 1.0) {
                anyhow::bail!("--top-p must be in (0, 1], got {top_p}");
            }
            generation::generate(
                &run,
                client,
                &prompt,
                generation::SampleOptions {
                    max_new_tokens,
                    temperature,
                    top_p,
                    seed,
                },
            )
        }
        Some(Command::Analyze {
            run,
            json,
            round,
            from,
            png,
            json_out,
        }) => report::analyze(
            &run,
            &report::Output {
                json,
                png: png.unwrap_or_else(|| fedsa_tui::analyze::default_png(&run)),
                json_out,
            },
            round,
            from,
        ),
        Some(Command::Compare {
            runs,
            json,
            png,
            json_out,
        }) => report::compare(
            &runs,
            &report::Output {
                json,
                png,
                json_out,
            },
        ),
    }
}

fn run_headless(cfg: Config, resume: bool) -> Result<()> {
    let task = cfg.task.kind;
    let (tx, rx) = mpsc::channel();
    let handle = runner::spawn_with(cfg, RunOptions { resume }, tx);
    let mut progress = Progress::new();
    for event in rx {
        progress.on_event(&event);
    }
    let summary = handle
        .join
        .join()
        .map_err(|_| anyhow::anyhow!("the federation thread panicked"))?
        .context("the run failed")?;
    println!("{}", summary_table(&summary, task));
    Ok(())
}
