//! Autoregressive generation from a prompt, with a per-call key/value cache (or, as a
//! reference, a full recompute at every step); adapters run in both paths through the hook.

use fedsa_core::{Error, Result, SeededRng};

use crate::adapter::AdaptFn;
use crate::backend::Context;
use crate::decoder::forward::KvCache;
use crate::decoder::model::DecoderModel;
use crate::decoder::sampling::{Sampling, argmax, sample_top_p};

/// What and how much to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// Generation stops at any of these ids (which is not returned); usually the model's EOS.
    pub stop_ids: Vec<u32>,
    /// Reuse the keys and values of earlier positions (true), or recompute the whole sequence
    /// at every step (false: slower, a reference for tests).
    pub use_cache: bool,
}

impl GenerateOptions {
    /// Greedy decoding with the cache, stopping at `stop_ids`.
    pub fn greedy(max_new_tokens: usize, stop_ids: Vec<u32>) -> GenerateOptions {
        GenerateOptions {
            max_new_tokens,
            sampling: Sampling::Greedy,
            stop_ids,
            use_cache: true,
        }
    }
}

impl DecoderModel {
    /// The tokens generated after `prompt` (without the prompt and the stop token). Stops at a
    /// stop id, after `max_new_tokens`, or at the end of the position table.
    pub fn generate(
        &self,
        prompt: &[u32],
        options: &GenerateOptions,
        adapt: &mut AdaptFn<'_>,
    ) -> Result<Vec<u32>> {
        let positions = self.rotary.len();
        if prompt.is_empty() || prompt.len() > positions {
            return Err(Error::backend(
                "generation",
                format!(
                    "a prompt of {} tokens (the model takes 1 to {positions})",
                    prompt.len()
                ),
            ));
        }
        let mut rng = match options.sampling {
            Sampling::Greedy => None,
            Sampling::TopP { seed, .. } => Some(SeededRng::new(seed)),
        };
        // A token generated at the last position has no room to be fed back: it is the last.
        let limit = options.max_new_tokens.min(positions + 1 - prompt.len());
        let mut cache = options.use_cache.then(|| KvCache::new(self));
        let mut tokens = prompt.to_vec();
        let mut fresh = prompt.len();
        let mut out = Vec::new();
        while out.len() < limit {
            let feed = match cache {
                Some(_) => &tokens[tokens.len() - fresh..],
                None => &tokens[..],
            };
            let input = self.inputs(feed, None, 1, feed.len())?;
            let hidden = self.forward(&input, cache.as_mut(), adapt)?;
            let last = hidden.narrow(1, feed.len() - 1, 1).ctx("last position")?;
            let row = self
                .logits(&last)?
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .ctx("reading logits")?;
            let id = match (&options.sampling, rng.as_mut()) {
                (
                    Sampling::TopP {
                        temperature, top_p, ..
                    },
                    Some(rng),
                ) => sample_top_p(&row, *temperature, *top_p, rng),
                _ => argmax(&row),
            } as u32;
            if options.stop_ids.contains(&id) {
                break;
            }
            out.push(id);
            tokens.push(id);
            fresh = 1;
        }
        Ok(out)
    }
}
