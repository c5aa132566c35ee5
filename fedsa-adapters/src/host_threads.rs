//! Keeping candle's elementwise workers from spinning while the matrix products run.
//!
//! candle runs its elementwise ops on a pool of its own (the "barrier pool") and its matrix
//! products on rayon's. After each elementwise op a barrier-pool worker spins for up to
//! `CANDLE_BARRIER_POOL_SPIN_LIMIT` (default 25,000) pause instructions waiting for the next
//! one, about half a millisecond here, and a training step alternates the two kinds of work
//! hundreds of times: on two cores the spinning worker takes a core from the product that
//! follows. With the limit at 0 the worker parks at once and is woken for the next op. At
//! 16 x 32 that made the `train_step` bench's step about 15% faster (0.360 -> 0.305 s, median of
//! four alternated runs); at 16 x 64 and 32 x 64, where the products dominate, no change was
//! measurable.

/// The barrier pool's spin limit when the user has not set one.
const SPIN_LIMIT: &str = "0";

/// Sets `CANDLE_BARRIER_POOL_SPIN_LIMIT` to 0 unless the environment already sets it; candle
/// reads it when its pool starts (the first elementwise op). Call first thing in `main`,
/// before other threads exist.
pub(crate) fn park_idle_workers() {
    const VAR: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    if std::env::var_os(VAR).is_none() {
        // SAFETY: called at the start of `main`, before this process starts other threads, so
        // nothing reads the environment concurrently.
        unsafe { std::env::set_var(VAR, SPIN_LIMIT) };
    }
}
