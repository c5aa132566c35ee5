//! The round loop: sample clients, broadcast the shared state, train locally, aggregate the
//! shared roles, evaluate every client on its own test split, report everything as events.

mod exchange;
mod server_step;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::metrics::{mean, weighted_mean_of};
use crate::{
    Aggregator, ClientFailure, ClientRoundRecord, ClientTrainer, ClientUpdate, Error, EvalMetrics,
    Event, EventSink, LowRankModule, ModuleRule, ParamSet, Result, Role, RoundRecord, RunSummary,
    SeededRng, Strategy,
};

/// Stream labels for [`SeededRng::derive`], so each use of randomness is independent and a
/// resumed run draws exactly what an uninterrupted one would.
const STREAM_SAMPLING: u64 = 1;
const STREAM_FAILURES: u64 = 2;
const STREAM_RESTART: u64 = 3;

/// The shape of a federation, independent of the ML backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FederationSettings {
    pub num_clients: usize,
    pub clients_per_round: usize,
    pub rounds: usize,
    pub seed: u64,
    /// Probability that a sampled client is made to fail (for testing fault handling).
    pub failure_rate: f64,
    /// Evaluate every client every this many rounds (and always after the last).
    pub eval_every: usize,
}

/// The server's side of a run, enough to resume it exactly (clients checkpoint themselves).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerState {
    pub completed_rounds: usize,
    /// Bumped every time the global shared state changes.
    pub version: u64,
    /// Which version of the global state each client holds (`None`: never sent, or lost).
    pub held: Vec<Option<u64>>,
    pub history: Vec<RoundRecord>,
    pub last_eval: Vec<Option<EvalMetrics>>,
    /// The version at which each global tensor last changed (absent: it never did).
    #[serde(default)]
    pub changed: BTreeMap<String, u64>,
    /// Per client, the global tensors it has changed by training since it received them.
    #[serde(default)]
    pub diverged: Vec<BTreeSet<String>>,
    /// Shared-model mode: the clients whose relayed tensors equal `relay`.
    #[serde(default)]
    pub relay_holders: BTreeSet<usize>,
    #[serde(skip)]
    pub global: ParamSet,
    #[serde(skip)]
    pub aggregator: ParamSet,
    /// The shared-model mode's relayed tensors (B and head as the last client left them).
    #[serde(skip)]
    pub relay: ParamSet,
}

/// A federation of simulated clients around one server.
pub struct Federation {
    settings: FederationSettings,
    strategy: Strategy,
    aggregator: Box<dyn Aggregator>,
    rule: Option<Box<dyn ModuleRule>>,
    clients: Vec<Box<dyn ClientTrainer>>,
    roles: BTreeMap<String, Role>,
    /// The tensors the server holds: every role shared in some round, and those its rule
    /// rewrites.
    shared_names: Vec<String>,
    modules: Vec<LowRankModule>,
    /// Every client's own modules (its rank and scale), in the order of `modules`.
    client_modules: Vec<Vec<LowRankModule>>,
    /// The factors a rule combines itself (FLoRA, FlexLoRA, HetLoRA): the module's index in
    /// `modules` and the factor's role.
    factor_names: BTreeMap<String, (usize, Role)>,
    /// Per client, the shape of each of its factors in `factor_names` (ranks may differ).
    factor_shapes: Vec<BTreeMap<String, Vec<usize>>>,
    global: ParamSet,
    version: u64,
    held: Vec<Option<u64>>,
    changed: BTreeMap<String, u64>,
    diverged: Vec<BTreeSet<String>>,
    /// The tensors the shared-model mode hands from client to client, and their last values.
    relay_names: Vec<String>,
    relay: ParamSet,
    /// The clients whose relayed tensors equal `relay`.
    relay_holders: BTreeSet<usize>,
    completed: usize,
    history: Vec<RoundRecord>,
    last_eval: Vec<Option<EvalMetrics>>,
    sink: Box<dyn EventSink>,
}

impl Federation {
    /// Checks the settings, configures every client for `strategy`, and takes client 0's shared
    /// parameters as the initial global state (all clients start from the same seeded init).
    pub fn new(
        settings: FederationSettings,
        strategy: Strategy,
        aggregator: Box<dyn Aggregator>,
        mut clients: Vec<Box<dyn ClientTrainer>>,
        sink: Box<dyn EventSink>,
    ) -> Result<Self> {
        check_settings(&settings, clients.len())?;
        for (id, c) in clients.iter_mut().enumerate() {
            c.configure(&strategy).map_err(|e| Error::Client {
                client: id,
                message: e.to_string(),
            })?;
        }
        let roles = clients[0].roles();
        for (id, c) in clients.iter().enumerate().skip(1) {
            if c.roles() != roles {
                return Err(Error::Client {
                    client: id,
                    message: "its parameter names or roles differ from client 0's; every client needs the same adapter targets and head".into(),
                });
            }
        }
        let names_where = |keep: &dyn Fn(Role) -> bool| -> Vec<String> {
            roles
                .iter()
                .filter(|(_, r)| keep(**r))
                .map(|(n, _)| n.clone())
                .collect()
        };
        let shared_names = names_where(&|r| strategy.server_holds(r));
        let relay_names = if strategy.shared_model {
            names_where(&|r| strategy.trains(r) && !strategy.server_holds(r))
        } else {
            Vec::new()
        };
        let client_modules: Vec<Vec<LowRankModule>> =
            clients.iter().map(|c| c.low_rank_modules()).collect();
        let modules = client_modules[0].clone();
        if strategy.needs_low_rank_modules() && modules.is_empty() {
            return Err(Error::run_config(
                "strategy.name",
                format!(
                    "strategy `{}` needs an adapter whose update is the low-rank product s·B·A \
                     (lora, rslora); this adapter has no such module",
                    strategy.name
                ),
            ));
        }
        check_client_modules(&strategy, &client_modules)?;
        let factor_names: BTreeMap<String, (usize, Role)> = if strategy.server.aggregates_factors()
        {
            modules
                .iter()
                .enumerate()
                .flat_map(|(i, m)| [(m.a.clone(), (i, Role::A)), (m.b.clone(), (i, Role::B))])
                .collect()
        } else {
            BTreeMap::new()
        };
        let factor_list: Vec<String> = factor_names.keys().cloned().collect();
        let factor_shapes = clients
            .iter()
            .map(|c| {
                Ok(c.params(&factor_list)?
                    .iter()
                    .map(|(n, t)| (n.clone(), t.shape().to_vec()))
                    .collect())
            })
            .collect::<Result<Vec<_>>>()?;
        let mut global = clients[0].params(&shared_names)?;
        // Factors the server holds at the largest rank start from the largest client's.
        for (name, &(module, _)) in &factor_names {
            if !global.contains(name) {
                continue;
            }
            let largest = (0..clients.len())
                .max_by_key(|&k| (client_modules[k][module].rank, std::cmp::Reverse(k)))
                .unwrap_or(0);
            global.extend(clients[largest].params(std::slice::from_ref(name))?);
        }
        let n = clients.len();
        Ok(Self {
            settings,
            strategy,
            aggregator,
            rule: None,
            clients,
            roles,
            shared_names,
            modules,
            client_modules,
            factor_names,
            factor_shapes,
            global,
            version: 0,
            held: vec![None; n],
            changed: BTreeMap::new(),
            diverged: vec![BTreeSet::new(); n],
            relay_names,
            relay: ParamSet::new(),
            relay_holders: BTreeSet::new(),
            completed: 0,
            history: Vec::new(),
            last_eval: vec![None; n],
            sink,
        })
    }

    /// Sets the server rule the strategy's `server` names (see `fedsa_aggregators::methods`).
    pub fn set_module_rule(&mut self, mut rule: Box<dyn ModuleRule>) -> Result<()> {
        if rule.aggregates_factors() != self.strategy.server.aggregates_factors() {
            return Err(Error::run_config(
                "strategy.name",
                format!(
                    "server rule `{}` does not fit strategy `{}`",
                    rule.name(),
                    self.strategy.name
                ),
            ));
        }
        if rule.aggregates_factors() && self.aggregator.combines_modules() {
            return Err(Error::run_config(
                "strategy.aggregator",
                format!(
                    "`{}` combines each module's factors itself, and so does strategy `{}`; \
                     use an aggregator that works tensor by tensor (fedavg)",
                    self.aggregator.name(),
                    self.strategy.name
                ),
            ));
        }
        rule.set_clients(&self.client_modules);
        self.rule = Some(rule);
        Ok(())
    }

    /// The adapted modules whose update is `s·B·A`, from client 0.
    pub fn low_rank_modules(&self) -> &[LowRankModule] {
        &self.modules
    }

    /// Client `c`'s own adapted modules (its rank and scale).
    pub fn client_modules(&self, c: usize) -> &[LowRankModule] {
        &self.client_modules[c]
    }

    pub fn settings(&self) -> &FederationSettings {
        &self.settings
    }

    pub fn strategy(&self) -> &Strategy {
        &self.strategy
    }

    pub fn aggregator_name(&self) -> &str {
        self.aggregator.name()
    }

    /// Rounds completed so far.
    pub fn completed_rounds(&self) -> usize {
        self.completed
    }

    /// The server's current shared state.
    pub fn global(&self) -> &ParamSet {
        &self.global
    }

    /// Names of the tensors that cross between client and server.
    pub fn shared_names(&self) -> &[String] {
        &self.shared_names
    }

    pub fn clients(&self) -> &[Box<dyn ClientTrainer>] {
        &self.clients
    }

    pub fn clients_mut(&mut self) -> &mut [Box<dyn ClientTrainer>] {
        &mut self.clients
    }

    /// Records of the rounds completed so far.
    pub fn history(&self) -> &[RoundRecord] {
        &self.history
    }

    /// Emits an event on the run's stream (for the layers around the loop: checkpoints, logs).
    pub fn emit(&mut self, event: Event) {
        self.sink.emit(event);
    }

    /// The server's state, for a checkpoint.
    pub fn server_state(&self) -> Result<ServerState> {
        Ok(ServerState {
            completed_rounds: self.completed,
            version: self.version,
            held: self.held.clone(),
            history: self.history.clone(),
            last_eval: self.last_eval.clone(),
            changed: self.changed.clone(),
            diverged: self.diverged.clone(),
            relay_holders: self.relay_holders.clone(),
            global: self.global.clone(),
            aggregator: self.aggregator.state()?,
            relay: self.relay.clone(),
        })
    }

    /// Restores a checkpointed server state (the clients restore their own).
    pub fn restore_server_state(&mut self, state: ServerState) -> Result<()> {
        if state.held.len() != self.clients.len() || state.last_eval.len() != self.clients.len() {
            return Err(Error::param(
                "server state",
                format!(
                    "checkpoint has {} clients, this run has {}",
                    state.held.len(),
                    self.clients.len()
                ),
            ));
        }
        self.check_restored_global(&state.global)?;
        self.aggregator.load_state(&state.aggregator)?;
        self.completed = state.completed_rounds;
        self.version = state.version;
        self.held = state.held;
        self.history = state.history;
        self.last_eval = state.last_eval;
        self.changed = state.changed;
        self.diverged = if state.diverged.is_empty() {
            vec![BTreeSet::new(); self.clients.len()]
        } else {
            state.diverged
        };
        self.global = state.global;
        self.relay = state.relay;
        self.relay_holders = state.relay_holders;
        self.restore_base_deltas()
    }

    /// Runs the remaining rounds. `after_round` runs after each (checkpoints, progress); `stop`
    /// ends the run cleanly between rounds.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        after_round: &mut dyn FnMut(&mut Federation, &RoundRecord) -> Result<()>,
    ) -> Result<RunSummary> {
        let started = Instant::now();
        self.sink.emit(Event::RunStarted {
            num_clients: self.clients.len(),
            rounds: self.settings.rounds,
            first_round: self.completed + 1,
            strategy: self.strategy.name.clone(),
            aggregator: self.aggregator.name().to_string(),
        });
        let result = (|| {
            while self.completed < self.settings.rounds {
                if stop.load(Ordering::Relaxed) {
                    return Err(Error::Stopped);
                }
                let record = self.run_round()?;
                after_round(self, &record)?;
            }
            Ok(self.summary(started.elapsed().as_secs_f64()))
        })();
        match &result {
            Ok(summary) => self.sink.emit(Event::RunFinished {
                summary: summary.clone(),
            }),
            Err(e) => self.sink.emit(Event::RunFailed {
                error: crate::error::chain_text(e),
            }),
        }
        result
    }

    /// The run's outcome so far.
    pub fn summary(&self, seconds: f64) -> RunSummary {
        let last_means = self
            .history
            .iter()
            .rev()
            .find(|r| r.mean_accuracy.is_some());
        RunSummary {
            rounds: self.completed,
            strategy: self.strategy.name.clone(),
            clients: self.last_eval.clone(),
            mean_accuracy: last_means.and_then(|r| r.mean_accuracy),
            mean_f1: last_means.and_then(|r| r.mean_f1),
            best_mean_accuracy: self
                .history
                .iter()
                .filter_map(|r| r.mean_accuracy)
                .reduce(f64::max),
            means: Some(crate::metrics::MeanFigures::from_rounds(&self.history)),
            total_bytes_down: self.history.iter().map(|r| r.bytes_down).sum(),
            total_bytes_up: self.history.iter().map(|r| r.bytes_up).sum(),
            failures: self.history.iter().map(|r| r.failed.len()).sum(),
            seconds,
            failed: None,
        }
    }

    /// One round: sample, broadcast, train, aggregate, evaluate.
    pub fn run_round(&mut self) -> Result<RoundRecord> {
        let round = self.completed + 1;
        let started = Instant::now();
        let n = self.clients.len();
        let sampled = SeededRng::derive(self.settings.seed, &[round as u64, STREAM_SAMPLING])
            .sample_indices(n, self.settings.clients_per_round);
        self.sink.emit(Event::RoundStarted {
            round,
            sampled: sampled.clone(),
        });

        let mut records: Vec<ClientRoundRecord> = (0..n)
            .map(|client| ClientRoundRecord {
                round,
                client,
                sampled: sampled.contains(&client),
                train: None,
                failure: None,
                eval: None,
                num_train_examples: self.clients[client].num_train_examples(),
                bytes_down: 0,
                bytes_up: 0,
                train_seconds: 0.0,
            })
            .collect();
        let mut updates = Vec::new();
        let mut failures = Vec::new();
        let plan = self.strategy.plan(round);
        // What goes up: every tensor whose role the plan shares, held by the server or not
        // (FLoRA's factors go up and are merged into the base).
        let up_names: Vec<String> = self
            .roles
            .iter()
            .filter(|(_, r)| plan.shares(**r))
            .map(|(n, _)| n.clone())
            .collect();

        // Every sampled client is sent its round before any result is awaited, so clients
        // that train elsewhere (remote nodes) train at once. The shared-model mode hands the
        // relayed tensors from one client to the next, so there each waits for the last.
        let pipelined = !self.strategy.shared_model;
        let mut begun = BTreeMap::new();
        if pipelined {
            for &c in &sampled {
                let start = self.begin_client(round, c, &up_names, &mut records[c])?;
                begun.insert(c, start);
            }
        }
        for &c in &sampled {
            let (t0, started) = match begun.remove(&c) {
                Some(start) => start,
                None => self.begin_client(round, c, &up_names, &mut records[c])?,
            };
            match started.and_then(|()| self.finish_client(round, c, &up_names)) {
                Ok((stats, params)) => {
                    records[c].bytes_up = params.num_bytes();
                    records[c].bytes_up += self.relay_from(c)?;
                    records[c].train = Some(stats);
                    self.diverged[c] = self
                        .shared_names
                        .iter()
                        .filter(|n| plan.trains(self.roles[*n]))
                        .cloned()
                        .collect();
                    updates.push(ClientUpdate {
                        client: c,
                        num_examples: records[c].num_train_examples,
                        params,
                    });
                }
                Err(error) => {
                    // What it holds now is unknown: it gets everything next time.
                    self.held[c] = None;
                    records[c].failure = Some(error.clone());
                    self.sink.emit(Event::ClientFailed {
                        round,
                        client: c,
                        error: error.clone(),
                    });
                    failures.push(ClientFailure { client: c, error });
                }
            }
            records[c].train_seconds = t0.elapsed().as_secs_f64();
            self.sink.emit(Event::ClientFinished {
                record: records[c].clone(),
            });
        }

        let (aggregated, note) = self.aggregate(round, &up_names, &updates, &failures)?;
        if let Some(note) = &note {
            self.sink.emit(Event::Log {
                message: format!("round {round}: {note}"),
            });
        }

        let evaluate =
            round.is_multiple_of(self.settings.eval_every.max(1)) || round == self.settings.rounds;
        if evaluate {
            // As for training: every client starts, then every result is awaited.
            let mut started = Vec::with_capacity(n);
            for (c, record) in records.iter_mut().enumerate() {
                record.bytes_down += self.sync_client(c)?;
                record.bytes_down += self.relay_to(c)?;
                started.push(self.clients[c].begin_evaluate(round));
            }
            for ((c, record), begun) in records.iter_mut().enumerate().zip(started) {
                match begun.and_then(|()| self.clients[c].evaluate()) {
                    Ok(m) => {
                        record.eval = Some(m.clone());
                        self.last_eval[c] = Some(m);
                    }
                    Err(e) => {
                        let msg = format!("evaluation failed: {e}");
                        self.sink.emit(Event::ClientFailed {
                            round,
                            client: c,
                            error: msg.clone(),
                        });
                        record.failure.get_or_insert(msg);
                    }
                }
            }
        }

        let evals: Vec<&EvalMetrics> = records.iter().filter_map(|r| r.eval.as_ref()).collect();
        let failed: Vec<usize> = records
            .iter()
            .filter(|r| r.failure.is_some())
            .map(|r| r.client)
            .collect();
        let record = RoundRecord {
            round,
            succeeded: updates.iter().map(|u| u.client).collect(),
            failed,
            sampled,
            aggregated,
            note,
            mean_accuracy: mean(evals.iter().map(|m| m.accuracy)),
            mean_f1: mean(evals.iter().map(|m| m.macro_f1)),
            mean_loss: mean(evals.iter().map(|m| m.loss)),
            weighted_accuracy: weighted_mean_of(
                evals.iter().map(|m| (m.accuracy, m.num_examples as f64)),
            ),
            weighted_f1: weighted_mean_of(
                evals.iter().map(|m| (m.macro_f1, m.num_examples as f64)),
            ),
            privacy: self.aggregator.privacy_spent(),
            mean_train_loss: mean(
                records
                    .iter()
                    .filter_map(|r| r.train.as_ref().map(|t| t.loss)),
            ),
            bytes_down: records.iter().map(|r| r.bytes_down).sum(),
            bytes_up: records.iter().map(|r| r.bytes_up).sum(),
            seconds: started.elapsed().as_secs_f64(),
        };
        self.completed = round;
        self.history.push(record.clone());
        self.sink.emit(Event::RoundFinished {
            record: record.clone(),
            clients: records,
        });
        Ok(record)
    }

    /// Sends client `c` what it lacks and starts its training; returns when it started and
    /// whether it did. An error here (the global state could not be sent) ends the run.
    fn begin_client(
        &mut self,
        round: usize,
        c: usize,
        up_names: &[String],
        record: &mut ClientRoundRecord,
    ) -> Result<(Instant, std::result::Result<(), String>)> {
        self.sink.emit(Event::ClientStarted { round, client: c });
        let t0 = Instant::now();
        record.bytes_down += self.sync_client(c)?;
        record.bytes_down += self.relay_to(c)?;
        Ok((t0, self.start_client(round, c, up_names)))
    }

    /// Roles of the exchanged parameters, from client 0 (all clients have the same names).
    pub fn roles(&self) -> BTreeMap<String, Role> {
        self.roles.clone()
    }
}

/// Every client adapts the same modules; their ranks may differ only where the server rule
/// combines each module's factors itself.
fn check_client_modules(strategy: &Strategy, clients: &[Vec<LowRankModule>]) -> Result<()> {
    let first = &clients[0];
    for (id, own) in clients.iter().enumerate().skip(1) {
        let same_names = own.len() == first.len()
            && own.iter().zip(first).all(|(m, f)| m.a == f.a && m.b == f.b);
        if !same_names {
            return Err(Error::Client {
                client: id,
                message: "its adapted modules differ from client 0's".into(),
            });
        }
        if !strategy.accepts_differing_ranks()
            && let Some(m) = own.iter().zip(first).find(|(m, f)| m.rank != f.rank)
        {
            return Err(Error::run_config(
                "clients.rank",
                format!(
                    "client {id} has rank {} on {} where client 0 has {}; strategy `{}` needs \
                     one rank on every client ({})",
                    m.0.rank,
                    m.0.name,
                    m.1.rank,
                    strategy.name,
                    crate::clients::rank_support_hint()
                ),
            ));
        }
    }
    Ok(())
}

fn check_settings(s: &FederationSettings, clients: usize) -> Result<()> {
    let bad = |field: &str, message: String| Err(Error::run_config(field, message));
    if clients == 0 {
        return bad(
            "federation.num_clients",
            "a federation needs at least one client".into(),
        );
    }
    if s.num_clients != clients {
        return bad(
            "federation.num_clients",
            format!("{} configured, {clients} clients built", s.num_clients),
        );
    }
    if s.clients_per_round == 0 || s.clients_per_round > s.num_clients {
        return bad(
            "federation.clients_per_round",
            format!(
                "must be between 1 and num_clients ({}), got {}",
                s.num_clients, s.clients_per_round
            ),
        );
    }
    if !(0.0..1.0).contains(&s.failure_rate) {
        return bad(
            "federation.failure_rate",
            format!("must be in [0, 1), got {}", s.failure_rate),
        );
    }
    Ok(())
}
