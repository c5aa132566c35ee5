//! Executing a prepared federation: the round loop with metrics and checkpoints written into
//! the run folder after every round, starting anew or resuming the last complete checkpoint.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use fedsa_core::{
    ClientRoundRecord, Config, ConfigSource, Event, EventSink, Federation, RunSummary,
    UNNAMED_CONFIG,
};

use crate::checkpoint;
use crate::prepare::{Prepared, prepare};
use crate::run_dir::RunDir;
use crate::source::name_config_source;

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

/// The round loop of a prepared run, from creating (or reopening) its folder to the summary.
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
    let mut fed = Federation::new(
        config.federation_settings(),
        strategy,
        aggregator,
        clients,
        sink,
    )?;

    let mut run_dir = if options.resume {
        let ckpt_dir = RunDir::path_for(&config).join("checkpoints");
        match checkpoint::latest(&ckpt_dir)? {
            Some((round, path)) => {
                let saved = RunDir::open(&RunDir::path_for(&config))?.config()?;
                if saved != config {
                    bail!(
                        "--resume: {} was started with a different config; resume with the same settings",
                        RunDir::path_for(&config).display()
                    );
                }
                checkpoint::restore(&path, &mut fed)?;
                fed.emit(Event::Log {
                    message: format!("resumed from {} (round {round})", path.display()),
                });
                RunDir::open_for_resume(&config, round)?
            }
            None => bail!(
                "--resume: no complete checkpoint under {}",
                ckpt_dir.display()
            ),
        }
    } else {
        let dir = RunDir::create(&mut config)?;
        fed.emit(Event::Log {
            message: format!("run folder: {}", dir.root().display()),
        });
        dir.write_json("labels.json", &label_names)?;
        dir.write_json("partition.json", &report)?;
        // Every client starts from the same seeded init; keep it so analyses can measure what
        // each client learned (its update), not where it started.
        let names: Vec<String> = fed.roles().into_keys().collect();
        let init = fed.clients()[0].params(&names)?;
        fedsa_core::io::save_params(&dir.root().join("init.safetensors"), &init)?;
        dir
    };

    let every = config.federation.checkpoint_every;
    let started = std::time::Instant::now();
    let result = fed.run(stop, &mut |fed, record| {
        let clients = round_clients.lock().expect("metrics lock").clone();
        run_dir
            .record_round(record, &clients)
            .map_err(|e| fedsa_core::Error::external("writing metrics", e))?;
        if every > 0 && (record.round % every == 0 || record.round == fed.settings().rounds) {
            let path = checkpoint::save(&run_dir.checkpoints(), fed)
                .map_err(|e| fedsa_core::Error::external("writing a checkpoint", e))?;
            fed.emit(Event::CheckpointWritten {
                round: record.round,
                path: path.display().to_string(),
            });
        }
        Ok(())
    });
    let mut summary = result.with_context(|| format!("run {}", run_dir.root().display()))?;
    summary.seconds = started.elapsed().as_secs_f64();
    run_dir.write_summary(&summary)?;
    Ok(summary)
}
