//! A loaded aggregator plugin behind the same [`Aggregator`] trait as the built-ins. Each
//! round it calls the plugin once per shared tensor, in name order, with the clients' buffers
//! and their example shares; a plugin with a module-level rule (ABI version 2) is instead
//! called once per low-rank module with every client's A and B, and checked for what it
//! returns. A plugin error becomes [`Error::Aggregation`], a caught panic [`Error::Plugin`], and
//! the run reports either instead of aborting.

use std::ffi::c_void;
use std::ptr::NonNull;

use fedsa_core::{
    Aggregator, ClientFailure, ClientUpdate, Error, LowRankModule, ModuleUpdate, ParamSet, Result,
    TensorData, example_weights,
};
use fedsa_plugin_api::abi::{AggregateModuleFn, AggregatorVTable};
use fedsa_plugin_api::{
    MODULE_KEPT, MODULE_REPLACED, ModuleArgs, STATUS_ERROR, STATUS_OK, STATUS_PANIC, StrRef,
};

use crate::builtin::client_values;
use fedsa_plugin_host::{LoadedPlugin, read_grown, read_text};

/// The checkpoint tensor that carries a plugin's state bytes, one byte per `f32` value (exact,
/// and safe for any checkpoint format that stores `f32`).
pub const PLUGIN_STATE_TENSOR: &str = "plugin_state_bytes";

/// Longest error text read back from `create`.
const CREATE_ERROR_CAP: usize = 4096;

/// One instance of a plugin aggregator.
pub struct PluginAggregator {
    plugin: LoadedPlugin,
    vtable: AggregatorVTable,
    /// The module-level rule, when the plugin has one (ABI version 2 and up).
    aggregate_module: Option<AggregateModuleFn>,
    handle: NonNull<c_void>,
}

// SAFETY: the handle is owned by this value alone; the type is not `Sync`, so at most one
// thread calls into the instance at a time, and `AggregatorPlugin: Send` lets the instance
// behind the handle move between threads.
unsafe impl Send for PluginAggregator {}

impl std::fmt::Debug for PluginAggregator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginAggregator")
            .field("name", &self.plugin.name())
            .field("path", &self.plugin.path())
            .finish_non_exhaustive()
    }
}

impl PluginAggregator {
    /// Calls the plugin's `create` with the options text.
    pub(crate) fn create(plugin: LoadedPlugin, config: &str) -> Result<Self> {
        let vtable = plugin.descriptor().aggregator;
        let aggregate_module = plugin.descriptor().aggregate_module;
        let create = vtable.create.expect("checked at load");
        let mut handle: *mut c_void = std::ptr::null_mut();
        let mut err = vec![0u8; CREATE_ERROR_CAP];
        let mut err_len = 0usize;
        // SAFETY: `config` is live for the call, `handle` and `err_len` are valid for one
        // write, `err` for `err.len()` bytes; the library is loaded forever.
        let status = unsafe {
            create(
                config.as_ptr(),
                config.len(),
                &raw mut handle,
                err.as_mut_ptr(),
                err.len(),
                &raw mut err_len,
            )
        };
        let failure = |what: &str| Error::Plugin {
            path: plugin.path().to_path_buf(),
            message: what.to_string(),
        };
        if status != STATUS_OK {
            let shown = err_len.min(err.len());
            let mut text = String::from_utf8_lossy(&err[..shown]).into_owned();
            if err_len > shown {
                text.push_str(" (truncated)");
            }
            return Err(failure(&format!(
                "aggregator `{}` {}: {text}",
                plugin.name(),
                if status == STATUS_PANIC {
                    "panicked while reading its options"
                } else {
                    "refused its options"
                }
            )));
        }
        let handle = NonNull::new(handle)
            .ok_or_else(|| failure("`create` reported success but returned no handle"))?;
        Ok(Self {
            plugin,
            vtable,
            aggregate_module,
            handle,
        })
    }

    /// The plugin this instance came from.
    pub fn plugin(&self) -> &LoadedPlugin {
        &self.plugin
    }

    /// The plugin's text for its last failure.
    fn last_error(&self) -> String {
        let last_error = self.vtable.last_error.expect("checked at load");
        read_text(|buf, cap| {
            // SAFETY: the handle is live; `buf` is valid for `cap` bytes.
            unsafe { last_error(self.handle.as_ptr(), buf, cap) }
        })
    }

    /// The error for a failed call; `context` says what was being done.
    fn failure(&self, status: i32, context: &str) -> Error {
        let text = self.last_error();
        let name = self.plugin.name();
        match status {
            STATUS_ERROR => Error::Aggregation {
                aggregator: name.to_string(),
                message: format!("{context}: {text}"),
            },
            STATUS_PANIC => Error::Plugin {
                path: self.plugin.path().to_path_buf(),
                message: format!("aggregator `{name}` {text} ({context})"),
            },
            other => Error::Plugin {
                path: self.plugin.path().to_path_buf(),
                message: format!(
                    "aggregator `{name}` returned the unknown status {other} ({context}): {text}"
                ),
            },
        }
    }
}

/// An [`Error::Aggregation`] of aggregator `name` about `module` in `round`.
fn module_error(name: &str, round: usize, module: &str, message: impl std::fmt::Display) -> Error {
    Error::Aggregation {
        aggregator: name.to_string(),
        message: format!("round {round}, module `{module}`: {message}"),
    }
}

/// The first non-finite value of `values`, as `(index, value)`.
fn first_non_finite(values: &[f32]) -> Option<(usize, f32)> {
    values
        .iter()
        .copied()
        .enumerate()
        .find(|(_, v)| !v.is_finite())
}

/// Each update's share of the round's examples (uniform when nobody reported any), the same
/// weights as [`fedsa_core::weighted_mean`].
fn example_shares(updates: &[ClientUpdate]) -> Vec<f64> {
    let total: usize = updates.iter().map(|u| u.num_examples).sum();
    updates
        .iter()
        .map(|u| {
            if total == 0 {
                1.0 / updates.len() as f64
            } else {
                u.num_examples as f64 / total as f64
            }
        })
        .collect()
}

impl Aggregator for PluginAggregator {
    fn name(&self) -> &str {
        self.plugin.name()
    }

    fn aggregate(
        &mut self,
        round: usize,
        global: &ParamSet,
        updates: &[ClientUpdate],
        _failures: &[ClientFailure],
    ) -> Result<Option<ParamSet>> {
        if updates.is_empty() {
            return Err(Error::Aggregation {
                aggregator: self.name().to_string(),
                message: "no updates to aggregate".into(),
            });
        }
        let aggregate = self.vtable.aggregate.expect("checked at load");
        let weights = example_shares(updates);
        let mut out_set = ParamSet::new();
        for (name, tensor) in global.iter() {
            let clients = client_values(name, tensor.shape(), updates)?;
            let pointers: Vec<*const f32> = clients.iter().map(|c| c.as_ptr()).collect();
            let mut out = tensor.data().to_vec();
            // SAFETY: the handle is live and used by this call alone; `global`, `out` and every
            // client buffer hold `tensor.len()` values (shapes checked above); `pointers` and
            // `weights` hold one entry per client; `out` is a fresh buffer aliasing nothing.
            let status = unsafe {
                aggregate(
                    self.handle.as_ptr(),
                    round as u64,
                    name.as_ptr(),
                    name.len(),
                    tensor.data().as_ptr(),
                    tensor.len(),
                    pointers.len(),
                    pointers.as_ptr(),
                    weights.as_ptr(),
                    out.as_mut_ptr(),
                )
            };
            if status != STATUS_OK {
                return Err(self.failure(status, &format!("round {round}, tensor `{name}`")));
            }
            out_set.insert(name.clone(), tensor.shape().to_vec(), out)?;
        }
        Ok(Some(out_set))
    }

    fn combines_modules(&self) -> bool {
        self.aggregate_module.is_some()
    }

    fn aggregate_module(
        &mut self,
        round: usize,
        module: &LowRankModule,
        global_a: &TensorData,
        global_b: &TensorData,
        updates: &[ModuleUpdate<'_>],
    ) -> Result<Option<(TensorData, TensorData)>> {
        let name = self.plugin.name().to_string();
        let err = |message: String| module_error(&name, round, &module.name, message);
        let Some(entry) = self.aggregate_module else {
            return Err(err(
                "the plugin has no module-level rule (ABI version 1, or its entry is empty)".into(),
            ));
        };
        if updates.is_empty() {
            return Err(err("no updates to aggregate".into()));
        }
        let (rank, in_features, out_features) = module
            .dims(global_a, global_b)
            .map_err(|e| err(format!("the global factors do not fit a module: {e}")))?;
        for u in updates {
            for (factor, got, want) in [("A", u.a, global_a), ("B", u.b, global_b)] {
                if got.shape() != want.shape() {
                    return Err(err(format!(
                        "client {} sent {factor} of shape {:?}, expected {:?}",
                        u.client,
                        got.shape(),
                        want.shape()
                    )));
                }
            }
        }
        let ids: Vec<u64> = updates.iter().map(|u| u.client as u64).collect();
        let counts: Vec<u64> = updates.iter().map(|u| u.num_examples as u64).collect();
        let weights = example_weights(updates);
        let clients_a: Vec<*const f32> = updates.iter().map(|u| u.a.data().as_ptr()).collect();
        let clients_b: Vec<*const f32> = updates.iter().map(|u| u.b.data().as_ptr()).collect();
        let args = ModuleArgs {
            round: round as u64,
            module: StrRef {
                ptr: module.name.as_ptr(),
                len: module.name.len(),
            },
            scale: module.scale,
            rank,
            in_features,
            out_features,
            global_a: global_a.data().as_ptr(),
            global_b: global_b.data().as_ptr(),
            n_clients: updates.len(),
            client_ids: ids.as_ptr(),
            num_examples: counts.as_ptr(),
            weights: weights.as_ptr(),
            clients_a: clients_a.as_ptr(),
            clients_b: clients_b.as_ptr(),
        };
        let mut out_a = global_a.data().to_vec();
        let mut out_b = global_b.data().to_vec();
        let mut keep = u32::MAX;
        // SAFETY: the handle is live and used by this call alone; `args` and every buffer it
        // points to live until the call returns, with the lengths it states (the shapes were
        // checked above: every client's A and B are shaped like the global ones, which are
        // `[rank, in]` and `[out, rank]`); `out_a`, `out_b` and `keep` are fresh and alias
        // nothing.
        let status = unsafe {
            entry(
                self.handle.as_ptr(),
                &raw const args,
                out_a.as_mut_ptr(),
                out_b.as_mut_ptr(),
                &raw mut keep,
            )
        };
        if status != STATUS_OK {
            return Err(self.failure(status, &format!("round {round}, module `{}`", module.name)));
        }
        match keep {
            MODULE_KEPT => return Ok(None),
            MODULE_REPLACED => {}
            other => {
                return Err(Error::Plugin {
                    path: self.plugin.path().to_path_buf(),
                    message: format!(
                        "aggregator `{name}` reported success with keep = {other} (round {round}, module `{}`); expected {MODULE_REPLACED} (replaced) or {MODULE_KEPT} (kept)",
                        module.name
                    ),
                });
            }
        }
        for (factor, values) in [("A", &out_a), ("B", &out_b)] {
            if let Some((i, v)) = first_non_finite(values) {
                return Err(err(format!(
                    "the new {factor} holds {v} at index {i}; stopping with the last good state"
                )));
            }
        }
        let a = TensorData::new(global_a.shape().to_vec(), out_a)?;
        let b = TensorData::new(global_b.shape().to_vec(), out_b)?;
        Ok(Some((a, b)))
    }

    fn state(&self) -> Result<ParamSet> {
        let save_state = self.vtable.save_state.expect("checked at load");
        let mut status = STATUS_OK;
        let bytes = read_grown(|buf, cap| {
            let mut full = 0usize;
            // SAFETY: the handle is live; `buf` is valid for `cap` bytes, `full` for a write.
            status = unsafe { save_state(self.handle.as_ptr(), buf, cap, &raw mut full) };
            full
        })
        .map_err(|e| Error::Plugin {
            path: self.plugin.path().to_path_buf(),
            message: format!("state too large to read: {e}"),
        })?;
        if status != STATUS_OK {
            return Err(self.failure(status, "saving its state"));
        }
        let mut state = ParamSet::new();
        if !bytes.is_empty() {
            let values = bytes.iter().map(|b| f32::from(*b)).collect();
            state.insert(PLUGIN_STATE_TENSOR, vec![bytes.len()], values)?;
        }
        Ok(state)
    }

    fn load_state(&mut self, state: &ParamSet) -> Result<()> {
        if state.is_empty() {
            return Ok(());
        }
        let bad = |message: String| Error::Aggregation {
            aggregator: self.name().to_string(),
            message,
        };
        if let Some(other) = state.names().find(|n| *n != PLUGIN_STATE_TENSOR) {
            return Err(bad(format!(
                "checkpoint state holds `{other}`; a plugin's state is `{PLUGIN_STATE_TENSOR}`"
            )));
        }
        let bytes = state
            .require(PLUGIN_STATE_TENSOR)?
            .data()
            .iter()
            .map(|&v| {
                if (0.0..=255.0).contains(&v) && v.fract() == 0.0 {
                    Ok(v as u8)
                } else {
                    Err(bad(format!(
                        "`{PLUGIN_STATE_TENSOR}` holds {v}, not a byte: the checkpoint is damaged"
                    )))
                }
            })
            .collect::<Result<Vec<u8>>>()?;
        let load_state = self.vtable.load_state.expect("checked at load");
        // SAFETY: the handle is live and used by this call alone; `bytes` is live for the call.
        let status = unsafe { load_state(self.handle.as_ptr(), bytes.as_ptr(), bytes.len()) };
        if status == STATUS_OK {
            Ok(())
        } else {
            Err(self.failure(status, "restoring its state"))
        }
    }
}

impl Drop for PluginAggregator {
    fn drop(&mut self) {
        let destroy = self.vtable.destroy.expect("checked at load");
        // SAFETY: the handle came from this plugin's `create` and is not used after this.
        unsafe { destroy(self.handle.as_ptr()) };
    }
}
