//! The plugin side of the boundary's hygiene: turning a caught panic into text, and copying text
//! or bytes into a buffer the host owns. Every entry point goes through these helpers.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::abi::{STATUS_ERROR, STATUS_OK, STATUS_PANIC};

/// The outcome of one call into plugin code: its result, or the text of a caught panic.
pub(crate) enum Outcome<T> {
    Ok(T),
    Err(String),
    Panic(String),
}

impl<T> Outcome<T> {
    pub(crate) fn status(&self) -> i32 {
        match self {
            Outcome::Ok(_) => STATUS_OK,
            Outcome::Err(_) => STATUS_ERROR,
            Outcome::Panic(_) => STATUS_PANIC,
        }
    }
}

/// Runs `f`, catching a panic so it never unwinds into the host (which would abort it).
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Outcome<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Outcome::Ok(v),
        Ok(Err(e)) => Outcome::Err(e),
        Err(payload) => Outcome::Panic(panic_text(payload.as_ref())),
    }
}

/// The message of a panic payload (`panic!("..")` carries a `&str` or a `String`).
pub(crate) fn panic_text(payload: &(dyn Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string());
    format!("panicked: {message}")
}

/// Copies as much of `bytes` as fits into the host's `buf` of `cap` bytes; returns the full
/// length so the host can retry with a larger buffer.
///
/// # Safety
/// `buf` must be null or valid for writes of `cap` bytes.
pub(crate) unsafe fn copy_out(bytes: &[u8], buf: *mut u8, cap: usize) -> usize {
    let n = bytes.len().min(cap);
    if n > 0 && !buf.is_null() {
        // SAFETY: `buf` is valid for `cap >= n` bytes (caller contract) and cannot overlap a
        // Rust-owned `bytes`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf, n) };
    }
    bytes.len()
}

/// A slice from a pointer and a length, tolerating a null or dangling pointer when `len` is 0.
///
/// # Safety
/// When `len > 0`, `ptr` must be valid for reads of `len` values for `'a`.
pub(crate) unsafe fn slice_from<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if len == 0 || ptr.is_null() {
        &[]
    } else {
        // SAFETY: non-null and valid for `len` reads (caller contract).
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// UTF-8 text from a pointer and a length.
///
/// # Safety
/// As for [`slice_from`].
pub(crate) unsafe fn str_from<'a>(ptr: *const u8, len: usize) -> Result<&'a str, String> {
    // SAFETY: forwarded caller contract.
    let bytes = unsafe { slice_from(ptr, len) };
    std::str::from_utf8(bytes).map_err(|e| format!("text from the host is not UTF-8: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_text_and_errors_stay_errors() {
        let out: Outcome<()> = guarded(|| panic!("boom {}", 7));
        assert!(matches!(&out, Outcome::Panic(m) if m == "panicked: boom 7"));
        assert_eq!(out.status(), STATUS_PANIC);
        let out: Outcome<()> = guarded(|| Err("bad".into()));
        assert!(matches!(&out, Outcome::Err(m) if m == "bad"));
        assert_eq!(guarded(|| Ok(3)).status(), STATUS_OK);
    }

    #[test]
    fn copy_out_truncates_and_reports_the_full_length() {
        let mut buf = [0u8; 4];
        // SAFETY: `buf` holds 4 bytes.
        let n = unsafe { copy_out(b"abcdef", buf.as_mut_ptr(), buf.len()) };
        assert_eq!(n, 6);
        assert_eq!(&buf, b"abcd");
        // SAFETY: a null buffer with capacity 0 is allowed.
        assert_eq!(unsafe { copy_out(b"xy", std::ptr::null_mut(), 0) }, 2);
    }
}
