//! Aggregator plugins: the safe trait a plugin author implements, and the generic `extern "C"`
//! entry points that [`export_aggregator!`](crate::export_aggregator) puts behind the exported
//! descriptor. The entry points own all the `unsafe`: pointer checks, panics caught, errors kept
//! as text on the instance for `last_error`.

use std::ffi::c_void;

use crate::abi::{KIND_AGGREGATOR, PluginDescriptor, STATUS_ERROR, STATUS_OK};
use crate::guard::{Outcome, copy_out, guarded, slice_from, str_from};

/// A server-side aggregation rule, called once per shared tensor per round (tensors come in name
/// order). State kept in `self` survives between calls and rounds: that is how a server
/// optimiser (FedAdam-style) remembers its moments.
pub trait AggregatorPlugin: Send + 'static {
    /// Builds the aggregator from the TOML text of `[strategy.aggregator_options]` (see
    /// [`Options`](crate::Options)). An error should name the option
    /// (`strategy.aggregator_options.trim`).
    fn new(config: &str) -> Result<Self, String>
    where
        Self: Sized;

    /// Combines the clients' values of tensor `tensor` into `out`.
    ///
    /// `global` is the current server value; `clients[i]` is client `i`'s value and `weights[i]`
    /// its share of the round's training examples (the weights sum to 1). Every slice, `out`
    /// included, has the same length; `out` starts as a copy of `global`.
    fn aggregate(
        &mut self,
        round: u64,
        tensor: &str,
        global: &[f32],
        clients: &[&[f32]],
        weights: &[f64],
        out: &mut [f32],
    ) -> Result<(), String>;

    /// The state to checkpoint (empty for a stateless rule).
    fn save_state(&self) -> Result<Vec<u8>, String> {
        Ok(Vec::new())
    }

    /// Restores what [`AggregatorPlugin::save_state`] returned.
    fn load_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        if bytes.is_empty() {
            Ok(())
        } else {
            Err("this aggregator keeps no state, but the checkpoint holds some".into())
        }
    }
}

/// What the opaque handle points to: the plugin and the text of its last failure.
struct Instance<T> {
    plugin: T,
    last_error: String,
    /// Set once a call panicked: the plugin's own state may be half-updated, so it is not used
    /// again.
    poisoned: bool,
}

impl<T> Instance<T> {
    /// Keeps the failure text for `last_error` and returns the call's status.
    fn finish<R>(&mut self, outcome: Outcome<R>) -> (i32, Option<R>) {
        let status = outcome.status();
        match outcome {
            Outcome::Ok(v) => (status, Some(v)),
            Outcome::Err(e) => {
                self.last_error = e;
                (status, None)
            }
            Outcome::Panic(e) => {
                self.last_error = e;
                self.poisoned = true;
                (status, None)
            }
        }
    }

    fn refuse_if_poisoned(&mut self) -> Option<i32> {
        self.poisoned.then(|| {
            self.last_error =
                "an earlier call panicked; this aggregator instance is no longer used".into();
            STATUS_ERROR
        })
    }
}

/// The instance behind a handle.
///
/// # Safety
/// `handle` must be null or come from [`create::<T>`] and not yet be destroyed, and no other
/// reference to the instance may be live (the host calls one entry point at a time).
unsafe fn instance<'a, T>(handle: *mut c_void) -> Option<&'a mut Instance<T>> {
    // SAFETY: a non-null handle is a live `Box<Instance<T>>` (caller contract).
    unsafe { handle.cast::<Instance<T>>().as_mut() }
}

/// [`CreateFn`](crate::abi::CreateFn) for `T`.
///
/// # Safety
/// The pointers must satisfy the contract of [`CreateFn`](crate::abi::CreateFn).
pub unsafe extern "C" fn create<T: AggregatorPlugin>(
    config: *const u8,
    config_len: usize,
    out_handle: *mut *mut c_void,
    err: *mut u8,
    err_cap: usize,
    err_len: *mut usize,
) -> i32 {
    // SAFETY: `config` is valid for `config_len` bytes (contract).
    let outcome = guarded(|| T::new(unsafe { str_from(config, config_len) }?));
    let status = outcome.status();
    let text = match outcome {
        Outcome::Ok(plugin) => {
            let boxed = Box::new(Instance {
                plugin,
                last_error: String::new(),
                poisoned: false,
            });
            if !out_handle.is_null() {
                // SAFETY: `out_handle` is valid for one pointer write (contract).
                unsafe { *out_handle = Box::into_raw(boxed).cast::<c_void>() };
                return STATUS_OK;
            }
            "the host passed no place for the handle".to_string()
        }
        Outcome::Err(e) | Outcome::Panic(e) => e,
    };
    // SAFETY: `err` is valid for `err_cap` bytes (contract).
    let full = unsafe { copy_out(text.as_bytes(), err, err_cap) };
    if !err_len.is_null() {
        // SAFETY: `err_len` is valid for one write (contract).
        unsafe { *err_len = full };
    }
    if status == STATUS_OK {
        STATUS_ERROR
    } else {
        status
    }
}

/// [`AggregateFn`](crate::abi::AggregateFn) for `T`.
///
/// # Safety
/// `handle` must come from [`create::<T>`]; the pointers must satisfy the contract of
/// [`AggregateFn`](crate::abi::AggregateFn).
pub unsafe extern "C" fn aggregate<T: AggregatorPlugin>(
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
) -> i32 {
    // SAFETY: `handle` is live and used by one call at a time (contract).
    let Some(inst) = (unsafe { instance::<T>(handle) }) else {
        return STATUS_ERROR;
    };
    if let Some(status) = inst.refuse_if_poisoned() {
        return status;
    }
    // SAFETY: every pointer is valid for the stated number of values, and `out` does not alias
    // the inputs (contract).
    let (tensor, global, client_ptrs, weights, out) = unsafe {
        (
            str_from(tensor, tensor_len),
            slice_from(global, len),
            slice_from(clients, n_clients),
            slice_from(weights, n_clients),
            if len == 0 || out.is_null() {
                &mut [][..]
            } else {
                std::slice::from_raw_parts_mut(out, len)
            },
        )
    };
    let outcome = guarded(|| {
        let tensor = tensor?;
        if global.len() != out.len() || client_ptrs.iter().any(|p| p.is_null() && len > 0) {
            return Err(format!("tensor `{tensor}`: null buffer from the host"));
        }
        // SAFETY: each client pointer is valid for `len` values (contract).
        let clients: Vec<&[f32]> = client_ptrs
            .iter()
            .map(|&p| unsafe { slice_from(p, len) })
            .collect();
        inst.plugin
            .aggregate(round, tensor, global, &clients, weights, out)
    });
    inst.finish(outcome).0
}

/// [`LastErrorFn`](crate::abi::LastErrorFn) for `T`.
///
/// # Safety
/// `handle` must come from [`create::<T>`]; `buf` must be valid for `cap` bytes.
pub unsafe extern "C" fn last_error<T: AggregatorPlugin>(
    handle: *mut c_void,
    buf: *mut u8,
    cap: usize,
) -> usize {
    // SAFETY: `handle` is live (contract).
    let text = match unsafe { instance::<T>(handle) } {
        Some(inst) => inst.last_error.as_str(),
        None => "null aggregator handle",
    };
    // SAFETY: `buf` is valid for `cap` bytes (contract).
    unsafe { copy_out(text.as_bytes(), buf, cap) }
}

/// [`SaveStateFn`](crate::abi::SaveStateFn) for `T`.
///
/// # Safety
/// `handle` must come from [`create::<T>`]; `out` must be valid for `cap` bytes and `out_len`
/// for one write.
pub unsafe extern "C" fn save_state<T: AggregatorPlugin>(
    handle: *mut c_void,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> i32 {
    // SAFETY: `handle` is live and used by one call at a time (contract).
    let Some(inst) = (unsafe { instance::<T>(handle) }) else {
        return STATUS_ERROR;
    };
    if let Some(status) = inst.refuse_if_poisoned() {
        return status;
    }
    let outcome = guarded(|| inst.plugin.save_state());
    let (status, bytes) = inst.finish(outcome);
    if let Some(bytes) = bytes {
        let full = if bytes.len() <= cap {
            // SAFETY: `out` is valid for `cap >= bytes.len()` bytes (contract).
            unsafe { copy_out(&bytes, out, cap) }
        } else {
            bytes.len()
        };
        if !out_len.is_null() {
            // SAFETY: `out_len` is valid for one write (contract).
            unsafe { *out_len = full };
        }
    }
    status
}

/// [`LoadStateFn`](crate::abi::LoadStateFn) for `T`.
///
/// # Safety
/// `handle` must come from [`create::<T>`]; `bytes` must be valid for `len` bytes.
pub unsafe extern "C" fn load_state<T: AggregatorPlugin>(
    handle: *mut c_void,
    bytes: *const u8,
    len: usize,
) -> i32 {
    // SAFETY: `handle` is live and used by one call at a time (contract).
    let Some(inst) = (unsafe { instance::<T>(handle) }) else {
        return STATUS_ERROR;
    };
    if let Some(status) = inst.refuse_if_poisoned() {
        return status;
    }
    // SAFETY: `bytes` is valid for `len` bytes (contract).
    let bytes = unsafe { slice_from(bytes, len) };
    let outcome = guarded(|| inst.plugin.load_state(bytes));
    inst.finish(outcome).0
}

/// [`DestroyFn`](crate::abi::DestroyFn) for `T`. A panic in the plugin's `Drop` is caught and
/// dropped: there is nobody left to report it to.
///
/// # Safety
/// `handle` must come from [`create::<T>`] and is not used afterwards.
pub unsafe extern "C" fn destroy<T: AggregatorPlugin>(handle: *mut c_void) {
    if handle.is_null() {
        return;
    }
    // SAFETY: the handle is a `Box<Instance<T>>` released to the host by `create` (contract).
    let boxed = unsafe { Box::from_raw(handle.cast::<Instance<T>>()) };
    drop(guarded(move || {
        drop(boxed);
        Ok(())
    }));
}

impl PluginDescriptor {
    /// The descriptor of aggregator plugin `T`, registered as `name`.
    pub const fn aggregator<T: AggregatorPlugin>(name: &'static str) -> Self {
        let mut d = Self::empty(KIND_AGGREGATOR, name);
        d.aggregator.create = Some(create::<T>);
        d.aggregator.aggregate = Some(aggregate::<T>);
        d.aggregator.last_error = Some(last_error::<T>);
        d.aggregator.save_state = Some(save_state::<T>);
        d.aggregator.load_state = Some(load_state::<T>);
        d.aggregator.destroy = Some(destroy::<T>);
        d
    }
}
