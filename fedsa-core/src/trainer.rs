//! The one trait the federation needs from the ML side. Implemented with candle in
//! `fedsa-adapters`; in core tests by a small deterministic fake (see [`crate::testing`]).

use std::collections::BTreeMap;

use crate::{Error, LowRankModule, ParamSet, Result, Role, Strategy};

/// The one tensor a server checkpoint holds for a client that trains on a remote node (a
/// Flower SuperNode): the round of the node's own state to go back to on resume. The state
/// itself stays on the node.
pub const REMOTE_STATE_ROUND: &str = "__remote.round";

/// What one round of local training did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainStats {
    /// Mean training loss over the round's local steps.
    pub loss: f64,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Examples seen (with repetition across epochs).
    pub examples_seen: usize,
}

/// Evaluation of a client's own model on its own test split.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvalMetrics {
    pub loss: f64,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub num_examples: usize,
    /// Task-specific extras (e.g. exact match for generation), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, f64>,
}

/// A simulated client: its data, its model state, its local optimizer.
pub trait ClientTrainer: Send {
    /// Called once before the first round: which roles train (and which are frozen) follows
    /// from the strategy. A trainer must not change a parameter whose role it was told not to
    /// train.
    fn configure(&mut self, strategy: &Strategy) -> Result<()>;

    /// Which roles train from now on, for a strategy whose plan changes from round to round
    /// (RoLoRA); called before the round's training. A trainer that cannot change them says so.
    fn set_trained_roles(&mut self, roles: &[Role]) -> Result<()> {
        let _ = roles;
        Err(Error::Client {
            client: 0,
            message: "this trainer cannot change which roles train between rounds".into(),
        })
    }

    /// The adapted modules whose update is the plain low-rank product `s·B·A`, for server
    /// rules that need the factors together; empty when the adapter is not of that form.
    fn low_rank_modules(&self) -> Vec<LowRankModule> {
        Vec::new()
    }

    /// Re-initialises every low-rank module's factors as at the start (A drawn afresh from
    /// `seed`, B zero, so the product is zero) and forgets their optimizer moments: FLoRA's
    /// clients start over once the server has merged what they learned into the base.
    fn restart_factors(&mut self, seed: u64) -> Result<()> {
        let _ = seed;
        Err(Error::Client {
            client: 0,
            message: "this trainer cannot re-initialise its adapter's factors".into(),
        })
    }

    /// The role of every parameter that could be exchanged, by name.
    fn roles(&self) -> BTreeMap<String, Role>;

    /// Number of local training examples: the client's weight in a weighted mean.
    fn num_train_examples(&self) -> usize;

    /// Current values of the named parameters.
    fn params(&self, names: &[String]) -> Result<ParamSet>;

    /// Overwrites parameters with values received from the server. Names ending in
    /// [`crate::BASE_DELTA_SUFFIX`] are corrections to a module's frozen weight (FedEx-LoRA).
    fn set_params(&mut self, params: &ParamSet) -> Result<()>;

    /// Starts a round of local training where it runs elsewhere (a remote node), so that every
    /// sampled client trains at once; [`ClientTrainer::train`] then waits for it. `returns`
    /// names the tensors the server will read with [`ClientTrainer::params`] afterwards. A
    /// trainer that trains in place does nothing here.
    fn begin_train(&mut self, round: usize, returns: &[String]) -> Result<()> {
        let _ = (round, returns);
        Ok(())
    }

    /// One round of local training (or, after [`ClientTrainer::begin_train`], its result).
    fn train(&mut self, round: usize) -> Result<TrainStats>;

    /// Starts an evaluation where it runs elsewhere, as [`ClientTrainer::begin_train`] does.
    fn begin_evaluate(&mut self, round: usize) -> Result<()> {
        let _ = round;
        Ok(())
    }

    /// Evaluates the client's current model on its own test split.
    fn evaluate(&mut self) -> Result<EvalMetrics>;

    /// Everything private to resume this client exactly: parameters, optimizer moments, RNG.
    fn save_state(&self) -> Result<ParamSet>;

    /// Restores what [`ClientTrainer::save_state`] returned.
    fn load_state(&mut self, state: &ParamSet) -> Result<()>;
}
