//! One client's causal language model: the shared frozen decoder (an `Arc`) and this client's
//! adapters. There is no head: the trainable tensors are the adapter's alone.

use std::sync::Arc;

use candle_core::{D, Tensor};

use fedsa_core::config::AdapterConfig;
use fedsa_core::{Error, Result, SequenceBatch};

use crate::adapter::{AdapterSet, AdapterSpec, ForwardCtx};
use crate::backend::Context;
use crate::decoder::forward::{DecoderInput, KvCache};
use crate::decoder::generate::GenerateOptions;
use crate::decoder::model::DecoderModel;
use crate::training::{ParamStore, Track};

/// Summed next-token statistics over the positions a loss mask selects.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TokenStats {
    /// Σ −log p(target).
    pub nll: f64,
    /// Targets whose most likely token is the target.
    pub correct: usize,
    pub targets: usize,
}

/// Base + adapters for one client.
pub struct DecoderClient {
    base: Arc<DecoderModel>,
    adapters: AdapterSet,
    params: ParamStore,
}

impl DecoderClient {
    /// Builds the adapters; initial values depend on `seed` only (not the client).
    pub fn new(
        base: Arc<DecoderModel>,
        spec: &AdapterSpec,
        adapter: &AdapterConfig,
        seed: u64,
    ) -> Result<DecoderClient> {
        let (adapters, initial) = AdapterSet::build_on(
            spec,
            adapter,
            &base.modules(),
            base.device(),
            seed,
            Arc::clone(base.deltas()),
        )?;
        let params = ParamStore::new(
            initial
                .into_iter()
                .map(|p| (p.name, p.role, p.value))
                .collect(),
        )?;
        Ok(DecoderClient {
            base,
            adapters,
            params,
        })
    }

    pub fn base(&self) -> &Arc<DecoderModel> {
        &self.base
    }

    pub fn adapters(&self) -> &AdapterSet {
        &self.adapters
    }

    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    pub fn params_mut(&mut self) -> &mut ParamStore {
        &mut self.params
    }

    /// The adapted decoder's final hidden states (see [`DecoderModel::forward`]).
    pub fn hidden(
        &self,
        input: &DecoderInput,
        cache: Option<&mut KvCache>,
        ctx: &mut ForwardCtx<'_>,
    ) -> Result<Tensor> {
        self.hidden_tracked(input, cache, ctx, Track::Trained)
    }

    fn hidden_tracked(
        &self,
        input: &DecoderInput,
        cache: Option<&mut KvCache>,
        ctx: &mut ForwardCtx<'_>,
        track: Track,
    ) -> Result<Tensor> {
        let params = &self.params;
        let lookup = |name: &str| params.value(name, track);
        let adapters = &self.adapters;
        let mut adapt = |layer, module, x: &Tensor, base: Tensor, w0: &Tensor| {
            adapters.forward(layer, module, x, base, w0, &lookup, ctx)
        };
        self.base.forward(input, cache, &mut adapt)
    }

    /// Logits `[n, vocab]` at the `n` positions whose loss mask is set, and their targets.
    fn target_logits(
        &self,
        batch: &SequenceBatch,
        ctx: &mut ForwardCtx<'_>,
        track: Track,
    ) -> Result<(Tensor, Tensor)> {
        let positions: Vec<u32> = (0..batch.loss_mask.len() as u32)
            .filter(|&i| batch.loss_mask[i as usize] > 0.0)
            .collect();
        if positions.is_empty() {
            return Err(Error::backend(
                "language-model loss",
                "the batch has no response tokens to predict",
            ));
        }
        let targets: Vec<u32> = positions
            .iter()
            .map(|&i| batch.targets[i as usize])
            .collect();
        let input = self.base.batch_inputs(batch)?;
        let hidden = self.hidden_tracked(&input, None, ctx, track)?;
        let dev = hidden.device().clone();
        let n = positions.len();
        // Only the selected rows reach the vocabulary-sized head: it dominates the cost.
        let rows = Tensor::from_vec(positions, n, &dev)
            .and_then(|idx| {
                hidden
                    .reshape((batch.batch * batch.seq_len, self.base.config().hidden_size))?
                    .index_select(&idx, 0)
            })
            .ctx("selecting target positions")?;
        let logits = self.base.logits(&rows)?;
        let targets = Tensor::from_vec(targets, n, &dev).ctx("targets to device")?;
        Ok((logits, targets))
    }

    /// Mean cross-entropy over the response positions (`loss_mask` 1), a scalar.
    pub fn loss(&self, batch: &SequenceBatch, ctx: &mut ForwardCtx<'_>) -> Result<Tensor> {
        let (logits, targets) = self.target_logits(batch, ctx, Track::Trained)?;
        candle_nn::loss::cross_entropy(&logits, &targets).ctx("language-model loss")
    }

    /// Summed loss and argmax hits over the response positions, in eval mode.
    pub fn token_stats(&self, batch: &SequenceBatch) -> Result<TokenStats> {
        // Nothing tracked: no graph is recorded, and the host kernels take every op.
        let (logits, targets) = self.target_logits(batch, &mut ForwardCtx::eval(), Track::None)?;
        let picked = candle_nn::ops::log_softmax(&logits, D::Minus1)
            .and_then(|lp| lp.gather(&targets.unsqueeze(1)?, 1))
            .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
            .ctx("token log-probabilities")?;
        let best = logits
            .argmax(D::Minus1)
            .and_then(|t| t.to_vec1::<u32>())
            .ctx("token predictions")?;
        let targets = targets.to_vec1::<u32>().ctx("reading targets")?;
        Ok(TokenStats {
            nll: picked.iter().map(|v| -f64::from(*v)).sum(),
            correct: best.iter().zip(&targets).filter(|(b, t)| b == t).count(),
            targets: targets.len(),
        })
    }

    /// The tokens generated after `prompt` with this client's adapters (eval mode).
    pub fn generate(&self, prompt: &[u32], options: &GenerateOptions) -> Result<Vec<u32>> {
        let mut one = self.generate_batch(&[prompt], options)?;
        Ok(one.pop().unwrap_or_default())
    }

    /// [`DecoderClient::generate`] for every prompt, as one batch (see
    /// [`DecoderModel::generate_batch`]).
    pub fn generate_batch(
        &self,
        prompts: &[&[u32]],
        options: &GenerateOptions,
    ) -> Result<Vec<Vec<u32>>> {
        let params = &self.params;
        // Plain values: generation is never differentiated, so no graph is kept.
        let lookup = |name: &str| params.value(name, Track::None);
        let adapters = &self.adapters;
        let mut ctx = ForwardCtx::eval();
        let mut adapt = |layer, module, x: &Tensor, base: Tensor, w0: &Tensor| {
            adapters.forward(layer, module, x, base, w0, &lookup, &mut ctx)
        };
        self.base.generate_batch(prompts, options, &mut adapt)
    }
}
