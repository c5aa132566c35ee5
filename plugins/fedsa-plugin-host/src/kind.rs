//! What a plugin is, in the terms both the loader and the libraries' listing use.

use std::fmt;
use std::path::PathBuf;

/// What a plugin provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PluginKind {
    Aggregator,
    Adapter,
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginKind::Aggregator => "aggregator",
            PluginKind::Adapter => "adapter",
        })
    }
}

/// One row of `fedsa plugins list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub kind: PluginKind,
    pub name: String,
    /// The plugin's ABI version (for built-ins, the one this fedsa loads).
    pub abi_version: u32,
    /// The library file; `None` for built-ins.
    pub path: Option<PathBuf>,
    pub builtin: bool,
}
