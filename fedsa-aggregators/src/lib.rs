//! fedsa-aggregators: how the server combines the clients' shared tensors.
//!
//! Built-in rules — `fedavg` (example-weighted mean), `median` and `trimmed_mean`
//! (coordinate-wise, robust, unweighted) and `fedadam` (a server optimiser with state) — and
//! aggregator plugins loaded at run time from C-ABI libraries (see `fedsa-plugin-api`) all sit
//! behind [`fedsa_core::Aggregator`]. [`PluginRegistry`] finds and checks plugins (adapter
//! plugins too, whose spec text it hands on); [`build_aggregator`] turns a config's
//! `strategy.aggregator` and its options into an aggregator.

mod builtin;
mod factory;
mod options;
mod plugin;
mod registry;

pub use builtin::{BUILTIN_AGGREGATORS, FedAdam, FedAdamSettings, Median, TrimmedMean};
pub use factory::build_aggregator;
pub use fedsa_plugin_api::FEDSA_PLUGIN_ABI_VERSION;
pub use options::OPTIONS_FIELD;
pub use plugin::{LoadedPlugin, PLUGIN_STATE_TENSOR, PluginAggregator};
pub use registry::{
    PLUGIN_EXTENSIONS, PLUGIN_PATH_VAR, PluginInfo, PluginKind, PluginRegistry, SkippedPlugin,
};
