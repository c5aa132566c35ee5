//! Generation for several prompts at once: the prompts are left-padded to one width and run
//! through one KV cache, each row at its own positions with its padding hidden, so every row
//! computes what it would alone. A row stops at its own stop id or length and leaves the
//! batch; each keeps its own sampling stream, seeded as a single call's.

use fedsa_core::{Error, Result, SeededRng};

use crate::adapter::AdaptFn;
use crate::backend::Context;
use crate::decoder::forward::KvCache;
use crate::decoder::generate::GenerateOptions;
use crate::decoder::model::DecoderModel;
use crate::decoder::sampling::{Sampling, argmax, sample_top_p};

impl DecoderModel {
    /// What [`DecoderModel::generate`] returns for each prompt, computed as one batch. Without
    /// the cache (`use_cache: false`, the reference path) the prompts run one at a time.
    pub fn generate_batch(
        &self,
        prompts: &[&[u32]],
        options: &GenerateOptions,
        adapt: &mut AdaptFn<'_>,
    ) -> Result<Vec<Vec<u32>>> {
        if !options.use_cache || prompts.len() < 2 {
            return prompts
                .iter()
                .map(|p| self.generate(p, options, adapt))
                .collect();
        }
        let positions = self.rotary.len();
        if let Some((i, p)) = prompts
            .iter()
            .enumerate()
            .find(|(_, p)| p.is_empty() || p.len() > positions)
        {
            return Err(Error::backend(
                "generation",
                format!(
                    "prompt {i} has {} tokens (the model takes 1 to {positions})",
                    p.len()
                ),
            ));
        }
        let width = prompts.iter().map(|p| p.len()).max().unwrap_or(0);
        let pads: Vec<usize> = prompts.iter().map(|p| width - p.len()).collect();
        // As in a single call: a token generated at the last position is the last.
        let limits: Vec<usize> = prompts
            .iter()
            .map(|p| options.max_new_tokens.min(positions + 1 - p.len()))
            .collect();
        let mut rngs: Vec<Option<SeededRng>> = prompts
            .iter()
            .map(|_| match options.sampling {
                Sampling::Greedy => None,
                Sampling::TopP { seed, .. } => Some(SeededRng::new(seed)),
            })
            .collect();
        let nucleus = match options.sampling {
            Sampling::Greedy => None,
            Sampling::TopP {
                temperature, top_p, ..
            } => Some((temperature, top_p)),
        };
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
        // The padding's ids are never seen (their keys are hidden); any valid id will do.
        let mut feed: Vec<u32> = prompts
            .iter()
            .flat_map(|p| std::iter::repeat_n(p[0], width - p.len()).chain(p.iter().copied()))
            .collect();
        let mut live: Vec<usize> = (0..prompts.len()).collect();
        let mut cache = KvCache::left_padded(self, pads);
        // Rows with nothing to generate leave before the first step.
        let first: Vec<usize> = (0..live.len()).filter(|&i| limits[live[i]] > 0).collect();
        if first.len() < live.len() {
            feed = first
                .iter()
                .flat_map(|&i| feed[i * width..(i + 1) * width].to_vec())
                .collect();
            cache.keep_rows(&first)?;
            live = first.iter().map(|&i| live[i]).collect();
        }
        let mut seq = width;
        while !live.is_empty() {
            let input = self.inputs(&feed, None, live.len(), seq)?;
            let hidden = self.forward(&input, Some(&mut cache), adapt)?;
            let last = hidden.narrow(1, seq - 1, 1).ctx("last position")?;
            let rows = self
                .logits(&last)?
                .squeeze(1)
                .and_then(|l| l.to_vec2::<f32>())
                .ctx("reading logits")?;
            let mut kept = Vec::with_capacity(live.len());
            let mut next = Vec::with_capacity(live.len());
            for (i, row) in rows.iter().enumerate() {
                let r = live[i];
                let id = match (nucleus, rngs[r].as_mut()) {
                    (Some((temperature, top_p)), Some(rng)) => {
                        sample_top_p(row, temperature, top_p, rng)
                    }
                    _ => argmax(row),
                } as u32;
                if options.stop_ids.contains(&id) {
                    continue;
                }
                out[r].push(id);
                if out[r].len() < limits[r] {
                    kept.push(i);
                    next.push(id);
                }
            }
            if kept.len() < live.len() && !kept.is_empty() {
                cache.keep_rows(&kept)?;
            }
            live = kept.iter().map(|&i| live[i]).collect();
            feed = next;
            seq = 1;
        }
        Ok(out)
    }
}
