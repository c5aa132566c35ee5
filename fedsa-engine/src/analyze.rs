//! The A/B analysis of a run (`fedsa analyze`, the TUI's Similarity screen): the paper's A/B asymmetry measured on a finished run. Reads the run's
//! common initial adapter (`init.safetensors`) and every client's state from a checkpoint, and
//! reports per adapted module how alike the clients' A factors are, and their B factors.
//!
//! Two ways to get the clients' learned factors:
//! - `checkpoint`: each client's factors at the checkpoint, minus the common init. Right for
//!   `local`, where every client trains both factors on its own data from the same start.
//! - `local-round`: from the checkpoint, every client trains one more local round (nothing is
//!   written) and its update over that round is measured. Right for FedIT, whose checkpointed
//!   factors are the aggregate (identical on every client): this is the paper's measurement of
//!   what the clients learn locally from a common model, before aggregation.
//!
//! `auto` picks `local-round` when the strategy shares a factor it trains, else `checkpoint`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use fedsa_aggregators::PluginRegistry;
use fedsa_core::io::load_params;
use fedsa_core::{Config, ParamSet, Role};
use serde::{Deserialize, Serialize};

use crate::analysis::{self, Measures, ModuleRow, TensorSimilarity};
use crate::checkpoint::{self, Checkpoint};
use crate::run_dir::{RunDir, run_name};

/// Where the clients' learned factors come from (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Auto,
    Checkpoint,
    LocalRound,
}

/// The source a report's numbers were measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measured {
    /// The checkpoint's factors minus the common init.
    Checkpoint,
    /// One more local round from the checkpoint; updates over that round.
    LocalRound,
}

/// Everything `fedsa analyze` reports about one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisReport {
    /// The run folder's name.
    pub run: String,
    pub path: PathBuf,
    pub strategy: String,
    pub adapter: String,
    /// The checkpoint's round.
    pub round: usize,
    pub measured: Measured,
    pub num_clients: usize,
    /// Mean over modules of each factor's measures.
    pub mean_a: Option<Measures>,
    pub mean_b: Option<Measures>,
    pub modules: Vec<ModuleRow>,
    pub tensors: Vec<TensorSimilarity>,
    /// Caveats about what the numbers can show for this run's strategy.
    pub notes: Vec<String>,
}

/// Analyses the run in `run` at checkpoint round `round` (the last complete one when `None`).
pub fn analyze_run(run: &Path, round: Option<usize>, mode: Mode) -> Result<AnalysisReport> {
    let dir = RunDir::open(run)?;
    let config = dir.config()?;
    let ckpt = checkpoint::find(&dir.checkpoints(), round)
        .with_context(|| format!("analysing {}", run.display()))?;
    let round = ckpt.round();
    let init_path = run.join("init.safetensors");
    if !init_path.is_file() {
        bail!(
            "{} is missing: the run predates saving the common initial adapter, so the clients' \
             updates cannot be measured",
            init_path.display()
        );
    }
    let init = load_params(&init_path)?;
    let n = config.federation.num_clients;
    if n < 2 {
        bail!(
            "{}: the run has {n} client; similarity across clients needs at least 2",
            run.display()
        );
    }
    let roles = factor_roles(&config, &init);
    if roles.is_empty() {
        bail!(
            "{}: no adapter factors (A or B tensors) found to compare",
            init_path.display()
        );
    }
    let measured = match mode {
        Mode::Checkpoint => Measured::Checkpoint,
        Mode::LocalRound => Measured::LocalRound,
        Mode::Auto => match config.strategy("config.toml") {
            Ok(s)
                if [Role::A, Role::B]
                    .iter()
                    .any(|r| s.trains(*r) && s.shares(*r)) =>
            {
                Measured::LocalRound
            }
            _ => Measured::Checkpoint,
        },
    };
    let tensors = match measured {
        Measured::Checkpoint => {
            let clients = (0..n)
                .map(|k| {
                    // Names starting with `__` are optimizer moments and RNG state.
                    Ok(ckpt.local_client(k)?.filter(|name| !name.starts_with("__")))
                })
                .collect::<Result<Vec<ParamSet>>>()?;
            analysis::similarities(&roles, &init, &clients)
        }
        Measured::LocalRound => {
            let (starts, ends) = local_round(&config, &ckpt)?;
            let starts: Vec<&ParamSet> = starts.iter().collect();
            analysis::similarities_from(&roles, &starts, &ends)
        }
    }
    .with_context(|| format!("comparing the clients of {}", ckpt.path().display()))?;
    let modules = analysis::by_module(&tensors);
    Ok(AnalysisReport {
        run: run_name(run),
        path: run.to_path_buf(),
        strategy: config.strategy.name.clone(),
        adapter: config.adapter.kind.clone(),
        round,
        measured,
        num_clients: n,
        mean_a: analysis::role_means(&modules, Role::A),
        mean_b: analysis::role_means(&modules, Role::B),
        modules,
        tensors,
        notes: strategy_notes(&config, measured),
    })
}

/// Every client's factors before and after one more local round from the checkpoint `ckpt`
/// (taken after round `round`). Loads the run's model and data; writes nothing.
fn local_round(config: &Config, ckpt: &Checkpoint) -> Result<(Vec<ParamSet>, Vec<ParamSet>)> {
    let round = ckpt.round();
    let strategy = config.strategy("config.toml")?;
    let mut prepared = crate::prepare::prepare(config)
        .context("loading the run's model and data to train one local round")?;
    // The learning-rate schedule is defined up to the last round: repeat it rather than run past.
    let train_round = (round + 1).min(config.federation.rounds.max(1));
    let (mut starts, mut ends) = (Vec::new(), Vec::new());
    // FedEx-LoRA's corrected base is the server's: every client trains on it.
    let deltas = ckpt
        .params("global.safetensors")?
        .filter(fedsa_core::is_base_delta);
    for (k, trainer) in prepared.trainers.iter_mut().enumerate() {
        trainer.configure(&strategy)?;
        if strategy.schedule != fedsa_core::Schedule::Fixed {
            trainer.set_trained_roles(&strategy.plan(train_round).trained_roles())?;
        }
        trainer
            .load_state(&ckpt.local_client(k)?)
            .with_context(|| format!("restoring client {k} of {}", ckpt.path().display()))?;
        if !deltas.is_empty() {
            trainer.set_params(&deltas)?;
        }
        let names: Vec<String> = trainer.roles().into_keys().collect();
        starts.push(trainer.params(&names)?);
        trainer
            .train(train_round)
            .with_context(|| format!("client {k}: training one local round"))?;
        ends.push(trainer.params(&names)?);
    }
    Ok((starts, ends))
}

/// The A and B tensors of `init`, with their roles: from the run's adapter spec when it can be
/// resolved (so plugin and spec-file adapters are measured too), else from PEFT name suffixes.
fn factor_roles(config: &Config, init: &ParamSet) -> BTreeMap<String, Role> {
    let from_spec = PluginRegistry::discover(&config.plugins)
        .ok()
        .and_then(|registry| crate::prepare::resolve_spec(config, registry.libraries()).ok())
        .map(|spec| {
            spec.params
                .iter()
                .filter(|p| p.trainable && !p.shared)
                .filter_map(|p| match p.role {
                    Some(r @ (Role::A | Role::B)) => Some((format!(".{}", p.peft_name), r)),
                    _ => None,
                })
                .collect::<Vec<_>>()
        });
    init.names()
        .filter_map(|name| {
            let role = match &from_spec {
                Some(suffixes) => suffixes
                    .iter()
                    .find(|(s, _)| name.ends_with(s.as_str()))
                    .map(|(_, r)| *r),
                None => analysis::role_from_name(name),
            }?;
            Some((name.clone(), role))
        })
        .collect()
}

/// What the strategy does to the measurement: shared factors are equal on every client, frozen
/// ones do not move.
fn strategy_notes(config: &Config, measured: Measured) -> Vec<String> {
    let Ok(strategy) = config.strategy("config.toml") else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    for (role, label) in [(Role::A, "A"), (Role::B, "B")] {
        if !strategy.trains(role) {
            notes.push(format!(
                "`{}` freezes {label}: its updates are zero, its cosine 0",
                strategy.name
            ));
        } else if strategy.shares(role) && measured == Measured::Checkpoint {
            notes.push(format!(
                "`{}` shares {label}: every client holds the same aggregated {label} at a \
                 checkpoint, so its similarity is 1 by construction (--from local-round \
                 measures the clients' own updates)",
                strategy.name
            ));
        }
    }
    if config.heterogeneous_ranks() {
        notes.push(format!(
            "the clients' ranks differ ({:?}): between two ranks, the cosine compares the \
             leading components both hold (A's first rows, B's first columns) and the subspace \
             similarity is the share of the smaller client's subspace inside the larger's",
            config.client_ranks()
        ));
    }
    if strategy.restarts_factors() && measured == Measured::Checkpoint {
        notes.push(format!(
            "`{}` merges the factors into the base and restarts them every round: at a \
             checkpoint they hold a fresh draw, not what was learned (--from local-round \
             measures one round's updates)",
            strategy.name
        ));
    }
    if strategy.personal_adapter {
        notes.push(format!(
            "`{}` runs two adapters: A and B here are the global adapter's (aggregated); the \
             local adapter (lora_A.local, lora_B.local) stays on its client and is not measured",
            strategy.name
        ));
    }
    if strategy.schedule != fedsa_core::Schedule::Fixed {
        notes.push(format!(
            "`{}` trains A and B in alternate rounds: a local round moves only the factor of \
             the round after the checkpoint",
            strategy.name
        ));
    }
    notes
}

/// How the numbers were obtained, in a few words.
pub fn measured_text(report: &AnalysisReport) -> String {
    match report.measured {
        Measured::Checkpoint => format!("checkpoint round {} vs init", report.round),
        Measured::LocalRound => format!("one local round from checkpoint {}", report.round),
    }
}
