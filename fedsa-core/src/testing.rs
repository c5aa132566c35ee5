//! A tiny deterministic client for testing the federation without any ML backend.
//!
//! Each client holds, per layer, an `A` and a `B` tensor and a head. Local training pulls every
//! trainable tensor a fixed fraction of the way toward a target: the same target for all
//! clients on `A` (what clients share), a client-specific one on `B` and the head (what is
//! particular). Evaluation scores closeness to the client's targets. This is enough to test
//! every rule of the loop (sharing, freezing, weighting, failures, determinism) exactly.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    ClientTrainer, Error, EvalMetrics, LowRankModule, ParamSet, Result, Role, SeededRng, Strategy,
    TensorData, TrainStats, is_base_delta,
};

/// How a fake client should misbehave, for fault tests.
#[derive(Debug, Clone, Default)]
pub struct FakeFaults {
    /// Rounds in which `train` returns an error.
    pub fail_rounds: BTreeSet<usize>,
    /// Rounds in which training yields NaN in the shared tensors.
    pub nan_rounds: BTreeSet<usize>,
}

/// A deterministic fake [`ClientTrainer`].
#[derive(Debug, Clone)]
pub struct FakeTrainer {
    id: usize,
    num_examples: usize,
    layers: usize,
    rank: usize,
    scale: f64,
    params: ParamSet,
    roles: BTreeMap<String, Role>,
    trainable: BTreeSet<Role>,
    step: f32,
    faults: FakeFaults,
    rounds_trained: usize,
    /// Frozen-weight corrections received from the server (FedEx-LoRA).
    deltas: ParamSet,
}

impl FakeTrainer {
    /// Client `id` with `num_examples` examples and `layers` adapted layers; the initial
    /// parameters depend only on `seed`, as a real seeded init would.
    pub fn new(id: usize, num_examples: usize, layers: usize, seed: u64) -> Self {
        Self::with_rank(id, num_examples, layers, 2, seed)
    }

    /// As [`FakeTrainer::new`], with factors of rank `rank` (`A` `[rank, 3]`, `B` `[4, rank]`).
    pub fn with_rank(
        id: usize,
        num_examples: usize,
        layers: usize,
        rank: usize,
        seed: u64,
    ) -> Self {
        let mut params = ParamSet::new();
        let mut roles = BTreeMap::new();
        let mut rng = SeededRng::new(seed);
        for l in 0..layers {
            let (a, b) = Self::factor_names(l);
            params
                .insert(&a, vec![rank, 3], Self::draw_a(&mut rng, rank))
                .expect("shape");
            // `[out, r]` with out ≠ in, so an orientation mistake changes a shape.
            params
                .insert(&b, vec![4, rank], vec![0.0; 4 * rank])
                .expect("shape");
            roles.insert(a, Role::A);
            roles.insert(b, Role::B);
        }
        params
            .insert("classifier.weight", vec![2], vec![0.0; 2])
            .expect("shape");
        roles.insert("classifier.weight".into(), Role::Head);
        Self {
            id,
            num_examples,
            layers,
            rank,
            scale: Self::SCALE,
            params,
            roles,
            trainable: BTreeSet::new(),
            step: 0.5,
            faults: FakeFaults::default(),
            rounds_trained: 0,
            deltas: ParamSet::new(),
        }
    }

    fn factor_names(l: usize) -> (String, String) {
        (
            format!("layer.{l}.lora_A.weight"),
            format!("layer.{l}.lora_B.weight"),
        )
    }

    fn draw_a(rng: &mut SeededRng, rank: usize) -> Vec<f32> {
        (0..rank * 3).map(|_| rng.next_f64() as f32 - 0.5).collect()
    }

    /// The rank of this client's factors.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// With `scale` as its modules' scale (a rank-dependent `α/r`, say) instead of
    /// [`FakeTrainer::SCALE`].
    #[must_use]
    pub fn with_scale(mut self, scale: f64) -> Self {
        self.scale = scale;
        self
    }

    /// Adds misbehaviour.
    #[must_use]
    pub fn with_faults(mut self, faults: FakeFaults) -> Self {
        self.faults = faults;
        self
    }

    /// All parameters (for tests that inspect private state).
    pub fn all_params(&self) -> &ParamSet {
        &self.params
    }

    /// The frozen-weight corrections this client has received.
    pub fn base_deltas(&self) -> &ParamSet {
        &self.deltas
    }

    /// The scale of every fake module's product `s·B·A`, unless [`FakeTrainer::with_scale`]
    /// sets another.
    pub const SCALE: f64 = 2.0;

    pub fn layers(&self) -> usize {
        self.layers
    }

    /// The value training pulls `role` toward on this client.
    fn target(&self, role: Role) -> f32 {
        match role {
            Role::A => 1.0,
            Role::B => 1.0 + self.id as f32,
            Role::Head => -(self.id as f32),
            Role::LocalA | Role::LocalB => 0.5,
        }
    }
}

impl ClientTrainer for FakeTrainer {
    fn configure(&mut self, strategy: &Strategy) -> Result<()> {
        self.trainable = Role::ALL
            .into_iter()
            .filter(|r| strategy.trains(*r))
            .collect();
        Ok(())
    }

    fn set_trained_roles(&mut self, roles: &[Role]) -> Result<()> {
        self.trainable = roles.iter().copied().collect();
        Ok(())
    }

    fn low_rank_modules(&self) -> Vec<LowRankModule> {
        (0..self.layers)
            .map(|l| LowRankModule {
                name: format!("layer.{l}"),
                a: format!("layer.{l}.lora_A.weight"),
                b: format!("layer.{l}.lora_B.weight"),
                rank: self.rank,
                scale: self.scale,
            })
            .collect()
    }

    fn restart_factors(&mut self, seed: u64) -> Result<()> {
        let mut rng = SeededRng::new(seed);
        for l in 0..self.layers {
            let (a, b) = Self::factor_names(l);
            self.params
                .insert(a, vec![self.rank, 3], Self::draw_a(&mut rng, self.rank))?;
            self.params
                .insert(b, vec![4, self.rank], vec![0.0; 4 * self.rank])?;
        }
        Ok(())
    }

    fn roles(&self) -> BTreeMap<String, Role> {
        self.roles.clone()
    }

    fn num_train_examples(&self) -> usize {
        self.num_examples
    }

    fn params(&self, names: &[String]) -> Result<ParamSet> {
        names
            .iter()
            .map(|n| Ok((n.clone(), self.params.require(n)?.clone())))
            .collect::<Result<_>>()
    }

    fn set_params(&mut self, params: &ParamSet) -> Result<()> {
        for (name, t) in params.iter() {
            if is_base_delta(name) {
                self.deltas.insert_tensor(name.clone(), t.clone());
                continue;
            }
            if !self.roles.contains_key(name) {
                return Err(Error::param(name.clone(), "unknown to this client"));
            }
            self.params.insert_tensor(name.clone(), t.clone());
        }
        Ok(())
    }

    fn train(&mut self, round: usize) -> Result<TrainStats> {
        if self.faults.fail_rounds.contains(&round) {
            return Err(Error::Client {
                client: self.id,
                message: format!("simulated crash in round {round}"),
            });
        }
        let mut loss = 0.0;
        let mut count = 0;
        for (name, role) in &self.roles {
            if !self.trainable.contains(role) {
                continue;
            }
            let target = self.target(*role);
            let t = self.params.get_mut(name).expect("own parameter");
            for v in t.data_mut() {
                loss += f64::from((*v - target).powi(2));
                count += 1;
                *v += self.step * (target - *v);
            }
        }
        if self.faults.nan_rounds.contains(&round) {
            for (name, role) in &self.roles {
                if *role == Role::A {
                    self.params.get_mut(name).expect("own").data_mut()[0] = f32::NAN;
                }
            }
        }
        self.rounds_trained += 1;
        Ok(TrainStats {
            loss: if count == 0 {
                0.0
            } else {
                loss / f64::from(count)
            },
            steps: 1,
            examples_seen: self.num_examples,
        })
    }

    fn evaluate(&mut self) -> Result<EvalMetrics> {
        let mut sq = 0.0;
        let mut n = 0;
        for (name, role) in &self.roles {
            let target = self.target(*role);
            for v in self.params.require(name)?.data() {
                sq += f64::from((v - target).powi(2));
                n += 1;
            }
        }
        let loss = sq / f64::from(n.max(1));
        let accuracy = 1.0 / (1.0 + loss);
        Ok(EvalMetrics {
            loss,
            accuracy,
            macro_f1: accuracy,
            num_examples: self.num_examples / 4,
            extra: BTreeMap::new(),
        })
    }

    fn save_state(&self) -> Result<ParamSet> {
        let mut state = self.params.clone();
        state.insert_tensor(
            "rounds_trained",
            TensorData::new(vec![1], vec![self.rounds_trained as f32])?,
        );
        Ok(state)
    }

    fn load_state(&mut self, state: &ParamSet) -> Result<()> {
        let mut state = state.clone();
        let rounds = state
            .remove("rounds_trained")
            .ok_or_else(|| Error::param("rounds_trained", "missing from the fake's state"))?;
        self.params.check_same_layout(&state)?;
        self.params = state;
        self.rounds_trained = rounds.data()[0] as usize;
        Ok(())
    }
}
