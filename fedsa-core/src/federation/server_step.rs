//! The server's step of a round: the aggregate of what went up (module by module for an
//! aggregator that combines each module's factors, tensor by tensor otherwise), then the
//! strategy's server rule, and the bookkeeping of which global tensors changed.

use super::Federation;
use crate::{ClientFailure, ClientUpdate, Error, ParamSet, Result, ServerRule};

impl Federation {
    /// Aggregates the round's uploads (`up_names`) into the global state. Returns whether it
    /// changed and, when it did not, why.
    pub(super) fn aggregate(
        &mut self,
        round: usize,
        up_names: &[String],
        updates: &[ClientUpdate],
        failures: &[ClientFailure],
    ) -> Result<(bool, Option<String>)> {
        if up_names.is_empty() {
            return Ok((
                false,
                Some(format!("strategy `{}` shares nothing", self.strategy.name)),
            ));
        }
        if updates.is_empty() {
            return Ok((
                false,
                Some("no client succeeded; the previous global state is kept".into()),
            ));
        }
        if self.strategy.server != ServerRule::Aggregate && self.rule.is_none() {
            return Err(Error::Aggregation {
                aggregator: self.aggregator.name().to_string(),
                message: format!(
                    "strategy `{}` needs its server rule, and none was set",
                    self.strategy.name
                ),
            });
        }
        // A rule that combines the factors itself leaves the aggregator the rest (the head).
        let by_rule = self.rule.as_ref().is_some_and(|r| r.aggregates_factors());
        let agg_names: Vec<String> = up_names
            .iter()
            .filter(|n| !(by_rule && self.factor_names.contains_key(*n)))
            .cloned()
            .collect();
        let up: std::collections::BTreeSet<&str> = agg_names.iter().map(String::as_str).collect();
        let previous = self.global.filter(|n| up.contains(n));
        let rest_updates: Vec<ClientUpdate>;
        let agg_updates = if by_rule {
            rest_updates = restricted(updates, |n| up.contains(n));
            &rest_updates
        } else {
            updates
        };
        let next = if agg_names.is_empty() {
            Some(ParamSet::new())
        } else {
            self.combine(round, &previous, agg_updates, failures)?
        };
        let Some(next) = next else {
            return Ok((
                false,
                Some(format!(
                    "aggregator `{}` kept the previous global state",
                    self.aggregator.name()
                )),
            ));
        };
        if let Some(name) = next.first_non_finite() {
            return Err(Error::Aggregation {
                aggregator: self.aggregator.name().to_string(),
                message: format!(
                    "round {round}: the aggregate of `{name}` is not finite; stopping with the last good state"
                ),
            });
        }
        previous.check_same_layout(&next)?;
        let version = self.version + 1;
        let mut global = self.global.clone();
        global.extend(next);
        let mut touched = agg_names;
        if let Some(rule) = &mut self.rule {
            touched.extend(rule.apply(version, &self.modules, &mut global, updates)?);
            if let Some(name) = global.first_non_finite() {
                return Err(Error::Aggregation {
                    aggregator: rule.name().to_string(),
                    message: format!(
                        "round {round}: `{name}` is not finite after the server rule; stopping with the last good state"
                    ),
                });
            }
        }
        for name in touched {
            self.changed.insert(name, version);
        }
        self.global = global;
        self.version = version;
        Ok((true, None))
    }

    /// The aggregator's next values of `previous`'s tensors, or `None` to keep them. An
    /// aggregator that combines modules gets each module whose factors both went up in one
    /// call; the rest goes tensor by tensor.
    fn combine(
        &mut self,
        round: usize,
        previous: &ParamSet,
        updates: &[ClientUpdate],
        failures: &[ClientFailure],
    ) -> Result<Option<ParamSet>> {
        if !self.aggregator.combines_modules() {
            return self
                .aggregator
                .aggregate(round, previous, updates, failures);
        }
        let mut next = ParamSet::new();
        let mut by_module = Vec::new();
        for m in &self.modules {
            let (Some(a), Some(b)) = (previous.get(&m.a), previous.get(&m.b)) else {
                continue;
            };
            let factors = m.updates(updates)?;
            let (na, nb) = self
                .aggregator
                .aggregate_module(round, m, a, b, &factors)?
                .unwrap_or_else(|| (a.clone(), b.clone()));
            next.insert_tensor(m.a.clone(), na);
            next.insert_tensor(m.b.clone(), nb);
            by_module.push(m.a.clone());
            by_module.push(m.b.clone());
        }
        let by_module: std::collections::BTreeSet<String> = by_module.into_iter().collect();
        let rest = previous.filter(|n| !by_module.contains(n));
        if !rest.is_empty() {
            let rest_updates = restricted(updates, |n| rest.contains(n));
            let values = self
                .aggregator
                .aggregate(round, &rest, &rest_updates, failures)?
                .unwrap_or(rest);
            next.extend(values);
        }
        Ok(Some(next))
    }
}

/// The updates with only the tensors `keep` names.
fn restricted(updates: &[ClientUpdate], keep: impl Fn(&str) -> bool) -> Vec<ClientUpdate> {
    updates
        .iter()
        .map(|u| ClientUpdate {
            client: u.client,
            num_examples: u.num_examples,
            params: u.params.filter(&keep),
        })
        .collect()
}
