//! The server's stand-in for one remote client: a [`ClientTrainer`] whose work happens on
//! its node. What the federation hands it between two messages (global tensors, a factor
//! restart, the round's trained roles, a restore after a resume) is queued and goes with the
//! next message; what it reads back (`params`) is what the node sent: its initial tensors and
//! after each round the tensors the strategy shares, nothing else.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use fedsa_core::{
    ClientTrainer, Error, EvalMetrics, LowRankModule, ParamSet, Result, Role, Strategy, TrainStats,
};

use crate::link::{Directory, Introduction};
use crate::wire::{Envelope, Hello, Op, Reply, Request, WireTensor};

use fedsa_core::REMOTE_STATE_ROUND as STATE_ROUND;

/// One remote client.
pub struct RemoteClient {
    client: usize,
    directory: Arc<Mutex<Directory>>,
    hello: Hello,
    /// The client's tensors as far as the server knows them: its init, what the server sent,
    /// what it sent back.
    known: ParamSet,
    ops: Vec<Op>,
    tensors: Vec<WireTensor>,
    /// The state the node must continue from, sent until a message succeeds (0: a new run).
    restore: Option<usize>,
    /// The last round a message was sent in.
    round: usize,
    /// The message awaiting its reply.
    in_flight: Option<u64>,
}

impl RemoteClient {
    pub fn new(intro: Introduction, directory: Arc<Mutex<Directory>>) -> Self {
        Self {
            client: intro.hello.client,
            directory,
            hello: intro.hello,
            known: intro.init,
            ops: Vec::new(),
            tensors: Vec::new(),
            restore: Some(0),
            round: 0,
            in_flight: None,
        }
    }

    fn error(&self, message: impl std::fmt::Display) -> Error {
        Error::Client {
            client: self.client,
            message: message.to_string(),
        }
    }

    fn directory(&self) -> std::sync::MutexGuard<'_, Directory> {
        // A panic elsewhere cannot leave the map half-updated: each update is one insert or
        // remove.
        self.directory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends one request with the queued changes.
    fn send(&mut self, round: usize, make: impl FnOnce(String, Vec<Op>) -> Request) -> Result<()> {
        if self.in_flight.is_some() {
            return Err(self.error("a message is already awaiting its reply"));
        }
        let mut ops = Vec::new();
        if let Some(r) = self.restore {
            ops.push(Op::Restore { round: r });
        }
        ops.append(&mut self.ops);
        let tensors = std::mem::take(&mut self.tensors);
        let mut dir = self.directory();
        let request = make(dir.config().to_string(), ops);
        let header = serde_json::to_string(&request).map_err(|e| Error::backend("a request", e))?;
        let ticket = dir
            .push(self.client, Envelope { header, tensors })
            .map_err(|e| self.error(format!("{e:#}")))?;
        drop(dir);
        self.round = round;
        self.in_flight = Some(ticket);
        Ok(())
    }

    /// Waits for the reply to the message in flight.
    fn receive(&mut self) -> Result<(Reply, Envelope)> {
        let Some(ticket) = self.in_flight.take() else {
            return Err(self.error("no message is awaiting its reply"));
        };
        let envelope = self
            .directory()
            .pull(self.client, ticket)
            .map_err(|e| self.error(format!("{e:#}")))?;
        let reply: Reply = envelope
            .header("the node's reply")
            .map_err(|e| self.error(format!("{e:#}")))?;
        if let Reply::Error { message } = &reply {
            return Err(self.error(message));
        }
        self.restore = None;
        Ok((reply, envelope))
    }
}

impl ClientTrainer for RemoteClient {
    fn configure(&mut self, _strategy: &Strategy) -> Result<()> {
        // The node configures its own trainer from the config every request carries.
        Ok(())
    }

    fn set_trained_roles(&mut self, roles: &[Role]) -> Result<()> {
        self.ops.push(Op::Roles {
            roles: roles.to_vec(),
        });
        Ok(())
    }

    fn low_rank_modules(&self) -> Vec<LowRankModule> {
        self.hello.modules.iter().map(LowRankModule::from).collect()
    }

    fn restart_factors(&mut self, seed: u64) -> Result<()> {
        self.ops.push(Op::Restart { seed });
        Ok(())
    }

    fn roles(&self) -> BTreeMap<String, Role> {
        self.hello.roles.clone()
    }

    fn num_train_examples(&self) -> usize {
        self.hello.num_train_examples
    }

    fn params(&self, names: &[String]) -> Result<ParamSet> {
        let mut out = ParamSet::new();
        for name in names {
            let t = self.known.get(name).ok_or_else(|| {
                self.error(format!(
                    "the server holds no copy of `{name}`: it stays on the node"
                ))
            })?;
            out.insert_tensor(name.clone(), t.clone());
        }
        Ok(out)
    }

    fn set_params(&mut self, params: &ParamSet) -> Result<()> {
        self.ops.push(Op::Set {
            count: params.len(),
        });
        self.tensors.extend(crate::wire::to_wire(params));
        for (name, t) in params.iter() {
            self.known.insert_tensor(name.clone(), t.clone());
        }
        Ok(())
    }

    fn begin_train(&mut self, round: usize, returns: &[String]) -> Result<()> {
        let returns = returns.to_vec();
        self.send(round, |config, ops| Request::Train {
            config,
            round,
            ops,
            returns,
        })
    }

    fn train(&mut self, _round: usize) -> Result<TrainStats> {
        match self.receive()? {
            (Reply::Trained { stats }, envelope) => {
                let up = envelope
                    .params()
                    .map_err(|e| self.error(format!("its upload: {e:#}")))?;
                self.known.extend(up);
                Ok(stats)
            }
            (other, _) => Err(self.error(format!("answered a train request with {other:?}"))),
        }
    }

    fn begin_evaluate(&mut self, round: usize) -> Result<()> {
        self.send(round, |config, ops| Request::Evaluate {
            config,
            round,
            ops,
        })
    }

    fn evaluate(&mut self) -> Result<EvalMetrics> {
        match self.receive()? {
            (Reply::Evaluated { metrics }, _) => Ok(metrics),
            (other, _) => Err(self.error(format!("answered an evaluate request with {other:?}"))),
        }
    }

    fn save_state(&self) -> Result<ParamSet> {
        let mut state = ParamSet::new();
        state.insert(STATE_ROUND, vec![1], vec![self.round as f32])?;
        Ok(state)
    }

    fn load_state(&mut self, state: &ParamSet) -> Result<()> {
        let round = state
            .require(STATE_ROUND)?
            .data()
            .first()
            .copied()
            .unwrap_or(0.0);
        self.restore = Some(round as usize);
        self.round = round as usize;
        Ok(())
    }
}
