//! A library that declares ABI version 2 but a table of the version-1 size: the host must
//! refuse it rather than read the version-2 entry past its end.

use fedsa_plugin_api::{DESCRIPTOR_SIZE_V1, PluginDescriptor};

/// Version 2 (this crate's), with the size a version-1 table has.
#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static fedsa_plugin_v1: PluginDescriptor = PluginDescriptor {
    abi_version: 2,
    table_size: DESCRIPTOR_SIZE_V1,
    ..PluginDescriptor::empty(fedsa_plugin_api::KIND_AGGREGATOR, "test_v2_short_table")
};
