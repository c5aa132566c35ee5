//! The aggregation contract. The server hands an aggregator the round, the previous global
//! shared state, the successful updates with their example counts, and the failures apart.
//! Returning `None` keeps the previous global state.

use crate::{Error, ParamSet, Result};

/// One client's successful update for a round.
#[derive(Debug, Clone)]
pub struct ClientUpdate {
    pub client: usize,
    /// Local training examples: the weight of this update in a weighted mean.
    pub num_examples: usize,
    /// The client's shared tensors after local training.
    pub params: ParamSet,
}

/// A client that did not deliver an update this round.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFailure {
    pub client: usize,
    pub error: String,
}

/// Combines the clients' shared tensors into the next global state.
///
/// Built-in and plugin aggregators implement the same trait. Stateful server optimisers keep
/// their memory between calls and expose it through [`Aggregator::state`] for checkpoints.
pub trait Aggregator: Send {
    /// A short name for reports.
    fn name(&self) -> &str;

    /// The next global shared state, or `None` to keep `global` unchanged.
    ///
    /// `updates` is never empty: a round with no successful client does not reach the
    /// aggregator. Every update has the same names and shapes as `global`.
    fn aggregate(
        &mut self,
        round: usize,
        global: &ParamSet,
        updates: &[ClientUpdate],
        failures: &[ClientFailure],
    ) -> Result<Option<ParamSet>>;

    /// Server-side state to checkpoint (empty for stateless aggregators).
    fn state(&self) -> Result<ParamSet> {
        Ok(ParamSet::new())
    }

    /// Restores what [`Aggregator::state`] returned.
    fn load_state(&mut self, state: &ParamSet) -> Result<()> {
        if state.is_empty() {
            Ok(())
        } else {
            Err(Error::Aggregation {
                aggregator: self.name().to_string(),
                message: "this aggregator keeps no state, but the checkpoint holds some".into(),
            })
        }
    }
}

/// FedAvg: the mean of the updates weighted by each client's number of training examples.
#[derive(Debug, Default, Clone)]
pub struct WeightedMean;

impl Aggregator for WeightedMean {
    fn name(&self) -> &'static str {
        "fedavg"
    }

    fn aggregate(
        &mut self,
        _round: usize,
        global: &ParamSet,
        updates: &[ClientUpdate],
        _failures: &[ClientFailure],
    ) -> Result<Option<ParamSet>> {
        weighted_mean(global, updates).map(Some)
    }
}

/// The example-weighted mean of `updates`, laid out like `global`. Accumulates in f64 so the
/// result does not depend on client order beyond the final rounding.
pub fn weighted_mean(global: &ParamSet, updates: &[ClientUpdate]) -> Result<ParamSet> {
    let total: usize = updates.iter().map(|u| u.num_examples).sum();
    if updates.is_empty() {
        return Err(Error::Aggregation {
            aggregator: "fedavg".into(),
            message: "no updates to aggregate".into(),
        });
    }
    // With no examples reported anywhere, fall back to an unweighted mean rather than 0/0.
    let weight = |u: &ClientUpdate| {
        if total == 0 {
            1.0 / updates.len() as f64
        } else {
            u.num_examples as f64 / total as f64
        }
    };
    let mut out = ParamSet::new();
    for (name, tensor) in global.iter() {
        let mut acc = vec![0f64; tensor.len()];
        for u in updates {
            let t = u.params.require(name)?;
            if t.shape() != tensor.shape() {
                return Err(Error::param(
                    name.clone(),
                    format!(
                        "client {} sent shape {:?}, expected {:?}",
                        u.client,
                        t.shape(),
                        tensor.shape()
                    ),
                ));
            }
            let w = weight(u);
            for (a, v) in acc.iter_mut().zip(t.data()) {
                *a += w * f64::from(*v);
            }
        }
        out.insert(
            name.clone(),
            tensor.shape().to_vec(),
            acc.into_iter().map(|v| v as f32).collect(),
        )?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[f32]) -> ParamSet {
        let mut p = ParamSet::new();
        p.insert("w", vec![v.len()], v.to_vec()).unwrap();
        p
    }

    #[test]
    fn weighted_mean_matches_hand_computation() {
        // weights 1/6, 2/6, 3/6: w0 = (1*1 + 2*4 + 3*7)/6 = 5, w1 = (1*2 + 2*(-2) + 3*0)/6 = -1/3
        let updates = [
            ClientUpdate {
                client: 0,
                num_examples: 10,
                params: set(&[1.0, 2.0]),
            },
            ClientUpdate {
                client: 1,
                num_examples: 20,
                params: set(&[4.0, -2.0]),
            },
            ClientUpdate {
                client: 2,
                num_examples: 30,
                params: set(&[7.0, 0.0]),
            },
        ];
        let out = WeightedMean
            .aggregate(1, &set(&[0.0, 0.0]), &updates, &[])
            .unwrap()
            .unwrap();
        let w = out.get("w").unwrap().data();
        assert_eq!(w[0], 5.0);
        assert!((w[1] - (-1.0 / 3.0)).abs() < 1e-7, "{}", w[1]);
    }

    #[test]
    fn shape_mismatch_names_client_and_tensor() {
        let mut bad = ParamSet::new();
        bad.insert("w", vec![1, 2], vec![0.0, 0.0]).unwrap();
        let updates = [ClientUpdate {
            client: 4,
            num_examples: 1,
            params: bad,
        }];
        let err = weighted_mean(&set(&[0.0, 0.0]), &updates)
            .unwrap_err()
            .to_string();
        assert!(err.contains("client 4") && err.contains("`w`"), "{err}");
    }
}
