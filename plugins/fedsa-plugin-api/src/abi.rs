//! The binary layout shared by fedsa and its plugins: one `#[repr(C)]` descriptor, exported as a
//! static under [`FEDSA_PLUGIN_SYMBOL`], holding the ABI version, its own size, the plugin's kind
//! and name, and the function tables. Only pointers to `f32`/`f64`/`u8`, lengths and UTF-8 text
//! cross; never a Rust type with a layout of its own (and never a candle tensor).

use std::ffi::c_void;

/// The version of this layout, written into every descriptor this crate builds. Bump it on any
/// change to the descriptor, the tables, or the meaning of an argument; a new version only ever
/// appends fields, so an older version's table is a prefix of this one and a host can keep
/// loading it (see [`descriptor_size`]).
///
/// - Version 1: the header, the name, the aggregator and adapter tables.
/// - Version 2: adds [`PluginDescriptor::aggregate_module`], an aggregator's optional
///   module-level rule (all clients' A and B of one low-rank module in one call).
pub const FEDSA_PLUGIN_ABI_VERSION: u32 = 2;

/// The oldest ABI version a host built with this crate still loads.
pub const FEDSA_PLUGIN_ABI_OLDEST: u32 = 1;

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

/// The arguments of one [`AggregateModuleFn`] call: one low-rank module, whose update is
/// `scale · B · A` with `A` `[rank, in_features]` and `B` `[out_features, rank]` (row-major),
/// and every client's factors of it. `global_a` holds `rank · in_features` values, `global_b`
/// `out_features · rank`; `client_ids`, `num_examples`, `weights`, `clients_a` and `clients_b`
/// hold `n_clients` entries each, every `clients_a[i]` pointing to a buffer shaped like
/// `global_a` and every `clients_b[i]` to one shaped like `global_b`. `weights` are the
/// clients' shares of the round's examples (they sum to 1; equal when no counts were reported).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ModuleArgs {
    pub round: u64,
    /// The module's name (`encoder.layer.0.attention.self.query`).
    pub module: StrRef,
    pub scale: f64,
    pub rank: usize,
    pub in_features: usize,
    pub out_features: usize,
    pub global_a: *const f32,
    pub global_b: *const f32,
    pub n_clients: usize,
    pub client_ids: *const u64,
    pub num_examples: *const u64,
    pub weights: *const f64,
    pub clients_a: *const *const f32,
    pub clients_b: *const *const f32,
}

/// `*keep` after an [`AggregateModuleFn`] call: `out_a`/`out_b` hold the module's new factors.
pub const MODULE_REPLACED: u32 = 0;
/// `*keep` after an [`AggregateModuleFn`] call: keep the global factors (the outputs are
/// ignored).
pub const MODULE_KEPT: u32 = 1;

/// Combines one low-rank module's factors from every client (ABI version 2). `args` describes
/// the call (see [`ModuleArgs`]); `out_a` (`rank · in_features` values) and `out_b`
/// (`out_features · rank`) arrive holding copies of the global factors and alias nothing; on
/// success the plugin writes [`MODULE_REPLACED`] or [`MODULE_KEPT`] to `keep`. On failure the
/// text is read with [`LastErrorFn`].
pub type AggregateModuleFn = unsafe extern "C" fn(
    handle: *mut c_void,
    args: *const ModuleArgs,
    out_a: *mut f32,
    out_b: *mut f32,
    keep: *mut u32,
) -> i32;

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
/// This is the version-2 layout: [`PluginDescriptorV1`] followed by `aggregate_module`.
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
    /// Since version 2: an aggregator's module-level rule, or `None` when it has none (then the
    /// host sends every tensor through `aggregator.aggregate`). Always `None` in an adapter
    /// plugin, and in a version-1 table read by [`PluginDescriptor::from_v1`].
    pub aggregate_module: Option<AggregateModuleFn>,
}

/// The version-1 layout, frozen: what a plugin built against version 1 exports, and the prefix
/// of every later [`PluginDescriptor`]. A host reads an old plugin's table through this type
/// (reading a [`PluginDescriptor`] there would run past the end of the plugin's static).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PluginDescriptorV1 {
    pub abi_version: u32,
    pub table_size: u32,
    pub kind: u32,
    pub reserved: u32,
    pub name: StrRef,
    pub aggregator: AggregatorVTable,
    pub adapter: AdapterVTable,
}

// SAFETY: a descriptor is immutable after construction; its only pointers refer to `'static`
// text and to functions, both of which may be read from any thread.
unsafe impl Sync for PluginDescriptor {}
// SAFETY: as above, nothing in a descriptor is tied to the thread that built it.
unsafe impl Send for PluginDescriptor {}

// SAFETY: as for `PluginDescriptor`.
unsafe impl Sync for PluginDescriptorV1 {}
// SAFETY: as for `PluginDescriptor`.
unsafe impl Send for PluginDescriptorV1 {}

/// The descriptor size this crate defines (version [`FEDSA_PLUGIN_ABI_VERSION`]), as stored in
/// `table_size`.
pub const DESCRIPTOR_SIZE: u32 = std::mem::size_of::<PluginDescriptor>() as u32;

/// The size of a version-1 descriptor.
pub const DESCRIPTOR_SIZE_V1: u32 = std::mem::size_of::<PluginDescriptorV1>() as u32;

/// The smallest `table_size` a descriptor of ABI `version` may declare, or `None` for a version
/// this crate does not know.
pub const fn descriptor_size(version: u32) -> Option<u32> {
    match version {
        1 => Some(DESCRIPTOR_SIZE_V1),
        2 => Some(DESCRIPTOR_SIZE),
        _ => None,
    }
}

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
            aggregate_module: None,
        }
    }

    /// The current-layout equivalent of a version-1 table: the same entry points, no module
    /// rule. Version and size are kept as the plugin declared them.
    pub const fn from_v1(v1: PluginDescriptorV1) -> Self {
        Self {
            abi_version: v1.abi_version,
            table_size: v1.table_size,
            kind: v1.kind,
            reserved: v1.reserved,
            name: v1.name,
            aggregator: v1.aggregator,
            adapter: v1.adapter,
            aggregate_module: None,
        }
    }

    /// This plugin as a version-1 table (version 1, the version-1 size), without what later
    /// versions added: for exporting to a host that only knows version 1.
    pub const fn to_v1(&self) -> PluginDescriptorV1 {
        PluginDescriptorV1 {
            abi_version: 1,
            table_size: DESCRIPTOR_SIZE_V1,
            kind: self.kind,
            reserved: self.reserved,
            name: self.name,
            aggregator: self.aggregator,
            adapter: self.adapter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn version_and_size_keep_their_offsets() {
        assert_eq!(offset_of!(PluginDescriptor, abi_version), 0);
        assert_eq!(offset_of!(PluginDescriptor, table_size), 4);
        assert_eq!(offset_of!(PluginDescriptor, kind), 8);
        assert_eq!(
            offset_of!(PluginDescriptor, name),
            16,
            "name follows the four u32 header fields"
        );
        if cfg!(target_pointer_width = "64") {
            // The table in the crate's README.
            assert_eq!(offset_of!(PluginDescriptor, aggregator), 32);
            assert_eq!(offset_of!(PluginDescriptor, adapter), 80);
            assert_eq!(offset_of!(PluginDescriptor, aggregate_module), 88);
            assert_eq!(DESCRIPTOR_SIZE_V1, 88);
            assert_eq!(DESCRIPTOR_SIZE, 96);
        }
    }

    #[test]
    fn version_two_extends_version_one_without_moving_a_field() {
        macro_rules! same_offset {
            ($($field:ident),*) => {
                $(assert_eq!(
                    offset_of!(PluginDescriptorV1, $field),
                    offset_of!(PluginDescriptor, $field),
                    stringify!($field)
                );)*
            };
        }
        same_offset!(
            abi_version,
            table_size,
            kind,
            reserved,
            name,
            aggregator,
            adapter
        );
        assert_eq!(
            offset_of!(PluginDescriptor, aggregate_module),
            DESCRIPTOR_SIZE_V1 as usize,
            "the version-2 field starts where a version-1 table ends"
        );
        assert_eq!(descriptor_size(1), Some(DESCRIPTOR_SIZE_V1));
        assert_eq!(
            descriptor_size(FEDSA_PLUGIN_ABI_VERSION),
            Some(DESCRIPTOR_SIZE)
        );
        assert_eq!(descriptor_size(0), None);
        assert_eq!(descriptor_size(FEDSA_PLUGIN_ABI_VERSION + 1), None);
        assert!(descriptor_size(FEDSA_PLUGIN_ABI_OLDEST).is_some());
    }

    #[test]
    fn a_descriptor_goes_to_version_one_and_back_without_its_module_rule() {
        let d = PluginDescriptor::empty(KIND_AGGREGATOR, "x");
        let v1 = d.to_v1();
        assert_eq!((v1.abi_version, v1.table_size), (1, DESCRIPTOR_SIZE_V1));
        let back = PluginDescriptor::from_v1(v1);
        assert_eq!(
            (back.abi_version, back.table_size, back.kind),
            (1, DESCRIPTOR_SIZE_V1, KIND_AGGREGATOR)
        );
        assert!(back.aggregate_module.is_none());
    }

    #[test]
    fn optional_function_pointers_are_one_pointer_wide() {
        // The null-pointer optimisation is what lets `None` travel as a null pointer.
        assert_eq!(
            std::mem::size_of::<Option<AggregateFn>>(),
            std::mem::size_of::<usize>()
        );
        assert_eq!(
            std::mem::size_of::<Option<AggregateModuleFn>>(),
            std::mem::size_of::<usize>()
        );
        let words = 4 * 4 / std::mem::size_of::<usize>() + 2 + 6 + 1;
        assert_eq!(
            DESCRIPTOR_SIZE_V1 as usize,
            words * std::mem::size_of::<usize>()
        );
        assert_eq!(
            DESCRIPTOR_SIZE as usize,
            (words + 1) * std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn module_args_hold_only_plain_words() {
        // round, module {ptr, len}, scale, rank, in, out, global a/b, n, ids, counts, weights,
        // client a/b: fourteen fields, fifteen words (the name is two).
        if cfg!(target_pointer_width = "64") {
            assert_eq!(std::mem::size_of::<ModuleArgs>(), 15 * 8);
        }
    }
}
