//! A library whose descriptor claims a future ABI version (one past this crate's): the host
//! must refuse it before calling anything in it.

use fedsa_plugin_api::{FEDSA_PLUGIN_ABI_VERSION, PluginDescriptor};

/// Never called: the host stops at the version.
pub struct Unused;

impl fedsa_plugin_api::AggregatorPlugin for Unused {
    fn new(_config: &str) -> Result<Self, String> {
        unreachable!("a host must not create an aggregator from a library with another ABI")
    }

    fn aggregate(
        &mut self,
        _round: u64,
        _tensor: &str,
        _global: &[f32],
        _clients: &[&[f32]],
        _weights: &[f64],
        _out: &mut [f32],
    ) -> Result<(), String> {
        unreachable!()
    }
}

/// The descriptor, with the version bumped.
#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static fedsa_plugin_v1: PluginDescriptor = PluginDescriptor {
    abi_version: FEDSA_PLUGIN_ABI_VERSION + 1,
    ..PluginDescriptor::aggregator::<Unused>("test_wrong_abi")
};
