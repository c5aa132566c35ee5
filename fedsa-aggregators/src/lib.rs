//! fedsa-aggregators: how the server combines the clients' shared tensors.
//!
//! Built-in rules — `fedavg` (example-weighted mean), `median` and `trimmed_mean`
//! (coordinate-wise, robust, unweighted) and `fedadam` (a server optimiser with state) — and
//! aggregator plugins loaded at run time from C-ABI libraries (see `fedsa-plugin-api`) all sit
//! behind [`fedsa_core::Aggregator`]. [`PluginRegistry`] is a run's plugin libraries (found and
//! checked by fedsa-plugin-host, which hosts adapter plugins too) with the built-in aggregators'
//! names reserved; [`build_aggregator`] turns a config's `strategy.aggregator` and its options
//! into an aggregator, and [`with_privacy`] wraps it in DP-FedAvg when the config asks for
//! client-level differential privacy.

mod builtin;
mod factory;
pub mod methods;
mod options;
mod plugin;
mod privacy;
mod registry;

pub use builtin::{BUILTIN_AGGREGATORS, FedAdam, FedAdamSettings, Median, TrimmedMean};
pub use factory::build_aggregator;
pub use fedsa_plugin_api::FEDSA_PLUGIN_ABI_VERSION;
pub use fedsa_plugin_host::{
    LoadedPlugin, PLUGIN_EXTENSIONS, PLUGIN_PATH_VAR, PluginInfo, PluginKind, SkippedPlugin,
};
pub use methods::module_rule;
pub use options::OPTIONS_FIELD;
pub use plugin::{PLUGIN_STATE_TENSOR, PluginAggregator};
pub use privacy::{
    DpFedAvg, DpSettings, RdpAccountant, compute_rdp, default_orders, epsilon_from_rdp,
    with_privacy,
};
pub use registry::PluginRegistry;
