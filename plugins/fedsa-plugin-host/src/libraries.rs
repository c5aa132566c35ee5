//! The plugin libraries of a run: those named in the config's `plugins = [..]` and those found
//! in the folders of `FEDSA_PLUGIN_PATH`. A plugin named in the config must load; a library
//! found by searching that fails its checks is skipped and recorded, so one stray file does not
//! stop every run. Names the caller reserves (its built-ins) cannot be taken by a plugin.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use fedsa_core::{Error, Result};

use crate::kind::PluginKind;
use crate::loader::LoadedPlugin;

/// The environment variable holding plugin folders, separated like `PATH` (`:` on Unix).
pub const PLUGIN_PATH_VAR: &str = "FEDSA_PLUGIN_PATH";

/// File extensions searched for in plugin folders.
pub const PLUGIN_EXTENSIONS: [&str; 3] = ["so", "dylib", "dll"];

/// A library found in a plugin folder that was not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedPlugin {
    pub path: PathBuf,
    pub reason: String,
}

/// A name a plugin may not take: a built-in of the same kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved {
    pub kind: PluginKind,
    pub name: &'static str,
}

/// The loaded plugin libraries, by name.
#[derive(Debug, Clone, Default)]
pub struct PluginLibraries {
    plugins: Vec<LoadedPlugin>,
    skipped: Vec<SkippedPlugin>,
    reserved: Vec<Reserved>,
}

impl PluginLibraries {
    /// No libraries, no reserved names.
    pub fn new() -> Self {
        Self::default()
    }

    /// No libraries yet; `reserved` names are refused to plugins of their kind.
    pub fn reserving(reserved: impl IntoIterator<Item = Reserved>) -> Self {
        Self {
            reserved: reserved.into_iter().collect(),
            ..Self::default()
        }
    }

    /// Loads every path of the config's `plugins = [..]` (each must load), then every library
    /// in the folders of `FEDSA_PLUGIN_PATH`.
    pub fn discover(self, config_paths: &[PathBuf]) -> Result<Self> {
        let search = std::env::var_os(PLUGIN_PATH_VAR);
        self.discover_with(config_paths, search.as_deref())
    }

    /// [`PluginLibraries::discover`] with the search path given instead of read from the
    /// environment.
    pub fn discover_with(
        self,
        config_paths: &[PathBuf],
        search_path: Option<&OsStr>,
    ) -> Result<Self> {
        let mut registry = self;
        for path in config_paths {
            registry.load(path)?;
        }
        for folder in search_path.into_iter().flat_map(std::env::split_paths) {
            if folder.as_os_str().is_empty() {
                continue;
            }
            for path in libraries_in(&folder, &mut registry.skipped) {
                if let Err(e) = registry.load(&path) {
                    registry.skipped.push(SkippedPlugin {
                        path,
                        reason: e.to_string(),
                    });
                }
            }
        }
        Ok(registry)
    }

    /// Loads the plugin at `path` and registers it. Loading the same file twice is a no-op;
    /// a name already taken by a built-in or another file is refused.
    pub fn load(&mut self, path: &Path) -> Result<&LoadedPlugin> {
        if let Some(i) = self.position_of_file(path) {
            return Ok(&self.plugins[i]);
        }
        let plugin = LoadedPlugin::load(path)?;
        self.add(plugin)
    }

    /// Registers an already loaded plugin, refusing a name clash.
    pub fn add(&mut self, plugin: LoadedPlugin) -> Result<&LoadedPlugin> {
        let clash = |message: String| Error::Plugin {
            path: plugin.path().to_path_buf(),
            message,
        };
        if self
            .reserved
            .iter()
            .any(|r| r.kind == plugin.kind() && r.name == plugin.name())
        {
            return Err(clash(format!(
                "`{}` is the name of a built-in {}; give the plugin another name",
                plugin.name(),
                plugin.kind()
            )));
        }
        if let Some(other) = self.get(plugin.name()) {
            return Err(clash(format!(
                "the name `{}` is already taken by {}",
                plugin.name(),
                other.path().display()
            )));
        }
        self.plugins.push(plugin);
        Ok(self.plugins.last().expect("just pushed"))
    }

    /// The plugin registered as `name`.
    pub fn get(&self, name: &str) -> Option<&LoadedPlugin> {
        self.plugins.iter().find(|p| p.name() == name)
    }

    /// Loaded plugins, in load order.
    pub fn plugins(&self) -> &[LoadedPlugin] {
        &self.plugins
    }

    /// Libraries found by searching that did not load, with the reason.
    pub fn skipped(&self) -> &[SkippedPlugin] {
        &self.skipped
    }

    /// Names of the loaded plugins of `kind`.
    pub fn names(&self, kind: PluginKind) -> Vec<&str> {
        self.plugins
            .iter()
            .filter(|p| p.kind() == kind)
            .map(LoadedPlugin::name)
            .collect()
    }

    /// The spec text of adapter plugin `name` (for fedsa-adapters to parse).
    pub fn adapter_spec(&self, name: &str) -> Option<String> {
        self.get(name)
            .and_then(LoadedPlugin::adapter_spec)
            .map(str::to_string)
    }

    fn position_of_file(&self, path: &Path) -> Option<usize> {
        let wanted = std::fs::canonicalize(path).ok()?;
        self.plugins
            .iter()
            .position(|p| std::fs::canonicalize(p.path()).ok().as_ref() == Some(&wanted))
    }
}

/// The plugin-looking files in `folder`, sorted by name; an unreadable folder is recorded.
fn libraries_in(folder: &Path, skipped: &mut Vec<SkippedPlugin>) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) => {
            skipped.push(SkippedPlugin {
                path: folder.to_path_buf(),
                reason: format!("{PLUGIN_PATH_VAR} folder could not be read: {e}"),
            });
            return Vec::new();
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(OsStr::to_str)
                    .is_some_and(|ext| PLUGIN_EXTENSIONS.contains(&ext))
        })
        .collect();
    paths.sort();
    paths
}
