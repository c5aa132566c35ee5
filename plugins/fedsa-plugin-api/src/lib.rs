//! fedsa-plugin-api: the C ABI between fedsa and its dynamic plugins, with no dependencies.
//!
//! A plugin is a `cdylib` exporting one static, [`PluginDescriptor`], under the symbol
//! [`FEDSA_PLUGIN_SYMBOL`] (`fedsa_plugin_v1`). The descriptor starts with the ABI version and
//! its own size, which the host checks before anything else, then the plugin's kind and name and
//! the function tables: one for aggregators (create, aggregate one tensor, last error, save and
//! load state, destroy), one for adapters (the spec as text), and since ABI version 2 an
//! aggregator's optional module-level rule (all clients' A and B of one low-rank module in one
//! call). Each version only appends to the layout, so a host keeps loading version-1 plugins.
//! Only pointers to `f32`, `f64`, `u64` and bytes, lengths and UTF-8 text cross the boundary.
//!
//! Plugin authors write no `unsafe`: implement [`AggregatorPlugin`] (and, for a module-level
//! rule, set [`AggregatorPlugin::MODULE_RULE`] and implement
//! [`AggregatorPlugin::aggregate_module`]) and call [`export_aggregator!`], or call
//! [`export_adapter!`] with the spec text. Every entry point catches panics and hands errors
//! back as text. Build the plugin with unwinding panics (the default); under `panic = "abort"`
//! a panic cannot be caught and ends the host.
//!
//! ```
//! use fedsa_plugin_api::{AggregatorPlugin, Options, export_aggregator};
//!
//! struct Mean;
//!
//! impl AggregatorPlugin for Mean {
//!     fn new(config: &str) -> Result<Self, String> {
//!         Options::parse(config)?.finish(&[])?;
//!         Ok(Mean)
//!     }
//!     fn aggregate(&mut self, _round: u64, _tensor: &str, _global: &[f32],
//!                  clients: &[&[f32]], weights: &[f64], out: &mut [f32]) -> Result<(), String> {
//!         for (j, o) in out.iter_mut().enumerate() {
//!             *o = clients.iter().zip(weights).map(|(c, w)| w * f64::from(c[j])).sum::<f64>() as f32;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! export_aggregator!(Mean, "my_mean");
//! ```

pub mod abi;
mod adapter;
mod aggregator;
mod guard;
mod macros;
mod mean;
mod options;
mod state;

pub use abi::{
    DESCRIPTOR_SIZE, DESCRIPTOR_SIZE_V1, FEDSA_PLUGIN_ABI_OLDEST, FEDSA_PLUGIN_ABI_VERSION,
    FEDSA_PLUGIN_SYMBOL, KIND_ADAPTER, KIND_AGGREGATOR, MODULE_KEPT, MODULE_REPLACED, ModuleArgs,
    PluginDescriptor, PluginDescriptorV1, STATUS_ERROR, STATUS_OK, STATUS_PANIC, StrRef,
    descriptor_size,
};
pub use adapter::AdapterSpecSource;
pub use aggregator::{AggregatorPlugin, ClientFactors, ModuleFactors, ModuleOutcome};
pub use mean::weighted_mean;
pub use options::{OPTIONS_FIELD, OptionValue, Options};
pub use state::{decode_state, encode_state};

#[cfg(test)]
mod tests;
