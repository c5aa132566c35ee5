//! The node: one client of the federation, trained by the same Rust trainer as in a
//! one-process run. Flower starts a ClientApp process for every message, so the node keeps
//! nothing in memory: each message rebuilds the client from the run's config (which every
//! request carries), restores its private state from the state folder, does what was asked
//! and saves the state again before it replies.

mod settings;
mod state;

use anyhow::{Context, Result, bail};
use fedsa_core::{ClientTrainer, Config, ParamSet, UNNAMED_CONFIG, is_base_delta};
use fedsa_engine::prepare_client;

pub use settings::{KEYS as NODE_CONFIG_KEYS, NodeSettings};
pub use state::StateDir;

use crate::wire::{Envelope, Hello, Op, Reply, Request, WireModule, WireTensor};

/// Saved names: the trainer's own state, and the frozen-weight corrections received.
const OWN: &str = "client/";
const DELTA: &str = "delta/";

/// Answers one request; every problem becomes an error reply naming the node's client, so
/// the server records it as that client's failure.
pub fn handle(settings: &NodeSettings, request: &Envelope) -> Envelope {
    let client = settings.client;
    let (reply, tensors) = try_handle(settings, request).unwrap_or_else(|e| {
        let message = format!("node of client {client}: {e:#}");
        (Reply::Error { message }, ParamSet::new())
    });
    Envelope::new(&reply, &tensors).unwrap_or_else(|e| Envelope {
        header:
            serde_json::json!({"kind": "error", "message": format!("node of client {client}: {e}")})
                .to_string(),
        tensors: Vec::new(),
    })
}

/// The reply and the tensors it carries.
fn try_handle(settings: &NodeSettings, request: &Envelope) -> Result<(Reply, ParamSet)> {
    let req: Request = request.header("the server's request")?;
    let text = match &req {
        Request::Hello { config }
        | Request::Train { config, .. }
        | Request::Evaluate { config, .. } => config,
    };
    let config = settings.resolve(Config::from_toml_str(text, "the server's config")?);
    let prepared = prepare_client(&config, settings.client, settings.data_file.as_deref())?;
    let mut trainer = prepared.trainer;
    trainer.configure(&config.strategy(UNNAMED_CONFIG)?)?;
    match req {
        Request::Hello { .. } => {
            // Only the seeded init goes out: nothing this node has learned.
            let names: Vec<String> = trainer.roles().into_keys().collect();
            let init = trainer.params(&names)?;
            let hello = Hello {
                client: settings.client,
                roles: trainer.roles(),
                modules: trainer
                    .low_rank_modules()
                    .iter()
                    .map(WireModule::from)
                    .collect(),
                num_train_examples: trainer.num_train_examples(),
                label_names: prepared.label_names,
                report: prepared.report,
                adapter_plan: prepared.adapter_plan,
            };
            Ok((Reply::Hello(Box::new(hello)), init))
        }
        Request::Train {
            round,
            ops,
            returns,
            ..
        } => {
            let state = StateDir::open(&settings.state_dir)?;
            let mut deltas = restore(&state, trainer.as_mut(), &ops)?;
            apply(trainer.as_mut(), &ops, &request.tensors, &mut deltas)?;
            let stats = trainer.train(round)?;
            let up = trainer.params(&returns)?;
            save(&state, &config, round, trainer.as_ref(), &deltas)?;
            Ok((Reply::Trained { stats }, up))
        }
        Request::Evaluate { round, ops, .. } => {
            let state = StateDir::open(&settings.state_dir)?;
            let mut deltas = restore(&state, trainer.as_mut(), &ops)?;
            apply(trainer.as_mut(), &ops, &request.tensors, &mut deltas)?;
            let metrics = trainer.evaluate()?;
            save(&state, &config, round, trainer.as_ref(), &deltas)?;
            Ok((Reply::Evaluated { metrics }, ParamSet::new()))
        }
    }
}

/// Loads the state the request continues from: the one a `restore` op names (round 0: a new
/// run, from the seeded init), else the latest. Returns the frozen-weight corrections held.
fn restore(state: &StateDir, trainer: &mut dyn ClientTrainer, ops: &[Op]) -> Result<ParamSet> {
    let wanted = ops.iter().find_map(|op| match op {
        Op::Restore { round } => Some(*round),
        _ => None,
    });
    let saved = match wanted {
        Some(0) => {
            state.clear()?;
            None
        }
        Some(round) => state.latest(Some(round))?,
        None => state.latest(None)?,
    };
    let Some((round, saved)) = saved else {
        return Ok(ParamSet::new());
    };
    let own = strip(&saved, OWN);
    let deltas = strip(&saved, DELTA);
    trainer.load_state(&own).with_context(|| {
        format!(
            "restoring the state of round {round} from {}",
            state.root().display()
        )
    })?;
    if !deltas.is_empty() {
        trainer.set_params(&deltas)?;
    }
    Ok(deltas)
}

/// Applies the server's changes in order; `tensors` are the `set` ops' values.
fn apply(
    trainer: &mut dyn ClientTrainer,
    ops: &[Op],
    tensors: &[WireTensor],
    deltas: &mut ParamSet,
) -> Result<()> {
    let mut next = 0;
    for op in ops {
        match op {
            Op::Restore { .. } => {}
            Op::Set { count } => {
                let Some(part) = tensors.get(next..next + count) else {
                    bail!(
                        "the request sets {count} tensors from #{next}, but carries {}",
                        tensors.len()
                    );
                };
                next += count;
                let set = crate::wire::from_wire(part)?;
                trainer.set_params(&set)?;
                deltas.extend(set.filter(is_base_delta));
            }
            Op::Restart { seed } => trainer.restart_factors(*seed)?,
            Op::Roles { roles } => trainer.set_trained_roles(roles)?,
        }
    }
    if next != tensors.len() {
        bail!(
            "the request carries {} tensors, its ops use {next}",
            tensors.len()
        );
    }
    Ok(())
}

fn save(
    state: &StateDir,
    config: &Config,
    round: usize,
    trainer: &dyn ClientTrainer,
    deltas: &ParamSet,
) -> Result<()> {
    let mut all = ParamSet::new();
    for (name, t) in trainer.save_state()?.iter() {
        all.insert_tensor(format!("{OWN}{name}"), t.clone());
    }
    for (name, t) in deltas.iter() {
        all.insert_tensor(format!("{DELTA}{name}"), t.clone());
    }
    let every = config.federation.checkpoint_every;
    let rounds = config.federation.rounds;
    state.save(round, &all, |r| {
        every > 0 && (r.is_multiple_of(every) || r == rounds)
    })
}

fn strip(set: &ParamSet, prefix: &str) -> ParamSet {
    let mut out = ParamSet::new();
    for (name, t) in set.iter() {
        if let Some(rest) = name.strip_prefix(prefix) {
            out.insert_tensor(rest.to_string(), t.clone());
        }
    }
    out
}
