//! fedsa-core: the stable contract of fedsa and its federation loop.
//!
//! Everything here is plain data and traits, with no ML backend, so a plugin or a remote client
//! can depend on it cheaply. The paper's methods (FedSA, FedIT, FFA-LoRA, local) are rows of
//! [`Strategy`]; the loop is [`Federation`]; the ML side plugs in through [`ClientTrainer`].

mod aggregator;
mod batch;
mod clients;
pub mod config;
mod config_source;
mod error;
mod event;
mod federation;
mod gguf_vocab;
pub mod io;
mod metrics;
mod module_rule;
mod params;
mod privacy;
mod rng;
mod role;
mod sequence;
mod strategy;
mod task;
pub mod testing;
mod trainer;

pub use aggregator::{Aggregator, ClientFailure, ClientUpdate, WeightedMean, weighted_mean};
pub use batch::{Batch, EncodedExample};
pub use clients::{ClientsConfig, RANK_HETEROGENEOUS_STRATEGIES};
pub use config::Config;
pub use config_source::{ConfigSource, UNNAMED_CONFIG};
pub use error::{Error, Result, chain_text};
pub use event::{Event, EventSink, NoEvents};
pub use federation::{Federation, FederationSettings, ServerState};
pub use gguf_vocab::GgufVocab;
pub use metrics::{
    ClientRoundRecord, MeanFigure, MeanFigures, PrivacySpent, RoundRecord, RunSummary, mean,
    weighted_mean_of,
};
pub use module_rule::{
    BASE_DELTA_SUFFIX, LowRankModule, ModuleRule, ModuleUpdate, base_delta_name, example_weights,
    is_base_delta, slice_factor,
};
pub use params::{ParamSet, TensorData};
pub use privacy::{PRIVATE_AGGREGATORS, PrivacyConfig};
pub use rng::SeededRng;
pub use role::Role;
pub use sequence::{EncodedSequence, SequenceBatch};
pub use strategy::{
    BUILTIN_STRATEGIES, BUILTINS, BuiltinStrategy, CUSTOM_STRATEGY, RolePolicy, RoundPlan,
    STRATEGY_NAMES, Schedule, ServerRule, Strategy,
};
pub use task::{TaskConfig, TaskKind};
pub use trainer::{ClientTrainer, EvalMetrics, REMOTE_STATE_ROUND, TrainStats};
