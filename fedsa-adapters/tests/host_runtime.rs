//! `tune_host_runtime` parks candle's idle elementwise workers unless the user chose a spin
//! limit. One test in its own binary: it changes the process environment.

const VAR: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";

#[test]
fn the_spin_limit_is_zero_unless_the_environment_sets_one() {
    // SAFETY: the only test in this binary, so no other thread reads the environment.
    unsafe { std::env::remove_var(VAR) };
    fedsa_adapters::tune_host_runtime();
    assert_eq!(std::env::var(VAR).as_deref(), Ok("0"));
    // SAFETY: as above.
    unsafe { std::env::set_var(VAR, "5000") };
    fedsa_adapters::tune_host_runtime();
    assert_eq!(
        std::env::var(VAR).as_deref(),
        Ok("5000"),
        "a user's setting is kept"
    );
}
