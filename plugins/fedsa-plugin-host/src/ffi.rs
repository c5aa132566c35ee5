//! Reading variable-length output from a plugin: text and bytes come back through a buffer the
//! host owns, with the full length reported so the host can grow the buffer and ask again.

use std::collections::TryReserveError;

/// Initial buffer for error text; longer messages take a second call.
const FIRST_TRY: usize = 1024;

/// Calls `fill(buf, cap)`, which returns the full length of its output, growing the buffer
/// once when the first try was too small. `fill` must produce the same output both times.
pub fn read_grown(
    mut fill: impl FnMut(*mut u8, usize) -> usize,
) -> Result<Vec<u8>, TryReserveError> {
    let mut buf = vec![0u8; FIRST_TRY];
    let full = fill(buf.as_mut_ptr(), buf.len());
    if full > buf.len() {
        buf.try_reserve_exact(full - buf.len())?;
        buf.resize(full, 0);
        let again = fill(buf.as_mut_ptr(), buf.len());
        buf.truncate(again.min(full));
    } else {
        buf.truncate(full);
    }
    Ok(buf)
}

/// Text from a plugin, tolerating invalid UTF-8 (it is only ever shown to a person).
pub fn read_text(fill: impl FnMut(*mut u8, usize) -> usize) -> String {
    match read_grown(fill) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => "(the plugin reported an error text too large to read)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_once_for_long_output() {
        let long = "x".repeat(3000);
        let mut calls = 0;
        let text = read_text(|buf, cap| {
            calls += 1;
            let n = long.len().min(cap);
            // SAFETY: `buf` is valid for `cap >= n` bytes (read_grown's contract with `fill`).
            unsafe { std::ptr::copy_nonoverlapping(long.as_ptr(), buf, n) };
            long.len()
        });
        assert_eq!(text, long);
        assert_eq!(calls, 2);
    }
}
