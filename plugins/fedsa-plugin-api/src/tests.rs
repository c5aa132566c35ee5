//! Drives the generated entry points exactly as a host would: through the exported
//! descriptor's function pointers, with raw buffers.

use std::ffi::c_void;

use crate::{
    AggregatorPlugin, FEDSA_PLUGIN_ABI_VERSION, FEDSA_PLUGIN_SYMBOL, KIND_AGGREGATOR, Options,
    PluginDescriptor, STATUS_ERROR, STATUS_OK, STATUS_PANIC,
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
