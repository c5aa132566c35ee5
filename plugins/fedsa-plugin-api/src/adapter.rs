//! Adapter plugins are declarative: they hand the host an `AdapterSpec` as text, and the host
//! builds and runs it in its own candle. This is the one entry point they need.

use crate::abi::{KIND_ADAPTER, PluginDescriptor};
use crate::guard::{Outcome, copy_out, guarded};

/// Where an adapter plugin's spec text comes from; [`export_adapter!`](crate::export_adapter)
/// implements it for a hidden type, so authors only write the text (or a function making it).
pub trait AdapterSpecSource: 'static {
    /// The spec, as text the host parses into an `AdapterSpec`.
    fn spec_text() -> String;
}

/// [`SpecTextFn`](crate::abi::SpecTextFn) for `S`: runs `S::spec_text` (catching a panic) and
/// copies its text, or the error, into the host's buffer.
///
/// # Safety
/// `out` must be valid for `cap` bytes and `out_len` for one write.
pub unsafe extern "C" fn spec_text<S: AdapterSpecSource>(
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> i32 {
    let outcome = guarded(|| Ok(S::spec_text()));
    let status = outcome.status();
    let text = match outcome {
        Outcome::Ok(t) | Outcome::Err(t) | Outcome::Panic(t) => t,
    };
    // SAFETY: `out` is valid for `cap` bytes (contract).
    let full = unsafe { copy_out(text.as_bytes(), out, cap) };
    if !out_len.is_null() {
        // SAFETY: `out_len` is valid for one write (contract).
        unsafe { *out_len = full };
    }
    status
}

impl PluginDescriptor {
    /// The descriptor of adapter plugin `S`, registered as `name`.
    pub const fn adapter<S: AdapterSpecSource>(name: &'static str) -> Self {
        let mut d = Self::empty(KIND_ADAPTER, name);
        d.adapter.spec_text = Some(spec_text::<S>);
        d
    }
}
