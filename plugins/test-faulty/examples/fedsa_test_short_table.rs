//! A library whose descriptor claims to be smaller than this ABI's: the host must refuse it
//! rather than read function pointers past its end.

use fedsa_plugin_api::PluginDescriptor;

/// The right version, but a table size that covers only the header.
#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static fedsa_plugin_v1: PluginDescriptor = PluginDescriptor {
    table_size: 8,
    ..PluginDescriptor::empty(fedsa_plugin_api::KIND_AGGREGATOR, "test_short_table")
};
