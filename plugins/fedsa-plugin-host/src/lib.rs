//! fedsa-plugin-host: the host side of fedsa's plugin boundary, for every kind of plugin.
//! [`LoadedPlugin`] opens a library and checks it (ABI version, table size, entry points)
//! before any call; [`PluginLibraries`] finds a run's libraries by name. The crates that drive
//! a kind — fedsa-aggregators for aggregators, the engine for adapter specs — build on it.
//! Libraries are never unloaded.

mod ffi;
mod kind;
mod libraries;
mod loader;

pub use ffi::{read_grown, read_text};
pub use kind::{PluginInfo, PluginKind};
pub use libraries::{PLUGIN_EXTENSIONS, PLUGIN_PATH_VAR, PluginLibraries, Reserved, SkippedPlugin};
pub use loader::{LoadedPlugin, refuse};
