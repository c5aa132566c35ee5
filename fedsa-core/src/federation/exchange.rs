//! What crosses between the server and one client: the global tensors a client lacks (by
//! version, tensor by tensor, so a round that changed one factor sends that factor), the
//! shared-model mode's relayed tensors, and one client's local training with its upload.

use super::{Federation, STREAM_FAILURES, STREAM_RESTART};
use crate::{Error, ParamSet, Result, Schedule, SeededRng, TrainStats, is_base_delta};

impl Federation {
    /// Sends client `c` the global tensors it does not hold (all of them when it holds no
    /// version; otherwise those changed since, and those it changed itself); returns the bytes.
    pub(super) fn sync_client(&mut self, c: usize) -> Result<u64> {
        if self.shared_names.is_empty() && self.global.is_empty() {
            return Ok(0);
        }
        let send = match self.held[c] {
            Some(v) if v == self.version && self.diverged[c].is_empty() => return Ok(0),
            Some(v) => {
                let changed = &self.changed;
                let diverged = &self.diverged[c];
                self.global
                    .filter(|n| changed.get(n).is_some_and(|&at| at > v) || diverged.contains(n))
            }
            None => self.global.clone(),
        };
        self.held[c] = Some(self.version);
        self.diverged[c].clear();
        if send.is_empty() {
            return Ok(0);
        }
        let send = self.client_view(c, send)?;
        self.clients[c]
            .set_params(&send)
            .map_err(|e| Error::Client {
                client: c,
                message: format!("could not receive the global state: {e}"),
            })?;
        if self.strategy.restarts_factors() && send.names().any(|n| is_base_delta(n)) {
            // The merged base now holds what this client's factors learned.
            let seed = SeededRng::derive(
                self.settings.seed,
                &[self.version, STREAM_RESTART, c as u64],
            )
            .next_u64();
            self.clients[c]
                .restart_factors(seed)
                .map_err(|e| Error::Client {
                    client: c,
                    message: format!("could not restart its factors after the merge: {e}"),
                })?;
        }
        Ok(send.num_bytes())
    }

    /// What client `c` receives of `send`: factors the server holds at the largest rank go
    /// through the rule's view (the client's own rank); everything else as it is.
    fn client_view(&self, c: usize, send: ParamSet) -> Result<ParamSet> {
        let Some(rule) = self.rule.as_ref().filter(|r| r.aggregates_factors()) else {
            return Ok(send);
        };
        send.into_iter()
            .map(|(name, t)| match self.factor_names.get(&name) {
                Some(&(module, role)) => {
                    let own = rule.client_factor(c, module, role, &t)?;
                    Ok((name, own))
                }
                None => Ok((name, t)),
            })
            .collect()
    }

    /// Checks client `c`'s upload: exactly `up_names`, each shaped as the global tensor, or
    /// for a factor of its own rank as the client's own.
    fn check_upload(&self, c: usize, up_names: &[String], params: &ParamSet) -> Result<()> {
        for name in up_names {
            let got = params.require(name)?;
            let expected = self.factor_shapes[c]
                .get(name)
                .map(Vec::as_slice)
                .or_else(|| self.global.get(name).map(crate::TensorData::shape));
            if let Some(expected) = expected
                && got.shape() != expected
            {
                return Err(Error::param(
                    name,
                    format!("shape {:?} where {expected:?} was expected", got.shape()),
                ));
            }
        }
        if let Some(extra) = params.names().find(|n| !up_names.contains(n)) {
            return Err(Error::param(
                extra.clone(),
                "not expected in this parameter set",
            ));
        }
        Ok(())
    }

    /// Shared-model mode: hands client `c` the relayed tensors the last client left, unless
    /// it left them itself; returns the bytes.
    pub(super) fn relay_to(&mut self, c: usize) -> Result<u64> {
        if self.relay.is_empty() || self.relay_holders.contains(&c) {
            return Ok(0);
        }
        self.clients[c]
            .set_params(&self.relay)
            .map_err(|e| Error::Client {
                client: c,
                message: format!("could not receive the relayed tensors: {e}"),
            })?;
        self.relay_holders.insert(c);
        Ok(self.relay.num_bytes())
    }

    /// Shared-model mode: takes client `c`'s relayed tensors after its training; returns the
    /// bytes.
    pub(super) fn relay_from(&mut self, c: usize) -> Result<u64> {
        if self.relay_names.is_empty() {
            return Ok(0);
        }
        self.relay = self.clients[c].params(&self.relay_names)?;
        self.relay_holders = std::iter::once(c).collect();
        Ok(self.relay.num_bytes())
    }

    /// Starts client `c`'s local training (injected failures, the round's trained roles, and
    /// [`crate::ClientTrainer::begin_train`]); any problem becomes the failure message.
    pub(super) fn start_client(
        &mut self,
        round: usize,
        c: usize,
        up_names: &[String],
    ) -> std::result::Result<(), String> {
        let mut fail_rng = SeededRng::derive(
            self.settings.seed,
            &[round as u64, STREAM_FAILURES, c as u64],
        );
        if self.settings.failure_rate > 0.0 && fail_rng.next_f64() < self.settings.failure_rate {
            return Err("injected failure (federation.failure_rate)".into());
        }
        let plan = self.strategy.plan(round);
        let mut returns = up_names.to_vec();
        returns.extend(self.relay_names.iter().cloned());
        let client = &mut self.clients[c];
        if self.strategy.schedule != Schedule::Fixed {
            client
                .set_trained_roles(&plan.trained_roles())
                .map_err(|e| e.to_string())?;
        }
        client
            .begin_train(round, &returns)
            .map_err(|e| e.to_string())
    }

    /// Finishes client `c`'s local training started by [`Federation::start_client`]; any
    /// problem becomes the failure message. Returns the tensors it sends up (`up_names`).
    pub(super) fn finish_client(
        &mut self,
        round: usize,
        c: usize,
        up_names: &[String],
    ) -> std::result::Result<(TrainStats, ParamSet), String> {
        let client = &mut self.clients[c];
        let stats = client.train(round).map_err(|e| e.to_string())?;
        if !stats.loss.is_finite() {
            return Err(format!("training loss is {}", stats.loss));
        }
        let params = client.params(up_names).map_err(|e| e.to_string())?;
        if let Some(name) = params.first_non_finite() {
            return Err(format!("non-finite value in shared tensor `{name}`"));
        }
        self.check_upload(c, up_names, &params)
            .map_err(|e| e.to_string())?;
        Ok((stats, params))
    }

    /// After a restore: every client gets the frozen-weight corrections the server holds, as
    /// its own saved copy would give it (nothing crosses, so no bytes are counted).
    pub(super) fn restore_base_deltas(&mut self) -> Result<()> {
        let deltas = self.global.filter(is_base_delta);
        if deltas.is_empty() {
            return Ok(());
        }
        for (c, client) in self.clients.iter_mut().enumerate() {
            client.set_params(&deltas).map_err(|e| Error::Client {
                client: c,
                message: format!("could not restore the frozen-weight corrections: {e}"),
            })?;
        }
        Ok(())
    }

    /// Checks a checkpointed global state against this run's layout: the same tensors, plus
    /// only the corrections a server rule adds.
    pub(super) fn check_restored_global(&self, restored: &ParamSet) -> Result<()> {
        let own = restored.filter(|n| !is_base_delta(n));
        self.global
            .filter(|n| !is_base_delta(n))
            .check_same_layout(&own)
    }
}
