//! What `fedsa plugins list` shows, as data: the built-in adapters and aggregators, then every
//! plugin found, and the libraries that were skipped with the reason.

use std::path::PathBuf;

use anyhow::Result;
use fedsa_aggregators::{PluginKind, PluginRegistry, SkippedPlugin};

/// One adapter or aggregator fedsa can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRow {
    /// `adapter` or `aggregator`.
    pub kind: String,
    pub name: String,
    /// The plugin ABI version; `None` for built-ins.
    pub abi_version: Option<u32>,
    /// The library file; `None` for built-ins.
    pub path: Option<PathBuf>,
}

/// Everything found with the plugin libraries `paths` (and `FEDSA_PLUGIN_PATH`).
pub struct PluginListing {
    pub rows: Vec<PluginRow>,
    pub skipped: Vec<SkippedPlugin>,
}

/// Discovers the plugins and lists them after the built-ins.
pub fn list_plugins(paths: &[PathBuf]) -> Result<PluginListing> {
    let registry = PluginRegistry::discover(paths)?;
    let mut rows: Vec<PluginRow> = fedsa_adapters::builtin_kinds()
        .iter()
        .map(|kind| PluginRow {
            kind: PluginKind::Adapter.to_string(),
            name: (*kind).to_string(),
            abi_version: None,
            path: None,
        })
        .collect();
    rows.extend(registry.list().into_iter().map(|info| PluginRow {
        kind: info.kind.to_string(),
        name: info.name,
        abi_version: (!info.builtin).then_some(info.abi_version),
        path: if info.builtin { None } else { info.path },
    }));
    Ok(PluginListing {
        rows,
        skipped: registry.skipped().to_vec(),
    })
}
