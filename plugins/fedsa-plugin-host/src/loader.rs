//! Loading a plugin library and checking it before trusting it. The order matters: the file
//! exists, it is a loadable library, it exports `fedsa_plugin_v1`, the ABI version is one this
//! fedsa knows (1 or 2) and the table is at least as large as that version's, and only then are
//! kind, name and entry points read. A version-1 table is read through its own, shorter layout
//! and carries no module-level rule.
//! Each refusal is its own message naming the path and what was found against what was
//! expected. Libraries are never unloaded: unloading a Rust cdylib can crash the process at
//! exit (thread-local destructors; rust-lang/rust#52138, #59629).

use std::path::{Path, PathBuf};

use fedsa_core::{Error, Result};
use fedsa_plugin_api::{
    FEDSA_PLUGIN_ABI_OLDEST, FEDSA_PLUGIN_ABI_VERSION, FEDSA_PLUGIN_SYMBOL, KIND_ADAPTER,
    KIND_AGGREGATOR, PluginDescriptor, PluginDescriptorV1, STATUS_OK, descriptor_size,
};
use libloading::Library;

use crate::ffi::read_grown;
use crate::kind::{PluginInfo, PluginKind};

/// Longest accepted plugin name.
const MAX_NAME_LEN: usize = 64;

/// A plugin library that passed every check. Cheap to clone; the library stays loaded for the
/// life of the process.
#[derive(Debug, Clone)]
pub struct LoadedPlugin {
    path: PathBuf,
    name: String,
    kind: PluginKind,
    /// The plugin's table in this fedsa's layout (a version-1 table with its later entries
    /// empty). Its pointers refer to the library, which stays loaded.
    descriptor: PluginDescriptor,
    /// An adapter plugin's spec, read once at load time.
    spec: Option<String>,
}

/// A refusal of the plugin at `path`.
pub fn refuse(path: &Path, message: impl Into<String>) -> Error {
    Error::Plugin {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

impl LoadedPlugin {
    /// Loads and checks the plugin library at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let descriptor = open_descriptor(path)?;
        let kind = match descriptor.kind {
            KIND_AGGREGATOR => PluginKind::Aggregator,
            KIND_ADAPTER => PluginKind::Adapter,
            other => {
                return Err(refuse(
                    path,
                    format!(
                        "unknown plugin kind {other} (this fedsa knows {KIND_AGGREGATOR} = aggregator, {KIND_ADAPTER} = adapter)"
                    ),
                ));
            }
        };
        let name = read_name(path, &descriptor)?;
        check_entry_points(path, &name, kind, &descriptor)?;
        let mut plugin = Self {
            path: path.to_path_buf(),
            name,
            kind,
            descriptor,
            spec: None,
        };
        if kind == PluginKind::Adapter {
            plugin.spec = Some(plugin.read_spec()?);
        }
        Ok(plugin)
    }

    /// The name configs use for it.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> PluginKind {
        self.kind
    }

    /// The library file, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ABI version the plugin was built for (one this fedsa knows, or it would not load).
    pub fn abi_version(&self) -> u32 {
        self.descriptor.abi_version
    }

    /// The adapter spec text of an adapter plugin.
    pub fn adapter_spec(&self) -> Option<&str> {
        self.spec.as_deref()
    }

    /// How `fedsa plugins list` shows it.
    pub fn info(&self) -> PluginInfo {
        PluginInfo {
            kind: self.kind,
            name: self.name.clone(),
            abi_version: self.abi_version(),
            path: Some(self.path.clone()),
            builtin: false,
        }
    }

    /// The checked function table, for the crate that drives this kind of plugin. Entries the
    /// plugin's ABI version does not have are `None`.
    pub fn descriptor(&self) -> &PluginDescriptor {
        &self.descriptor
    }

    fn read_spec(&self) -> Result<String> {
        let spec_text = self.descriptor.adapter.spec_text.expect("checked at load");
        let mut status = STATUS_OK;
        let bytes = read_grown(|buf, cap| {
            let mut full = 0usize;
            // SAFETY: `buf` is valid for `cap` bytes and `full` for one write, as `SpecTextFn`
            // requires; the library is loaded forever.
            status = unsafe { spec_text(buf, cap, &raw mut full) };
            full
        })
        .map_err(|e| refuse(&self.path, format!("adapter spec too large to read: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| refuse(&self.path, format!("adapter spec is not UTF-8: {e}")))?;
        if status == STATUS_OK {
            Ok(text)
        } else {
            Err(refuse(
                &self.path,
                format!("adapter `{}` could not produce its spec: {text}", self.name),
            ))
        }
    }
}

/// The versions this fedsa loads, for messages.
fn known_versions() -> String {
    if FEDSA_PLUGIN_ABI_OLDEST == FEDSA_PLUGIN_ABI_VERSION {
        format!("version {FEDSA_PLUGIN_ABI_VERSION}")
    } else {
        format!("versions {FEDSA_PLUGIN_ABI_OLDEST} to {FEDSA_PLUGIN_ABI_VERSION}")
    }
}

/// Checks a table's declared version and size; returns the refusal text.
pub(crate) fn check_header(abi_version: u32, table_size: u32) -> std::result::Result<(), String> {
    let known = (FEDSA_PLUGIN_ABI_OLDEST..=FEDSA_PLUGIN_ABI_VERSION).contains(&abi_version);
    let Some(needed) = descriptor_size(abi_version).filter(|_| known) else {
        let advice = if abi_version > FEDSA_PLUGIN_ABI_VERSION {
            "the plugin is newer than this fedsa: update fedsa"
        } else {
            "the plugin is older than this fedsa: rebuild it against this fedsa-plugin-api"
        };
        return Err(format!(
            "built for plugin ABI version {abi_version}, this fedsa loads {} ({advice})",
            known_versions()
        ));
    };
    if table_size < needed {
        return Err(format!(
            "its plugin table is {table_size} bytes, ABI version {abi_version} needs at least {needed}: rebuild it against this fedsa-plugin-api"
        ));
    }
    Ok(())
}

/// Opens the library and returns its descriptor, in this fedsa's layout, once version and size
/// are checked.
fn open_descriptor(path: &Path) -> Result<PluginDescriptor> {
    if !path.exists() {
        return Err(refuse(path, "no such file"));
    }
    if !path.is_file() {
        return Err(refuse(
            path,
            "not a file (a plugin is a .so, .dylib or .dll library)",
        ));
    }
    // A bare file name would make the loader search system folders instead of this one.
    let absolute = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: loading runs the library's initialisers. Loading a plugin means trusting it; the
    // user named this file in the config or in FEDSA_PLUGIN_PATH.
    let library = unsafe { Library::new(&absolute) }.map_err(|e| {
        refuse(
            path,
            format!("not a loadable library (is it a plugin built for this platform?): {e}"),
        )
    })?;
    // Never unloaded, even when refused below (see the module comment).
    let library: &'static Library = Box::leak(Box::new(library));
    // SAFETY: the symbol is read as the address of a static; nothing is called, and the type
    // is only trusted after the checks below.
    let symbol = unsafe { library.get::<*const PluginDescriptor>(FEDSA_PLUGIN_SYMBOL) }
        .map_err(|e| {
            refuse(
                path,
                format!(
                    "no `{FEDSA_PLUGIN_SYMBOL}` symbol, so not a fedsa plugin of ABI {} (export one with fedsa_plugin_api::export_aggregator! or export_adapter!): {e}",
                    known_versions()
                ),
            )
        })?;
    let ptr: *const PluginDescriptor = *symbol;
    if ptr.is_null() {
        return Err(refuse(path, format!("`{FEDSA_PLUGIN_SYMBOL}` is null")));
    }
    // SAFETY: `ptr` is the address of the exported static. Every ABI version starts with two
    // u32 fields, version then size, so reading them is valid whatever else the table holds;
    // `addr_of!` reads them without asserting that the rest of the struct is there.
    let (abi_version, table_size) = unsafe {
        (
            std::ptr::addr_of!((*ptr).abi_version).read_unaligned(),
            std::ptr::addr_of!((*ptr).table_size).read_unaligned(),
        )
    };
    check_header(abi_version, table_size).map_err(|message| refuse(path, message))?;
    if abi_version == 1 {
        // SAFETY: the plugin declared version 1 and a table of at least the version-1 size, so
        // the static is a whole `PluginDescriptorV1` (a prefix of the current layout), immutable
        // and alive forever because the library is never unloaded. Only that much is read.
        let v1 = unsafe { ptr.cast::<PluginDescriptorV1>().read_unaligned() };
        return Ok(PluginDescriptor::from_v1(v1));
    }
    // SAFETY: the plugin declared this crate's version and at least its table size, so the
    // static is a whole `PluginDescriptor`, immutable, and alive forever because the library is
    // never unloaded.
    Ok(unsafe { ptr.read_unaligned() })
}

fn read_name(path: &Path, d: &PluginDescriptor) -> Result<String> {
    if d.name.ptr.is_null() || d.name.len == 0 {
        return Err(refuse(path, "the plugin has an empty name"));
    }
    if d.name.len > MAX_NAME_LEN {
        return Err(refuse(
            path,
            format!(
                "the plugin name is {} bytes, at most {MAX_NAME_LEN} are allowed",
                d.name.len
            ),
        ));
    }
    // SAFETY: the descriptor's name points to `len` bytes of static text (ABI contract), and
    // the library is never unloaded.
    let bytes = unsafe { std::slice::from_raw_parts(d.name.ptr, d.name.len) };
    let name = std::str::from_utf8(bytes)
        .map_err(|e| refuse(path, format!("the plugin name is not UTF-8: {e}")))?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(refuse(
            path,
            format!("the plugin name `{name}` may only hold ASCII letters, digits, `_` and `-`"),
        ));
    }
    Ok(name.to_string())
}

fn check_entry_points(
    path: &Path,
    name: &str,
    kind: PluginKind,
    d: &PluginDescriptor,
) -> Result<()> {
    let a = &d.aggregator;
    let missing: Vec<&str> = match kind {
        PluginKind::Aggregator => [
            ("create", a.create.is_some()),
            ("aggregate", a.aggregate.is_some()),
            ("last_error", a.last_error.is_some()),
            ("save_state", a.save_state.is_some()),
            ("load_state", a.load_state.is_some()),
            ("destroy", a.destroy.is_some()),
        ]
        .into_iter()
        .filter(|(_, present)| !present)
        .map(|(n, _)| n)
        .collect(),
        PluginKind::Adapter => {
            if d.adapter.spec_text.is_some() {
                Vec::new()
            } else {
                vec!["spec_text"]
            }
        }
    };
    if missing.is_empty() {
        Ok(())
    } else {
        Err(refuse(
            path,
            format!(
                "{kind} plugin `{name}` lacks entry points: {}",
                missing.join(", ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use fedsa_plugin_api::{DESCRIPTOR_SIZE, DESCRIPTOR_SIZE_V1};

    use super::check_header;

    #[test]
    fn each_known_version_needs_its_own_table_size() {
        assert_eq!(check_header(1, DESCRIPTOR_SIZE_V1), Ok(()));
        assert_eq!(check_header(2, DESCRIPTOR_SIZE), Ok(()));
        assert_eq!(
            check_header(2, DESCRIPTOR_SIZE + 8),
            Ok(()),
            "a larger table is fine"
        );
        let e = check_header(2, DESCRIPTOR_SIZE_V1).unwrap_err();
        assert_eq!(
            e,
            format!(
                "its plugin table is {DESCRIPTOR_SIZE_V1} bytes, ABI version 2 needs at least {DESCRIPTOR_SIZE}: rebuild it against this fedsa-plugin-api"
            )
        );
        let e = check_header(1, 8).unwrap_err();
        assert!(
            e.starts_with("its plugin table is 8 bytes, ABI version 1 needs at least"),
            "{e}"
        );
    }

    #[test]
    fn unknown_versions_are_refused_either_way() {
        let e = check_header(3, DESCRIPTOR_SIZE).unwrap_err();
        assert_eq!(
            e,
            "built for plugin ABI version 3, this fedsa loads versions 1 to 2 (the plugin is newer than this fedsa: update fedsa)"
        );
        let e = check_header(0, DESCRIPTOR_SIZE).unwrap_err();
        assert!(
            e.ends_with(
                "(the plugin is older than this fedsa: rebuild it against this fedsa-plugin-api)"
            ),
            "{e}"
        );
    }
}
