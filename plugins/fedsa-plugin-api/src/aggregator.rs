//! Aggregator plugins: the safe trait a plugin author implements, and the generic `extern "C"`
//! entry points that [`export_aggregator!`](crate::export_aggregator) puts behind the exported
//! descriptor. The entry points own all the `unsafe`: pointer checks, panics caught, errors kept
//! as text on the instance for `last_error`.

use std::ffi::c_void;

use crate::abi::{
    KIND_AGGREGATOR, MODULE_KEPT, MODULE_REPLACED, ModuleArgs, PluginDescriptor, STATUS_ERROR,
    STATUS_OK,
};
use crate::guard::{Outcome, copy_out, guarded, slice_from, str_from};

/// One low-rank module as the server holds it, for [`AggregatorPlugin::aggregate_module`]: its
/// update is `scale · B · A`, with `A` `[rank, in_features]` and `B` `[out_features, rank]`,
/// both row-major.
#[derive(Debug, Clone, Copy)]
pub struct ModuleFactors<'a> {
    /// The module's name (`encoder.layer.0.attention.self.query`).
    pub name: &'a str,
    /// What the product is multiplied by (`α/r`, or `α/√r` for rsLoRA); the same for every
    /// client.
    pub scale: f64,
    pub rank: usize,
    pub in_features: usize,
    pub out_features: usize,
    /// The current global `A`, `rank · in_features` values.
    pub global_a: &'a [f32],
    /// The current global `B`, `out_features · rank` values.
    pub global_b: &'a [f32],
}

/// One client's factors of a module, shaped like the module's global ones.
#[derive(Debug, Clone, Copy)]
pub struct ClientFactors<'a> {
    /// The client's id in the federation.
    pub client: u64,
    /// The examples it trained on this round.
    pub num_examples: u64,
    /// Its share of the round's examples (the shares sum to 1; equal when no counts came).
    pub weight: f64,
    pub a: &'a [f32],
    pub b: &'a [f32],
}

/// What [`AggregatorPlugin::aggregate_module`] did with the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleOutcome {
    /// `out_a` and `out_b` hold the module's new factors.
    Replaced,
    /// Keep the global factors; whatever the outputs hold is ignored.
    Kept,
}

/// A server-side aggregation rule, called once per shared tensor per round (tensors come in name
/// order). State kept in `self` survives between calls and rounds: that is how a server
/// optimiser (FedAdam-style) remembers its moments.
///
/// A rule that needs a low-rank module's two factors together (a product `B·A` is not the
/// product of the means) sets [`AggregatorPlugin::MODULE_RULE`] and implements
/// [`AggregatorPlugin::aggregate_module`]; the other shared tensors (a classifier head) still
/// come through [`AggregatorPlugin::aggregate`].
pub trait AggregatorPlugin: Send + 'static {
    /// Whether this plugin implements [`AggregatorPlugin::aggregate_module`]. When true,
    /// [`export_aggregator!`](crate::export_aggregator) fills the descriptor's module entry
    /// (ABI version 2) and the host calls it once per low-rank module whose A and B both went up
    /// that round, instead of calling `aggregate` on those two tensors.
    const MODULE_RULE: bool = false;

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

    /// Combines every client's factors of one low-rank module (only called when
    /// [`AggregatorPlugin::MODULE_RULE`] is true). `clients` come in the order of the round's
    /// uploads; `out_a` (`rank · in_features` values) and `out_b` (`out_features · rank`) start
    /// as copies of the global factors. Return [`ModuleOutcome::Replaced`] once they hold the
    /// new factors, or [`ModuleOutcome::Kept`] to leave the module as it is. The host refuses
    /// non-finite values.
    fn aggregate_module(
        &mut self,
        round: u64,
        module: &ModuleFactors<'_>,
        clients: &[ClientFactors<'_>],
        out_a: &mut [f32],
        out_b: &mut [f32],
    ) -> Result<ModuleOutcome, String> {
        let _ = (round, clients, out_a, out_b);
        Err(format!(
            "module `{}`: this aggregator sets MODULE_RULE but does not implement aggregate_module",
            module.name
        ))
    }

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

/// `a · b`, or an error naming what overflowed.
fn product(a: usize, b: usize, what: &str) -> Result<usize, String> {
    a.checked_mul(b)
        .ok_or_else(|| format!("{what}: {a} x {b} values overflow"))
}

/// A mutable slice from a host buffer of `len` values.
///
/// # Safety
/// When `len > 0` and `ptr` is non-null, `ptr` must be valid for writes of `len` values for
/// `'a` and alias nothing else in use.
unsafe fn slice_from_mut<'a, T>(ptr: *mut T, len: usize) -> &'a mut [T] {
    if len == 0 || ptr.is_null() {
        &mut []
    } else {
        // SAFETY: non-null, valid and unaliased for `len` values (caller contract).
        unsafe { std::slice::from_raw_parts_mut(ptr, len) }
    }
}

/// [`AggregateModuleFn`](crate::abi::AggregateModuleFn) for `T`.
///
/// # Safety
/// `handle` must come from [`create::<T>`]; the pointers must satisfy the contract of
/// [`AggregateModuleFn`](crate::abi::AggregateModuleFn) and [`ModuleArgs`].
pub unsafe extern "C" fn aggregate_module<T: AggregatorPlugin>(
    handle: *mut c_void,
    args: *const ModuleArgs,
    out_a: *mut f32,
    out_b: *mut f32,
    keep: *mut u32,
) -> i32 {
    // SAFETY: `handle` is live and used by one call at a time (contract).
    let Some(inst) = (unsafe { instance::<T>(handle) }) else {
        return STATUS_ERROR;
    };
    if let Some(status) = inst.refuse_if_poisoned() {
        return status;
    }
    // SAFETY: `args` is null or valid for one read (contract).
    let Some(args) = (unsafe { args.as_ref() }) else {
        inst.last_error = "the host passed no module arguments".into();
        return STATUS_ERROR;
    };
    let outcome = guarded(|| {
        // SAFETY: the name is valid for `len` bytes (contract).
        let name = unsafe { str_from(args.module.ptr, args.module.len) }?;
        let at = format!("module `{name}`");
        let len_a = product(args.rank, args.in_features, &at)?;
        let len_b = product(args.out_features, args.rank, &at)?;
        let n = args.n_clients;
        let missing = |p: bool, len: usize| p && len > 0;
        if missing(args.global_a.is_null(), len_a)
            || missing(args.global_b.is_null(), len_b)
            || missing(out_a.is_null(), len_a)
            || missing(out_b.is_null(), len_b)
            || keep.is_null()
            || (n > 0
                && [
                    args.client_ids.is_null(),
                    args.num_examples.is_null(),
                    args.weights.is_null(),
                    args.clients_a.is_null(),
                    args.clients_b.is_null(),
                ]
                .contains(&true))
        {
            return Err(format!("{at}: null buffer from the host"));
        }
        // SAFETY: every pointer is valid for the stated number of values, the outputs alias
        // nothing (contract), and the null ones were refused above.
        let (global_a, global_b, ids, counts, weights, ptrs_a, ptrs_b, out_a, out_b) = unsafe {
            (
                slice_from(args.global_a, len_a),
                slice_from(args.global_b, len_b),
                slice_from(args.client_ids, n),
                slice_from(args.num_examples, n),
                slice_from(args.weights, n),
                slice_from(args.clients_a, n),
                slice_from(args.clients_b, n),
                slice_from_mut(out_a, len_a),
                slice_from_mut(out_b, len_b),
            )
        };
        if ptrs_a.iter().any(|p| p.is_null() && len_a > 0)
            || ptrs_b.iter().any(|p| p.is_null() && len_b > 0)
        {
            return Err(format!("{at}: null client buffer from the host"));
        }
        let clients: Vec<ClientFactors<'_>> = (0..n)
            .map(|i| ClientFactors {
                client: ids[i],
                num_examples: counts[i],
                weight: weights[i],
                // SAFETY: each client pointer is valid for its factor's length (contract).
                a: unsafe { slice_from(ptrs_a[i], len_a) },
                // SAFETY: as above.
                b: unsafe { slice_from(ptrs_b[i], len_b) },
            })
            .collect();
        let module = ModuleFactors {
            name,
            scale: args.scale,
            rank: args.rank,
            in_features: args.in_features,
            out_features: args.out_features,
            global_a,
            global_b,
        };
        inst.plugin
            .aggregate_module(args.round, &module, &clients, out_a, out_b)
    });
    let (status, result) = inst.finish(outcome);
    if let Some(result) = result {
        let flag = match result {
            ModuleOutcome::Replaced => MODULE_REPLACED,
            ModuleOutcome::Kept => MODULE_KEPT,
        };
        // SAFETY: `keep` is non-null (checked above, or the call failed) and valid for one
        // write (contract).
        unsafe { *keep = flag };
    }
    status
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
    /// The descriptor of aggregator plugin `T`, registered as `name`; the module entry is
    /// filled only when `T` sets [`AggregatorPlugin::MODULE_RULE`].
    pub const fn aggregator<T: AggregatorPlugin>(name: &'static str) -> Self {
        let mut d = Self::empty(KIND_AGGREGATOR, name);
        d.aggregator.create = Some(create::<T>);
        d.aggregator.aggregate = Some(aggregate::<T>);
        d.aggregator.last_error = Some(last_error::<T>);
        d.aggregator.save_state = Some(save_state::<T>);
        d.aggregator.load_state = Some(load_state::<T>);
        d.aggregator.destroy = Some(destroy::<T>);
        if T::MODULE_RULE {
            d.aggregate_module = Some(aggregate_module::<T>);
        }
        d
    }
}
