//! Turning candle's errors into fedsa's: every backend failure says what fedsa was doing.

use fedsa_core::Error;

/// Adds fedsa context to a candle result.
pub(crate) trait Context<T> {
    /// Wraps the error as [`Error::Backend`] with `context` (what was being done).
    fn ctx(self, context: &str) -> fedsa_core::Result<T>;
}

impl<T> Context<T> for candle_core::Result<T> {
    fn ctx(self, context: &str) -> fedsa_core::Result<T> {
        self.map_err(|e| Error::backend(context, e))
    }
}
