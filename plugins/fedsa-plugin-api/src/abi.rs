//! The binary layout shared by fedsa and its plugins: one `#[repr(C)]` descriptor, exported as a
//! static under [`FEDSA_PLUGIN_SYMBOL`], holding the ABI version, its own size, the plugin's kind
//! and name, and the function tables. Only pointers to `f32`/`f64`/`u8`, lengths and UTF-8 text
//! cross; never a Rust type with a layout of its own (and never a candle tensor).

use std::ffi::c_void;

/// The version of this layout. The host refuses a plugin whose descriptor carries another one.
/// Bump it on any change to the descriptor, the tables, or the meaning of an argument.
pub const FEDSA_PLUGIN_ABI_VERSION: u32 = 1;

/// The name of the exported static [`PluginDescriptor`] (without a trailing NUL). The `v1`
/// is the symbol's generation, not the ABI version: a layout change bumps
/// [`FEDSA_PLUGIN_ABI_VERSION`] and keeps the symbol, so the host can explain the mismatch.
pub const FEDSA_PLUGIN_SYMBOL: &str = "fedsa_plugin_v1";

/// `PluginDescriptor::kind` of an aggregator plugin.
pub const KIND_AGGREGATOR: u32 = 1;
/// `PluginDescriptor::kind` of an adapter plugin.
pub const KIND_ADAPTER: u32 = 2;

/// The call succeeded.
pub const STATUS_OK: i32 = 0;
/// The plugin reported an error; its text is available (see each function).
pub const STATUS_ERROR: i32 = 1;
/// The plugin panicked; the panic was caught and its message is available like an error's.
pub const STATUS_PANIC: i32 = 2;

/// Borrowed UTF-8 text: a pointer and a length in bytes, no NUL terminator.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StrRef {
    pub ptr: *const u8,
    pub len: usize,
}

impl StrRef {
    /// Text that lives as long as the library.
    pub const fn from_static(text: &'static str) -> Self {
        Self {
            ptr: text.as_ptr(),
            len: text.len(),
        }
    }

    /// No text.
    pub const fn empty() -> Self {
        Self {
            ptr: std::ptr::null(),
            len: 0,
        }
    }
}

/// Creates an aggregator from its config text (the TOML of `[strategy.aggregator_options]`).
/// On success writes the new opaque handle to `out_handle` and returns [`STATUS_OK`]. Otherwise
/// writes up to `err_cap` bytes of the error text to `err`, its full length to `err_len`, and
/// returns [`STATUS_ERROR`] or [`STATUS_PANIC`].
pub type CreateFn = unsafe extern "C" fn(
    config: *const u8,
    config_len: usize,
    out_handle: *mut *mut c_void,
    err: *mut u8,
    err_cap: usize,
    err_len: *mut usize,
) -> i32;

/// Aggregates one named tensor. `global` and `out` hold `len` values; `clients` points to
/// `n_clients` pointers, each to `len` values; `weights` holds `n_clients` example shares that
/// sum to 1. `out` arrives holding a copy of `global`. On failure the text is read with
/// [`LastErrorFn`].
pub type AggregateFn = unsafe extern "C" fn(
    handle: *mut c_void,
    round: u64,
    tensor: *const u8,
    tensor_len: usize,
    global: *const f32,
    len: usize,
    n_clients: usize,
    clients: *const *const f32,
    weights: *const f64,
    out: *mut f32,
) -> i32;

/// Copies up to `cap` bytes of the last error's text into `buf` and returns its full length
/// (call again with a larger buffer when it exceeds `cap`).
pub type LastErrorFn = unsafe extern "C" fn(handle: *mut c_void, buf: *mut u8, cap: usize) -> usize;

/// Serialises the aggregator's state. Always writes the full length to `out_len`; copies the
/// bytes only when they fit in `cap` (call with `cap = 0` to learn the size). Errors through
/// [`LastErrorFn`].
pub type SaveStateFn =
    unsafe extern "C" fn(handle: *mut c_void, out: *mut u8, cap: usize, out_len: *mut usize) -> i32;

/// Restores what [`SaveStateFn`] produced. Errors through [`LastErrorFn`].
pub type LoadStateFn =
    unsafe extern "C" fn(handle: *mut c_void, bytes: *const u8, len: usize) -> i32;

/// Frees the handle; it is not used afterwards.
pub type DestroyFn = unsafe extern "C" fn(handle: *mut c_void);

/// Writes the adapter spec (UTF-8 text) like [`SaveStateFn`] writes state: the full length to
/// `out_len`, the bytes when they fit. On [`STATUS_ERROR`]/[`STATUS_PANIC`] the same buffer
/// receives the error text instead.
pub type SpecTextFn = unsafe extern "C" fn(out: *mut u8, cap: usize, out_len: *mut usize) -> i32;

/// The entry points of an aggregator plugin (all `None` in an adapter plugin).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AggregatorVTable {
    pub create: Option<CreateFn>,
    pub aggregate: Option<AggregateFn>,
    pub last_error: Option<LastErrorFn>,
    pub save_state: Option<SaveStateFn>,
    pub load_state: Option<LoadStateFn>,
    pub destroy: Option<DestroyFn>,
}

impl AggregatorVTable {
    /// No entry points.
    pub const fn none() -> Self {
        Self {
            create: None,
            aggregate: None,
            last_error: None,
            save_state: None,
            load_state: None,
            destroy: None,
        }
    }
}

/// The entry points of an adapter plugin (all `None` in an aggregator plugin).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AdapterVTable {
    pub spec_text: Option<SpecTextFn>,
}

impl AdapterVTable {
    /// No entry points.
    pub const fn none() -> Self {
        Self { spec_text: None }
    }
}

/// The root table a plugin exports. `abi_version` and `table_size` come first and keep their
/// offsets (0 and 4) in every version, so a host can read them before trusting anything else.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PluginDescriptor {
    /// [`FEDSA_PLUGIN_ABI_VERSION`] of the API crate the plugin was built with.
    pub abi_version: u32,
    /// `size_of::<PluginDescriptor>()` as the plugin saw it.
    pub table_size: u32,
    /// [`KIND_AGGREGATOR`] or [`KIND_ADAPTER`].
    pub kind: u32,
    /// Zero; room for flags without moving the fields after it.
    pub reserved: u32,
    /// The name users write in configs (`strategy.aggregator`, `adapter.kind`).
    pub name: StrRef,
    pub aggregator: AggregatorVTable,
    pub adapter: AdapterVTable,
}

// SAFETY: a descriptor is immutable after construction; its only pointers refer to `'static`
// text and to functions, both of which may be read from any thread.
unsafe impl Sync for PluginDescriptor {}
// SAFETY: as above, nothing in a descriptor is tied to the thread that built it.
unsafe impl Send for PluginDescriptor {}

/// The descriptor size this crate defines, as stored in `table_size`.
pub const DESCRIPTOR_SIZE: u32 = std::mem::size_of::<PluginDescriptor>() as u32;

impl PluginDescriptor {
    /// A descriptor with this crate's version and size and no entry points.
    pub const fn empty(kind: u32, name: &'static str) -> Self {
        Self {
            abi_version: FEDSA_PLUGIN_ABI_VERSION,
            table_size: DESCRIPTOR_SIZE,
            kind,
            reserved: 0,
            name: StrRef::from_static(name),
            aggregator: AggregatorVTable::none(),
            adapter: AdapterVTable::none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_and_size_keep_their_offsets() {
        assert_eq!(std::mem::offset_of!(PluginDescriptor, abi_version), 0);
        assert_eq!(std::mem::offset_of!(PluginDescriptor, table_size), 4);
        assert_eq!(std::mem::offset_of!(PluginDescriptor, kind), 8);
        assert_eq!(
            std::mem::offset_of!(PluginDescriptor, name),
            16,
            "name follows the four u32 header fields"
        );
        if cfg!(target_pointer_width = "64") {
            // The table in the crate's README.
            assert_eq!(std::mem::offset_of!(PluginDescriptor, aggregator), 32);
            assert_eq!(std::mem::offset_of!(PluginDescriptor, adapter), 80);
            assert_eq!(DESCRIPTOR_SIZE, 88);
        }
    }

    #[test]
    fn optional_function_pointers_are_one_pointer_wide() {
        // The null-pointer optimisation is what lets `None` travel as a null pointer.
        assert_eq!(
            std::mem::size_of::<Option<AggregateFn>>(),
            std::mem::size_of::<usize>()
        );
        let words = 4 * 4 / std::mem::size_of::<usize>() + 2 + 6 + 1;
        assert_eq!(
            DESCRIPTOR_SIZE as usize,
            words * std::mem::size_of::<usize>()
        );
    }
}
