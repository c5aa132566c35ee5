//! The aggregation contract. The server hands an aggregator the round, the previous global
//! shared state, the successful updates with their example counts, and the failures apart.
//! Returning `None` keeps the previous global state.

use crate::{Error, LowRankModule, ModuleUpdate, ParamSet, PrivacySpent, Result, TensorData};

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

    /// Whether this aggregator combines each low-rank module's A and B in one call
    /// ([`Aggregator::aggregate_module`]) rather than tensor by tensor.
    fn combines_modules(&self) -> bool {
        false
    }

    /// A module's next `(A, B)` from every client's factors of it, or `None` to keep
    /// `global_a`/`global_b`. Called only when [`Aggregator::combines_modules`] is true, for
    /// modules whose A and B both went up this round; the other tensors go to
    /// [`Aggregator::aggregate`].
    fn aggregate_module(
        &mut self,
        round: usize,
        module: &LowRankModule,
        global_a: &TensorData,
        global_b: &TensorData,
        updates: &[ModuleUpdate<'_>],
    ) -> Result<Option<(TensorData, TensorData)>> {
        let _ = (round, global_a, global_b, updates);
        Err(Error::Aggregation {
            aggregator: self.name().to_string(),
            message: format!("has no module-level rule (module `{}`)", module.name),
        })
    }

    /// The differential privacy spent so far, for an aggregator that releases noisy
    /// aggregates; `None` for every other.
    fn privacy_spent(&self) -> Option<PrivacySpent> {
        None
    }

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

/// `acc += w · xs`, element by element in f64: with AVX (four f64 lanes) where the CPU has it,
/// since the build targets baseline x86-64 (two lanes); the same values either way.
fn accumulate(acc: &mut [f64], w: f64, xs: &[f32]) {
    // Inlined into `wide` so that copy is compiled for AVX (a call would not be).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn body(acc: &mut [f64], w: f64, xs: &[f32]) {
        for (a, v) in acc.iter_mut().zip(xs) {
            *a += w * f64::from(*v);
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx")]
        fn wide(acc: &mut [f64], w: f64, xs: &[f32]) {
            body(acc, w, xs);
        }
        if std::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU has the feature `wide` is compiled for.
            unsafe { wide(acc, w, xs) };
            return;
        }
    }
    body(acc, w, xs);
}

/// Elements per block of [`weighted_mean`]'s accumulator (16 KiB of `f64`: within L1).
const MEAN_BLOCK: usize = 2048;

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
        let mut sources = Vec::with_capacity(updates.len());
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
            sources.push((weight(u), t.data()));
        }
        let mut mean = vec![0f32; tensor.len()];
        // Block by block, every client into a small f64 accumulator that stays in cache: each
        // update is read once and the result written once (a full-length f64 accumulator
        // would be read and written again for every client). The sum per element runs in
        // client order either way.
        let mut acc = [0f64; MEAN_BLOCK];
        for (start, dst) in (0..).step_by(MEAN_BLOCK).zip(mean.chunks_mut(MEAN_BLOCK)) {
            let acc = &mut acc[..dst.len()];
            acc.fill(0.0);
            for (w, data) in &sources {
                accumulate(acc, *w, &data[start..start + dst.len()]);
            }
            for (d, a) in dst.iter_mut().zip(acc.iter()) {
                *d = *a as f32;
            }
        }
        out.insert(name.clone(), tensor.shape().to_vec(), mean)?;
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

    #[test]
    fn blocked_mean_is_the_per_element_weighted_sum() {
        // Several blocks and a partial one: every element is Σ w_c x_c in f64, in client order.
        let n = 2 * MEAN_BLOCK + 5;
        let updates: Vec<ClientUpdate> = (0..3)
            .map(|c| {
                let v: Vec<f32> = (0..n)
                    .map(|j| ((j * 7 + c * 13) % 29) as f32 - 14.5)
                    .collect();
                ClientUpdate {
                    client: c,
                    num_examples: c + 1,
                    params: set(&v),
                }
            })
            .collect();
        let out = weighted_mean(&set(&vec![0.0; n]), &updates).unwrap();
        let got = out.get("w").unwrap().data();
        for (j, g) in got.iter().enumerate() {
            let want: f64 = updates
                .iter()
                .map(|u| {
                    u.num_examples as f64 / 6.0 * f64::from(u.params.get("w").unwrap().data()[j])
                })
                .sum();
            assert_eq!(*g, want as f32, "element {j}");
        }
    }
}
