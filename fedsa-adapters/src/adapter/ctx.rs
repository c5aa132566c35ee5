//! What a forward pass tells the adapters besides the tensors: train or eval mode, and the
//! client's RNG for dropout. Its own module because the models, the set of adapted layers and
//! the program runner all take it.

use fedsa_core::SeededRng;

/// Train or eval mode, and the client's RNG for dropout.
pub struct ForwardCtx<'r> {
    pub train: bool,
    pub rng: Option<&'r mut SeededRng>,
}

impl ForwardCtx<'_> {
    /// Evaluation: no dropout, no randomness.
    pub fn eval() -> ForwardCtx<'static> {
        ForwardCtx {
            train: false,
            rng: None,
        }
    }
}
