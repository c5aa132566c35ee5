//! The host side of the plugin boundary: loading and checking libraries, and wrapping an
//! aggregator plugin as a [`fedsa_core::Aggregator`]. All of the crate's `unsafe` lives here.

mod aggregator;
mod ffi;
mod loader;

pub use aggregator::{PLUGIN_STATE_TENSOR, PluginAggregator};
pub use loader::LoadedPlugin;
