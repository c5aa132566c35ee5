//! The smallest adapter plugin: a fixed spec text, for testing the host's adapter path (the
//! host only carries the text; fedsa-adapters parses it).

#![forbid(unsafe_code)]

fedsa_plugin_api::export_adapter!("test_adapter", spec());

fn spec() -> String {
    format!(
        "# test adapter\nname = \"test_adapter\"\nrank_multiplier = {}\n",
        2
    )
}
