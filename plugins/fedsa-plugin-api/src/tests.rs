//! Drives the generated entry points exactly as a host would: through the exported
//! descriptor's function pointers, with raw buffers.

use std::ffi::c_void;

use crate::{
    AggregatorPlugin, ClientFactors, FEDSA_PLUGIN_ABI_VERSION, FEDSA_PLUGIN_SYMBOL,
    KIND_AGGREGATOR, MODULE_KEPT, MODULE_REPLACED, ModuleArgs, ModuleFactors, ModuleOutcome,
    Options, PluginDescriptor, STATUS_ERROR, STATUS_OK, STATUS_PANIC, StrRef,
};

/// Keeps a running count per call and panics on tensor `boom`.
struct Counting {
    scale: f32,
    calls: u32,
}

impl AggregatorPlugin for Counting {
    fn new(config: &str) -> Result<Self, String> {
        let mut o = Options::parse(config)?;
        let scale = o.f64_or("scale", 1.0)? as f32;
        o.finish(&["scale"])?;
        Ok(Self { scale, calls: 0 })
    }

    fn aggregate(
        &mut self,
        _round: u64,
        tensor: &str,
        _global: &[f32],
        clients: &[&[f32]],
        weights: &[f64],
        out: &mut [f32],
    ) -> Result<(), String> {
        assert!(tensor != "boom", "asked to explode");
        if tensor == "refuse" {
            return Err("refused on purpose".into());
        }
        self.calls += 1;
        for (j, o) in out.iter_mut().enumerate() {
            let mean: f64 = clients
                .iter()
                .zip(weights)
                .map(|(c, w)| w * f64::from(c[j]))
                .sum();
            *o = mean as f32 * self.scale;
        }
        Ok(())
    }

    fn save_state(&self) -> Result<Vec<u8>, String> {
        Ok(self.calls.to_le_bytes().to_vec())
    }

    fn load_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        let arr: [u8; 4] = bytes.try_into().map_err(|_| "need 4 bytes".to_string())?;
        self.calls = u32::from_le_bytes(arr);
        Ok(())
    }
}

mod exported {
    crate::export_aggregator!(super::Counting, "counting");
}

fn desc() -> &'static PluginDescriptor {
    &exported::fedsa_plugin_v1
}

fn create(config: &str) -> Result<*mut c_void, (i32, String)> {
    let mut handle = std::ptr::null_mut();
    let mut err = vec![0u8; 256];
    let mut err_len = 0usize;
    // SAFETY: every pointer refers to a live local buffer of the stated size.
    let status = unsafe {
        (desc().aggregator.create.unwrap())(
            config.as_ptr(),
            config.len(),
            &raw mut handle,
            err.as_mut_ptr(),
            err.len(),
            &raw mut err_len,
        )
    };
    if status == STATUS_OK {
        Ok(handle)
    } else {
        err.truncate(err_len);
        Err((status, String::from_utf8(err).unwrap()))
    }
}

fn aggregate(
    handle: *mut c_void,
    tensor: &str,
    clients: &[&[f32]],
    weights: &[f64],
) -> (i32, Vec<f32>) {
    let len = clients[0].len();
    let global = vec![0f32; len];
    let mut out = global.clone();
    let ptrs: Vec<*const f32> = clients.iter().map(|c| c.as_ptr()).collect();
    // SAFETY: buffers are live, `len` long, and `out` is distinct from the inputs.
    let status = unsafe {
        (desc().aggregator.aggregate.unwrap())(
            handle,
            1,
            tensor.as_ptr(),
            tensor.len(),
            global.as_ptr(),
            len,
            ptrs.len(),
            ptrs.as_ptr(),
            weights.as_ptr(),
            out.as_mut_ptr(),
        )
    };
    (status, out)
}

fn last_error(handle: *mut c_void) -> String {
    let mut buf = vec![0u8; 8];
    // SAFETY: `buf` holds `buf.len()` bytes; the handle is live.
    let full =
        unsafe { (desc().aggregator.last_error.unwrap())(handle, buf.as_mut_ptr(), buf.len()) };
    if full > buf.len() {
        buf.resize(full, 0);
        // SAFETY: as above, with the larger buffer.
        unsafe { (desc().aggregator.last_error.unwrap())(handle, buf.as_mut_ptr(), buf.len()) };
    }
    buf.truncate(full);
    String::from_utf8(buf).unwrap()
}

fn destroy(handle: *mut c_void) {
    // SAFETY: the handle came from `create` and is not used afterwards.
    unsafe { (desc().aggregator.destroy.unwrap())(handle) };
}

#[test]
fn descriptor_carries_version_size_kind_and_name() {
    let d = desc();
    assert_eq!(d.abi_version, FEDSA_PLUGIN_ABI_VERSION);
    assert_eq!(
        d.table_size as usize,
        std::mem::size_of::<PluginDescriptor>()
    );
    assert_eq!(d.kind, KIND_AGGREGATOR);
    // SAFETY: the name is a `'static` str.
    let name = unsafe { std::slice::from_raw_parts(d.name.ptr, d.name.len) };
    assert_eq!(name, b"counting");
    assert_eq!(
        FEDSA_PLUGIN_SYMBOL, "fedsa_plugin_v1",
        "the macro's static has this name"
    );
    assert!(d.adapter.spec_text.is_none());
    assert!(
        d.aggregate_module.is_none(),
        "no module entry without MODULE_RULE"
    );
}

#[test]
fn aggregate_runs_and_state_round_trips() {
    let h = create("scale = 2.0\n").unwrap();
    let (status, out) = aggregate(h, "w", &[&[1.0, 2.0], &[3.0, 6.0]], &[0.25, 0.75]);
    assert_eq!(status, STATUS_OK);
    assert_eq!(out, [2.0 * 2.5, 2.0 * 5.0]);

    let save = desc().aggregator.save_state.unwrap();
    let mut len = 0usize;
    // SAFETY: capacity 0 with a null buffer asks for the length only.
    assert_eq!(
        unsafe { save(h, std::ptr::null_mut(), 0, &raw mut len) },
        STATUS_OK
    );
    assert_eq!(len, 4);
    let mut bytes = vec![0u8; len];
    // SAFETY: `bytes` holds `len` bytes.
    assert_eq!(
        unsafe { save(h, bytes.as_mut_ptr(), len, &raw mut len) },
        STATUS_OK
    );
    assert_eq!(bytes, 1u32.to_le_bytes());

    let fresh = create("").unwrap();
    let load = desc().aggregator.load_state.unwrap();
    // SAFETY: `bytes` is live for the call.
    assert_eq!(
        unsafe { load(fresh, bytes.as_ptr(), bytes.len()) },
        STATUS_OK
    );
    // SAFETY: a 3-byte slice of a live buffer.
    assert_eq!(unsafe { load(fresh, bytes.as_ptr(), 3) }, STATUS_ERROR);
    assert_eq!(last_error(fresh), "need 4 bytes");
    destroy(fresh);
    destroy(h);
}

#[test]
fn bad_options_come_back_as_text() {
    let (status, text) = create("scale = true\n").unwrap_err();
    assert_eq!(status, STATUS_ERROR);
    assert!(
        text.starts_with("strategy.aggregator_options.scale: expected a number"),
        "{text}"
    );
    let (_, text) = create("sacle = 1").unwrap_err();
    assert!(text.contains("unknown option (known: scale)"), "{text}");
}

#[test]
fn a_panic_is_caught_reported_and_poisons_the_instance() {
    let h = create("").unwrap();
    let (status, _) = aggregate(h, "refuse", &[&[1.0]], &[1.0]);
    assert_eq!(status, STATUS_ERROR);
    assert_eq!(last_error(h), "refused on purpose");

    let (status, _) = aggregate(h, "boom", &[&[1.0]], &[1.0]);
    assert_eq!(status, STATUS_PANIC);
    assert_eq!(last_error(h), "panicked: asked to explode");

    let (status, _) = aggregate(h, "w", &[&[1.0]], &[1.0]);
    assert_eq!(status, STATUS_ERROR);
    assert!(last_error(h).contains("earlier call panicked"));
    destroy(h);
}

struct Spec;

impl crate::AdapterSpecSource for Spec {
    fn spec_text() -> String {
        "name = \"tiny\"".into()
    }
}

#[test]
fn adapter_spec_text_is_copied_with_its_length() {
    let d = PluginDescriptor::adapter::<Spec>("tiny");
    let f = d.adapter.spec_text.unwrap();
    let mut len = 0usize;
    let mut buf = [0u8; 4];
    // SAFETY: `buf` holds 4 bytes.
    assert_eq!(
        unsafe { f(buf.as_mut_ptr(), buf.len(), &raw mut len) },
        STATUS_OK
    );
    assert_eq!(len, 13);
    assert_eq!(&buf, b"name");
    assert!(d.aggregator.create.is_none());
}

/// A module rule that records what it saw: new `A` = the weighted mean of the clients' `A`
/// plus the round, new `B` = client ids and example counts and scale laid out in order. Keeps
/// module `keep`, refuses `refuse`, panics on `boom`.
struct Recording;

impl AggregatorPlugin for Recording {
    const MODULE_RULE: bool = true;

    fn new(_config: &str) -> Result<Self, String> {
        Ok(Self)
    }

    fn aggregate(
        &mut self,
        _round: u64,
        _tensor: &str,
        _global: &[f32],
        _clients: &[&[f32]],
        _weights: &[f64],
        _out: &mut [f32],
    ) -> Result<(), String> {
        Ok(())
    }

    fn aggregate_module(
        &mut self,
        round: u64,
        module: &ModuleFactors<'_>,
        clients: &[ClientFactors<'_>],
        out_a: &mut [f32],
        out_b: &mut [f32],
    ) -> Result<ModuleOutcome, String> {
        match module.name {
            "keep" => return Ok(ModuleOutcome::Kept),
            "refuse" => return Err(format!("refused `{}`", module.name)),
            "boom" => panic!("module rule exploded"),
            _ => {}
        }
        assert_eq!(out_a, module.global_a, "out_a starts as the global A");
        assert_eq!(out_b, module.global_b, "out_b starts as the global B");
        assert_eq!(
            (module.rank, module.in_features, module.out_features),
            (1, 2, 3)
        );
        for (j, o) in out_a.iter_mut().enumerate() {
            let mean: f64 = clients.iter().map(|c| c.weight * f64::from(c.a[j])).sum();
            *o = mean as f32 + round as f32;
        }
        out_b[0] = clients[0].client as f32 + 10.0 * clients[1].client as f32;
        out_b[1] = clients[0].num_examples as f32 + 10.0 * clients[1].num_examples as f32;
        out_b[2] = module.scale as f32 + clients[1].b[2];
        Ok(ModuleOutcome::Replaced)
    }
}

/// What `export_aggregator!(Recording, "recording")` would export (the symbol is taken by
/// `Counting` in this test binary).
static RECORDING: PluginDescriptor = PluginDescriptor::aggregator::<Recording>("recording");

/// Calls the module entry of `d` for a module `[r = 1, in = 2, out = 3]` and two clients;
/// returns the status, the outputs and the keep flag.
fn call_module(
    d: &PluginDescriptor,
    handle: *mut c_void,
    module: &str,
) -> (i32, Vec<f32>, Vec<f32>, u32) {
    let global_a = [0.5f32, -0.5];
    let global_b = [1.0f32, 2.0, 3.0];
    let a = [[1.0f32, 2.0], [3.0, 6.0]];
    let b = [[0.0f32; 3], [0.0, 0.0, 7.0]];
    let ids = [4u64, 2];
    let counts = [1u64, 3];
    let weights = [0.25f64, 0.75];
    let ptrs_a: Vec<*const f32> = a.iter().map(|x| x.as_ptr()).collect();
    let ptrs_b: Vec<*const f32> = b.iter().map(|x| x.as_ptr()).collect();
    let args = ModuleArgs {
        round: 3,
        module: StrRef {
            ptr: module.as_ptr(),
            len: module.len(),
        },
        scale: 0.5,
        rank: 1,
        in_features: 2,
        out_features: 3,
        global_a: global_a.as_ptr(),
        global_b: global_b.as_ptr(),
        n_clients: 2,
        client_ids: ids.as_ptr(),
        num_examples: counts.as_ptr(),
        weights: weights.as_ptr(),
        clients_a: ptrs_a.as_ptr(),
        clients_b: ptrs_b.as_ptr(),
    };
    let mut out_a = global_a.to_vec();
    let mut out_b = global_b.to_vec();
    let mut keep = 99u32;
    // SAFETY: every buffer is live and of the length `args` states; the outputs are distinct.
    let status = unsafe {
        (d.aggregate_module.unwrap())(
            handle,
            &raw const args,
            out_a.as_mut_ptr(),
            out_b.as_mut_ptr(),
            &raw mut keep,
        )
    };
    (status, out_a, out_b, keep)
}

#[test]
fn a_module_rule_gets_every_clients_factors_and_writes_both_outputs() {
    let d = &RECORDING;
    assert_eq!(d.abi_version, 2);
    assert!(d.aggregate_module.is_some(), "MODULE_RULE fills the entry");
    let mut handle = std::ptr::null_mut();
    let mut err_len = 0usize;
    // SAFETY: an empty config, a place for the handle, no error buffer.
    let status = unsafe {
        (d.aggregator.create.unwrap())(
            std::ptr::null(),
            0,
            &raw mut handle,
            std::ptr::null_mut(),
            0,
            &raw mut err_len,
        )
    };
    assert_eq!(status, STATUS_OK);

    let (status, a, b, keep) = call_module(d, handle, "layer.0");
    assert_eq!((status, keep), (STATUS_OK, MODULE_REPLACED));
    // 0.25 * [1, 2] + 0.75 * [3, 6] + round 3.
    assert_eq!(a, [2.5 + 3.0, 5.0 + 3.0]);
    assert_eq!(b, [4.0 + 20.0, 1.0 + 30.0, 0.5 + 7.0]);

    let (status, a, b, keep) = call_module(d, handle, "keep");
    assert_eq!((status, keep), (STATUS_OK, MODULE_KEPT));
    assert_eq!((a, b), (vec![0.5, -0.5], vec![1.0, 2.0, 3.0]));

    let last = |h| {
        let mut buf = vec![0u8; 256];
        // SAFETY: `buf` holds 256 bytes; the handle is live.
        let n = unsafe { (d.aggregator.last_error.unwrap())(h, buf.as_mut_ptr(), buf.len()) };
        buf.truncate(n);
        String::from_utf8(buf).unwrap()
    };
    let (status, _, _, keep) = call_module(d, handle, "refuse");
    assert_eq!((status, keep), (STATUS_ERROR, 99), "no flag on failure");
    assert_eq!(last(handle), "refused `refuse`");

    let (status, _, _, _) = call_module(d, handle, "boom");
    assert_eq!(status, STATUS_PANIC);
    assert_eq!(last(handle), "panicked: module rule exploded");
    let (status, _, _, _) = call_module(d, handle, "layer.0");
    assert_eq!(status, STATUS_ERROR, "poisoned after the panic");
    // SAFETY: the handle came from `create` and is not used afterwards.
    unsafe { (d.aggregator.destroy.unwrap())(handle) };
}

#[test]
fn null_module_arguments_are_refused_not_read() {
    let d = &RECORDING;
    let mut handle = std::ptr::null_mut();
    // SAFETY: an empty config and a place for the handle.
    let status = unsafe {
        (d.aggregator.create.unwrap())(
            std::ptr::null(),
            0,
            &raw mut handle,
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(status, STATUS_OK);
    let f = d.aggregate_module.unwrap();
    // SAFETY: null arguments are allowed and refused.
    let status = unsafe {
        f(
            handle,
            std::ptr::null(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(status, STATUS_ERROR);
    let name = "m";
    let args = ModuleArgs {
        round: 1,
        module: StrRef {
            ptr: name.as_ptr(),
            len: name.len(),
        },
        scale: 1.0,
        rank: 1,
        in_features: 1,
        out_features: 1,
        global_a: std::ptr::null(),
        global_b: std::ptr::null(),
        n_clients: 0,
        client_ids: std::ptr::null(),
        num_examples: std::ptr::null(),
        weights: std::ptr::null(),
        clients_a: std::ptr::null(),
        clients_b: std::ptr::null(),
    };
    let mut keep = 0u32;
    // SAFETY: `args` is live; its null buffers must be refused before any read.
    let status = unsafe {
        f(
            handle,
            &raw const args,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &raw mut keep,
        )
    };
    assert_eq!(status, STATUS_ERROR);
    // SAFETY: the handle came from `create` and is not used afterwards.
    unsafe { (d.aggregator.destroy.unwrap())(handle) };
}

#[test]
fn a_module_rule_without_its_method_says_so() {
    struct Forgot;
    impl AggregatorPlugin for Forgot {
        const MODULE_RULE: bool = true;
        fn new(_config: &str) -> Result<Self, String> {
            Ok(Self)
        }
        fn aggregate(
            &mut self,
            _round: u64,
            _tensor: &str,
            _global: &[f32],
            _clients: &[&[f32]],
            _weights: &[f64],
            _out: &mut [f32],
        ) -> Result<(), String> {
            Ok(())
        }
    }
    let module = ModuleFactors {
        name: "m",
        scale: 1.0,
        rank: 0,
        in_features: 0,
        out_features: 0,
        global_a: &[],
        global_b: &[],
    };
    let e = Forgot
        .aggregate_module(1, &module, &[], &mut [], &mut [])
        .unwrap_err();
    assert!(e.contains("does not implement aggregate_module"), "{e}");
    assert!(
        PluginDescriptor::aggregator::<Forgot>("f")
            .aggregate_module
            .is_some()
    );
}
