//! Which aggregators exist: the built-ins plus the aggregator plugins among a run's plugin
//! libraries (found and checked by fedsa-plugin-host, where adapter plugins are hosted too).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use fedsa_core::Result;
use fedsa_plugin_api::FEDSA_PLUGIN_ABI_VERSION;
use fedsa_plugin_host::{
    LoadedPlugin, PluginInfo, PluginKind, PluginLibraries, Reserved, SkippedPlugin,
};

use crate::builtin::BUILTIN_AGGREGATORS;

/// A run's plugin libraries, with the built-in aggregators' names reserved.
#[derive(Debug, Clone)]
pub struct PluginRegistry {
    libraries: PluginLibraries,
}

impl Default for PluginRegistry {
    fn default() -> Self {
        Self::new()
    }
}

fn reserved() -> impl Iterator<Item = Reserved> {
    BUILTIN_AGGREGATORS.iter().map(|name| Reserved {
        kind: PluginKind::Aggregator,
        name,
    })
}

impl PluginRegistry {
    /// A registry with no plugins (the built-ins are always available).
    pub fn new() -> Self {
        Self {
            libraries: PluginLibraries::reserving(reserved()),
        }
    }

    /// Loads every path of the config's `plugins = [..]` (each must load), then every library
    /// in the folders of `FEDSA_PLUGIN_PATH`.
    pub fn discover(config_paths: &[PathBuf]) -> Result<Self> {
        Ok(Self {
            libraries: PluginLibraries::reserving(reserved()).discover(config_paths)?,
        })
    }

    /// [`PluginRegistry::discover`] with the search path given instead of read from the
    /// environment.
    pub fn discover_with(config_paths: &[PathBuf], search_path: Option<&OsStr>) -> Result<Self> {
        Ok(Self {
            libraries: PluginLibraries::reserving(reserved())
                .discover_with(config_paths, search_path)?,
        })
    }

    /// Loads the plugin at `path` and registers it (see [`PluginLibraries::load`]).
    pub fn load(&mut self, path: &Path) -> Result<&LoadedPlugin> {
        self.libraries.load(path)
    }

    /// Registers an already loaded plugin, refusing a name clash.
    pub fn add(&mut self, plugin: LoadedPlugin) -> Result<&LoadedPlugin> {
        self.libraries.add(plugin)
    }

    /// The plugin libraries themselves (adapter plugins included).
    pub fn libraries(&self) -> &PluginLibraries {
        &self.libraries
    }

    /// The plugin registered as `name`.
    pub fn get(&self, name: &str) -> Option<&LoadedPlugin> {
        self.libraries.get(name)
    }

    /// Loaded plugins, in load order.
    pub fn plugins(&self) -> &[LoadedPlugin] {
        self.libraries.plugins()
    }

    /// Libraries found by searching that did not load, with the reason.
    pub fn skipped(&self) -> &[SkippedPlugin] {
        self.libraries.skipped()
    }

    /// Built-in aggregators, then loaded plugins.
    pub fn list(&self) -> Vec<PluginInfo> {
        BUILTIN_AGGREGATORS
            .iter()
            .map(|name| PluginInfo {
                kind: PluginKind::Aggregator,
                name: (*name).to_string(),
                abi_version: FEDSA_PLUGIN_ABI_VERSION,
                path: None,
                builtin: true,
            })
            .chain(self.plugins().iter().map(LoadedPlugin::info))
            .collect()
    }

    /// Names of the loaded plugins of `kind`.
    pub fn names(&self, kind: PluginKind) -> Vec<&str> {
        self.libraries.names(kind)
    }

    /// The spec text of adapter plugin `name`.
    pub fn adapter_spec(&self, name: &str) -> Option<String> {
        self.libraries.adapter_spec(name)
    }
}
