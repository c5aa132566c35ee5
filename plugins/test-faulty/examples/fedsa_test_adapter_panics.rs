//! An adapter plugin whose spec function panics: the host must refuse it at load time with the
//! panic's message, not crash.

#![forbid(unsafe_code)]

fedsa_plugin_api::export_adapter!("test_adapter_panics", spec());

fn spec() -> &'static str {
    panic!("spec generator exploded")
}
