//! Turning `strategy.aggregator` and its options into an aggregator: built-ins first, then
//! aggregator plugins by name. An unknown name lists what exists.

use std::fmt::Write as _;

use fedsa_core::{Aggregator, Error, Result};

use crate::builtin::{self, BUILTIN_AGGREGATORS};
use crate::plugin::PluginAggregator;
use crate::registry::PluginRegistry;
use fedsa_plugin_host::PluginKind;

/// The aggregator `name`, configured by `options_toml` (the TOML text of
/// `[strategy.aggregator_options]`; plugins receive it verbatim as their config string).
pub fn build_aggregator(
    name: &str,
    options_toml: &str,
    registry: &PluginRegistry,
) -> Result<Box<dyn Aggregator>> {
    if let Some(built) = builtin::build(name, options_toml) {
        return built;
    }
    match registry.get(name) {
        Some(plugin) if plugin.kind() == PluginKind::Aggregator => Ok(Box::new(
            PluginAggregator::create(plugin.clone(), options_toml)?,
        )),
        Some(plugin) => Err(Error::run_config(
            "strategy.aggregator",
            format!(
                "`{name}` is an {} plugin ({}), not an aggregator",
                plugin.kind(),
                plugin.path().display()
            ),
        )),
        None => {
            let plugins = registry.names(PluginKind::Aggregator);
            Err(Error::run_config(
                "strategy.aggregator",
                format!(
                    "unknown aggregator `{name}`; built-in: {}; plugins: {}{}",
                    BUILTIN_AGGREGATORS.join(", "),
                    if plugins.is_empty() {
                        "none loaded (list libraries in `plugins = [..]` or folders in FEDSA_PLUGIN_PATH)".to_string()
                    } else {
                        plugins.join(", ")
                    },
                    skipped_text(registry)
                ),
            ))
        }
    }
}

/// The libraries that were found but skipped, for an error that would otherwise hide them.
fn skipped_text(registry: &PluginRegistry) -> String {
    let mut text = String::new();
    for s in registry.skipped() {
        let _ = write!(text, "; skipped {}: {}", s.path.display(), s.reason);
    }
    text
}
