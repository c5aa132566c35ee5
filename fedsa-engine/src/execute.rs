//! Executing a prepared federation: the round loop with metrics and checkpoints written into
//! the run folder after every round, starting anew or resuming the last complete checkpoint,
//! and the verdict on the finished run ([`crate::verdict`]): a run that counts as failed
//! returns a [`FailedRun`] error after its summary is written.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use fedsa_core::{
    ClientRoundRecord, Config, ConfigSource, Event, EventSink, Federation, RunSummary,
    UNNAMED_CONFIG,
};
use fedsa_data::PartitionReport;

use crate::checkpoint::{self, Checkpoint};
use crate::crash;
use crate::prepare::{Prepared, prepare};
use crate::run_dir::RunDir;
use crate::source::name_config_source;
use crate::verdict::{self, FailedRun};

/// Options of one execution.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Continue the run folder's last complete checkpoint instead of starting anew.
    pub resume: bool,
    /// Where the config came from, named by errors about its values.
    pub source: ConfigSource,
}

/// Runs `config` to the end (or until `stop`), writing the run folder.
pub fn execute(
    config: &Config,
    options: &RunOptions,
    mut sink: Box<dyn EventSink>,
    stop: &AtomicBool,
) -> Result<RunSummary> {
    let prepared = match prepare(config) {
        Ok(p) => p,
        Err(e) => {
            let e = name_config_source(e, &options.source);
            sink.emit(Event::RunFailed {
                error: fedsa_core::chain_text(e.as_ref()),
            });
            return Err(e);
        }
    };
    run_prepared(prepared, options, sink, stop).map_err(|e| name_config_source(e, &options.source))
}

/// The round loop of a prepared run, from creating (or reopening) its folder to the summary:
/// for a front end that builds its own trainers (remote nodes behind Flower).
pub fn execute_prepared(
    prepared: Prepared,
    options: &RunOptions,
    sink: Box<dyn EventSink>,
    stop: &AtomicBool,
) -> Result<RunSummary> {
    run_prepared(prepared, options, sink, stop).map_err(|e| name_config_source(e, &options.source))
}

fn run_prepared(
    prepared: Prepared,
    options: &RunOptions,
    mut sink: Box<dyn EventSink>,
    stop: &AtomicBool,
) -> Result<RunSummary> {
    let Prepared {
        mut config,
        label_names,
        report,
        trainers,
        aggregator,
        skipped_plugins,
        adapter_plan,
    } = prepared;
    let clients = trainers;

    // Client records arrive as events; keep the round's records for the metrics files.
    let round_clients: Arc<std::sync::Mutex<Vec<ClientRoundRecord>>> = Arc::default();
    let captured = Arc::clone(&round_clients);
    let sink = Box::new(move |event: Event| {
        if let Event::RoundFinished { clients, .. } = &event {
            captured.lock().expect("metrics lock").clone_from(clients);
        }
        sink.emit(event);
    });
    let strategy = config.strategy(UNNAMED_CONFIG)?;
    let rule = fedsa_aggregators::module_rule(strategy.server);
    let mut fed = Federation::new(
        config.federation_settings(),
        strategy,
        aggregator,
        clients,
        sink,
    )?;
    if let Some(rule) = rule {
        fed.set_module_rule(rule)?;
    }

    fed.emit(Event::Log {
        message: adapter_plan,
    });
    for line in config.client_settings_lines() {
        fed.emit(Event::Log { message: line });
    }
    for skipped in &skipped_plugins {
        fed.emit(Event::Log {
            message: format!(
                "plugin skipped: {}: {}",
                skipped.path.display(),
                skipped.reason
            ),
        });
    }
    let mut base_seconds = 0.0;
    let mut run_dir = if options.resume {
        let (dir, seconds) = reopen(&config, &mut fed, &label_names, &report)?;
        base_seconds = seconds;
        dir
    } else {
        let unfinished = RunDir::unfinished_at(&RunDir::path_for(&config));
        let dir = RunDir::create(&mut config)?;
        if let Some(previous) = unfinished {
            fed.emit(Event::Log {
                message: format!(
                    "note: {} holds an unfinished run (`fedsa run CONFIG --resume` continues it); \
                     this run goes to {}",
                    previous.display(),
                    dir.root().display()
                ),
            });
        }
        fed.emit(Event::Log {
            message: format!("run folder: {}", dir.root().display()),
        });
        write_start(&dir, &fed, &label_names, &report)?;
        dir
    };

    crash::point("run-started");
    let every = config.federation.checkpoint_every;
    let started = std::time::Instant::now();
    let result = fed.run(stop, &mut |fed, record| {
        let clients = round_clients.lock().expect("metrics lock").clone();
        run_dir
            .record_round(record, &clients)
            .map_err(|e| fedsa_core::Error::external("writing metrics", e))?;
        crash::point(&format!("round-{}-recorded", record.round));
        if every > 0 && (record.round % every == 0 || record.round == fed.settings().rounds) {
            let seconds = base_seconds + started.elapsed().as_secs_f64();
            let path = checkpoint::save(&run_dir.checkpoints(), fed, seconds)
                .map_err(|e| fedsa_core::Error::external("writing a checkpoint", e))?;
            fed.emit(Event::CheckpointWritten {
                round: record.round,
                path: path.display().to_string(),
            });
        }
        Ok(())
    });
    let mut summary = result.with_context(|| format!("run {}", run_dir.root().display()))?;
    summary.seconds = base_seconds + started.elapsed().as_secs_f64();
    let shares = !fed.shared_names().is_empty();
    summary.failed = verdict::judge(
        &summary,
        fed.history(),
        shares,
        config.federation.max_failure_rate,
    );
    run_dir.write_summary(&summary)?;
    if let Some(reason) = &summary.failed {
        let failed = FailedRun {
            reason: reason.clone(),
            summary: summary.clone(),
            run_dir: run_dir.root().to_path_buf(),
        };
        fed.emit(Event::RunFailed {
            error: failed.to_string(),
        });
        return Err(failed.into());
    }
    Ok(summary)
}

/// The files a new run writes before its first round: labels, partition, and the clients'
/// common initial adapter.
fn write_start(
    dir: &RunDir,
    fed: &Federation,
    label_names: &[String],
    report: &PartitionReport,
) -> Result<()> {
    dir.write_json("labels.json", &label_names)?;
    dir.write_json("partition.json", report)?;
    // Every client starts from the same seeded init; keep it so analyses can measure what
    // each client learned (its update), not where it started. With clients of different
    // ranks, the largest client's: a smaller client's factors start as its leading rows of A
    // (the seeded draw is row-major) and columns of B (zero).
    let names: Vec<String> = fed.roles().into_keys().collect();
    let largest = (0..fed.clients().len())
        .max_by_key(|&c| {
            let rank = fed.client_modules(c).iter().map(|m| m.rank).max();
            (rank, std::cmp::Reverse(c))
        })
        .unwrap_or(0);
    let init = fed.clients()[largest].params(&names)?;
    fedsa_core::io::save_params(&dir.root().join("init.safetensors"), &init)?;
    Ok(())
}

/// `--resume`: the run folder of `config` continued from its last complete checkpoint, or,
/// when it was stopped before its first checkpoint, started again in the same folder. Returns
/// the folder and the run's wall time so far. Everything that must be written is tried before
/// any training, so a read-only folder fails now, not after a round.
fn reopen(
    config: &Config,
    fed: &mut Federation,
    label_names: &[String],
    report: &PartitionReport,
) -> Result<(RunDir, f64)> {
    let root = RunDir::path_for(config);
    if !root.join("config.toml").is_file() {
        bail!(
            "--resume: {} holds no run to continue; run without --resume to start it",
            root.display()
        );
    }
    let saved = RunDir::open(&root)?.config()?;
    if saved != *config {
        bail!(
            "--resume: {} was started with a different config; resume with the same settings",
            root.display()
        );
    }
    let ckpt_dir = root.join("checkpoints");
    checkpoint::remove_partials(&ckpt_dir)?;
    let (dir, seconds) = if let Some((round, path)) = checkpoint::latest(&ckpt_dir)? {
        let ckpt = Checkpoint::open(&path, round, true)
            .with_context(|| format!("--resume: checking {}", path.display()))?;
        checkpoint::restore(&ckpt, fed)?;
        fed.emit(Event::Log {
            message: format!("resumed from {} (round {round})", path.display()),
        });
        (RunDir::open_for_resume(config, round)?, ckpt.seconds())
    } else {
        fed.emit(Event::Log {
            message: format!(
                "no checkpoint in {} yet: starting from round 1 in the same folder",
                root.display()
            ),
        });
        let dir = RunDir::open_for_resume(config, 0)?;
        write_start(&dir, fed, label_names, report)?;
        (dir, 0.0)
    };
    dir.rewrite_metrics()
        .with_context(|| format!("--resume: {} cannot be written", root.display()))?;
    dir.check_writable(&ckpt_dir)
        .with_context(|| format!("--resume: {} cannot be written", ckpt_dir.display()))?;
    Ok((dir, seconds))
}
