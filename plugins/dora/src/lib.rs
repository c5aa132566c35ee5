//! Adapter plugin: DoRA (Liu et al. 2024, "Weight-Decomposed Low-Rank Adaptation"), registered
//! as `dora`, written in fedsa's adapter spec language (`dora.json`, also usable on its own as
//! `adapter.spec = "plugins/dora/dora.json"`). The host parses and runs the spec in its own
//! candle; no tensor crosses the library boundary.
//!
//! The adapted weight is `W' = m ⊙ (W0 + s·B·A) / ||W0 + s·B·A||`, the norm taken per output
//! row of the `[out, in]` weight (PEFT's `weight_norm`, one value per output feature), with
//! `s = alpha/r`. As in PEFT's `use_dora`:
//! - `m` (`lora_magnitude_vector`, `[out]`) starts at the row norms of `W0`, and `B` at zero, so
//!   the adapted layer starts exactly equal to the frozen one;
//! - the norm is detached (the paper's section 4.3: treating it as a constant saves the memory
//!   of its backward at no loss of accuracy), so `m`, `A` and `B` get gradients through
//!   `m / norm` and `B·A·x` only;
//! - the frozen layer's bias is not rescaled: the output is
//!   `base + (m/norm - 1) ⊙ W0·h + (m/norm) ⊙ s·B·A·h` with `h = dropout(x)`, where `base` is
//!   the frozen layer's output (with its bias). The language has no bias input, so `W0·h` is
//!   computed again rather than recovered as `base - bias`.
//!
//! Roles: `A` is role `a` (shared under FedSA), `B` role `b` (personal). `m` is role `b` too:
//! it divides by the norm of the client's own `W0 + s·B·A`, so it only means something next to
//! that client's personal `B`; averaging it across clients whose `B` differ would rescale each
//! client's directions by magnitudes fitted to other clients' directions. It is also, like `B`,
//! an output-side quantity, the side the FedSA paper finds to be client-specific.

#![forbid(unsafe_code)]

// The same file serves `adapter.spec = "plugins/dora/dora.json"`, so the two cannot drift.
fedsa_plugin_api::export_adapter!("dora", include_str!("../dora.json"));
