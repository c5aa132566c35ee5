//! A well-formed library that is not a fedsa plugin: it exports a function, but no
//! `fedsa_plugin_v1` descriptor.

/// Something a library might export.
#[unsafe(no_mangle)]
pub extern "C" fn fedsa_test_unrelated() -> u32 {
    7
}
