//! What `fedsa plugins list` shows, as data: the built-in adapters and aggregators, then every
//! plugin found (an adapter with the plan its program compiles to), and the libraries that were
//! skipped with the reason.

use std::path::PathBuf;

use anyhow::Result;
use fedsa_adapters::AdapterSpec;
use fedsa_aggregators::{PluginKind, PluginRegistry, SkippedPlugin};
use fedsa_core::config::AdapterConfig;

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
    /// For an adapter, how its program runs (`fused low-rank`, `op list (N ops)`, or why the
    /// spec is invalid); `None` for aggregators.
    pub plan: Option<String>,
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
            plan: Some(builtin_plan(kind)),
        })
        .collect();
    rows.extend(registry.list().into_iter().map(|info| {
        let plan = (info.kind == PluginKind::Adapter).then(|| {
            registry.adapter_spec(&info.name).map_or_else(
                || "invalid: no spec".to_string(),
                |text| match AdapterSpec::from_text(&text, &info.name) {
                    Ok(spec) => spec.plan_description(),
                    Err(e) => format!("invalid: {e}"),
                },
            )
        });
        PluginRow {
            kind: info.kind.to_string(),
            name: info.name,
            abi_version: (!info.builtin).then_some(info.abi_version),
            path: if info.builtin { None } else { info.path },
            plan,
        }
    }));
    Ok(PluginListing {
        rows,
        skipped: registry.skipped().to_vec(),
    })
}

/// The plan a built-in adapter's program compiles to (at the default settings: the plan does
/// not depend on rank or scale).
fn builtin_plan(kind: &str) -> String {
    match AdapterSpec::builtin(kind, &AdapterConfig::default()) {
        Ok(spec) => spec.plan_description(),
        Err(e) => format!("invalid: {e}"),
    }
}
