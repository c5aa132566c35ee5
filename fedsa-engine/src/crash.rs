//! Crash points, for the tests that kill a run at a chosen moment and resume it: with
//! `FEDSA_CRASH_AT=<point>` set, the process aborts at that point, leaving the run folder as a
//! power cut or SIGKILL would (no destructors, no flush). Polling the folder from outside
//! cannot hit a moment as short as a checkpoint's rename; these can. Unset, a point costs one
//! environment lookup per round.
//!
//! The points: `run-started` (run folder written, before round 1), `round-N-recorded`
//! (metrics of round N written, its checkpoint not begun), `checkpoint-N-written` (every file
//! in the temporary folder, before the rename), `checkpoint-N-renamed` (before `LATEST` names
//! it), `checkpoint-N-done` (between rounds).

/// The environment variable naming the point to crash at.
pub const CRASH_VAR: &str = "FEDSA_CRASH_AT";

/// Aborts the process when `point` is the one [`CRASH_VAR`] names.
pub fn point(point: &str) {
    if std::env::var_os(CRASH_VAR).is_some_and(|v| v == point) {
        eprintln!("{CRASH_VAR}: crashing at {point}");
        std::process::abort();
    }
}
