//! The subcommands: each one calls the engine and prints what it returns. `run` follows the
//! federation's events with progress lines and ends with the summary table.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use anyhow::Result;
use fedsa_core::{Config, ConfigSource, UNNAMED_CONFIG};
use fedsa_engine::session::{SampleOptions, load_client, load_generation_client};
use fedsa_engine::{FailedRun, RunOptions};

use super::args::{Command, PluginsAction};
use super::progress::{Progress, summary_table};
use super::report::{self, Output};

/// Runs one subcommand (everything but the TUI).
pub fn dispatch(command: Command) -> Result<()> {
    match command {
        // `main` opens the TUI itself: the command line front end never depends on it.
        Command::Tui { .. } => anyhow::bail!("`fedsa tui` is opened by the binary, not here"),
        Command::Run {
            config,
            resume,
            device,
            name,
            output_dir,
        } => {
            let mut cfg = Config::load(&config)?;
            // Errors found later name the file, or the flag for a value set here.
            let mut source = ConfigSource::file(config.display().to_string());
            if let Some(d) = device {
                cfg.device = d;
                source.set_by("device", "command line (--device)");
            }
            if let Some(n) = name {
                cfg.name = n;
                source.set_by("name", "command line (--name)");
            }
            if let Some(o) = output_dir {
                cfg.output_dir = o;
                source.set_by("output_dir", "command line (--output-dir)");
            }
            // The file passed validation when loaded: what fails now is an override.
            cfg.validate(UNNAMED_CONFIG)
                .map_err(|e| e.with_config_source(&source))?;
            run_headless(cfg, RunOptions { resume, source })
        }
        Command::Partition { config, json } => {
            let cfg = Config::load(&config)?;
            let source = ConfigSource::file(config.display().to_string());
            let (_, _, report) = fedsa_engine::load_partition(&cfg)
                .map_err(|e| fedsa_engine::name_config_source(e, &source))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
                for line in cfg.client_settings_lines() {
                    println!("{line}");
                }
            }
            Ok(())
        }
        Command::Plugins {
            action: PluginsAction::List,
            plugins,
        } => list_plugins(&plugins),
        Command::Export {
            run,
            client,
            round,
            out,
            force,
            merged,
        } => export(&run, client, round, &out, force, merged),
        Command::Predict {
            run,
            client,
            round,
            text,
        } => predict(&run, client, round, &text),
        Command::Generate {
            run,
            client,
            round,
            prompt,
            max_new_tokens,
            temperature,
            top_p,
            seed,
        } => generate(
            &run,
            client,
            round,
            &prompt,
            SampleOptions {
                max_new_tokens,
                temperature,
                top_p,
                seed,
            },
        ),
        Command::Analyze {
            run,
            json,
            round,
            from,
            png,
            json_out,
        } => report::analyze(
            &run,
            &Output {
                json,
                png: png.unwrap_or_else(|| report::default_png(&run)),
                json_out,
            },
            round,
            from.into(),
        ),
        Command::Flower(args) => super::flower::run(&args),
        Command::Compare {
            runs,
            json,
            png,
            json_out,
        } => report::compare(
            &runs,
            &Output {
                json,
                png,
                json_out,
            },
        ),
    }
}

/// `fedsa run`: the federation on its own thread, its events as progress, then the summary.
fn run_headless(cfg: Config, options: RunOptions) -> Result<()> {
    let task = cfg.task.kind;
    let (tx, rx) = mpsc::channel();
    let handle = fedsa_engine::spawn_with(cfg, options, tx);
    let mut progress = Progress::new();
    for event in rx {
        progress.on_event(&event);
    }
    let outcome = handle
        .join
        .join()
        .map_err(|_| anyhow::anyhow!("the federation thread panicked"))?;
    match outcome {
        Ok(summary) => {
            println!("{}", summary_table(&summary, task));
            Ok(())
        }
        // A finished run that counts as failed still shows its figures.
        Err(e) => {
            if let Some(failed) = e.downcast_ref::<FailedRun>() {
                println!("{}", summary_table(&failed.summary, task));
                return Err(e);
            }
            Err(e.context("the run failed"))
        }
    }
}

/// `fedsa plugins list`: built-in adapters and aggregators, then every plugin found.
fn list_plugins(paths: &[PathBuf]) -> Result<()> {
    let listing = fedsa_engine::plugins::list_plugins(paths)?;
    println!(
        "{:<11} {:<22} {:>4}  {:<24}  plan",
        "kind", "name", "abi", "source"
    );
    for row in &listing.rows {
        let abi = row
            .abi_version
            .map_or_else(|| "-".to_string(), |v| v.to_string());
        let source = row
            .path
            .as_ref()
            .map_or_else(|| "built-in".to_string(), |p| p.display().to_string());
        let plan = row.plan.as_deref().unwrap_or("-");
        println!(
            "{:<11} {:<22} {abi:>4}  {source:<24}  {plan}",
            row.kind, row.name
        );
    }
    for skipped in &listing.skipped {
        eprintln!("skipped {}: {}", skipped.path.display(), skipped.reason);
    }
    Ok(())
}

/// `fedsa predict`: each label's probability for every text under client `client`'s model.
fn predict(run: &Path, client: usize, round: Option<usize>, texts: &[String]) -> Result<()> {
    let session = load_client(run, client, round)?;
    let probs = session.predict(texts)?;
    for (text, p) in texts.iter().zip(probs) {
        let best = p
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        println!("{text}");
        for (i, (label, prob)) in session.labels.iter().zip(&p).enumerate() {
            let mark = if i == best { "*" } else { " " };
            println!("  {mark} {label:<12} {prob:.4}");
        }
    }
    Ok(())
}

/// `fedsa export`: client `client`'s personalised adapter in PEFT's layout.
fn export(
    run: &Path,
    client: usize,
    round: Option<usize>,
    out: &Path,
    force: bool,
    merged: bool,
) -> Result<()> {
    let exported = fedsa_engine::export::export(run, client, round, out, force, merged)?;
    println!(
        "exported client {client} of {} ({} tensors, from {}) to {}",
        run.display(),
        exported.tensors,
        exported.checkpoint.display(),
        out.display()
    );
    Ok(())
}

/// `fedsa generate`: client `client`'s continuation of every prompt and its answer.
fn generate(
    run: &Path,
    client: usize,
    round: Option<usize>,
    prompts: &[String],
    sample: SampleOptions,
) -> Result<()> {
    sample.validate()?;
    let session = load_generation_client(run, client, round)?;
    for generated in session.generate(prompts, sample)? {
        println!("{}", generated.prompt);
        println!("  -> {}", generated.text.trim());
        if let Some(answer) = generated.answer {
            println!("  answer: {answer}");
        }
    }
    Ok(())
}
