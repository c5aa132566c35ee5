//! Driving an aggregator plugin as a [`fedsa_core::Aggregator`] (the libraries are loaded and
//! checked by fedsa-plugin-host). All of the crate's `unsafe` lives here.

mod aggregator;

pub use aggregator::{PLUGIN_STATE_TENSOR, PluginAggregator};
