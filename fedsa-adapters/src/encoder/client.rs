//! One client's model: the shared frozen base, this client's adapters and head. The base is an
//! `Arc`: a client costs its adapter and head tensors, not a copy of the encoder.

use std::sync::Arc;

use candle_core::Tensor;

use fedsa_core::config::AdapterConfig;
use fedsa_core::{Batch, Error, Result};

use crate::adapter::{AdapterSet, AdapterSpec, ForwardCtx};
use crate::backend::Context;
use crate::encoder::BaseModel;
use crate::encoder::head::{head_forward, initial_head};
use crate::training::seeded::dropout_mask;
use crate::training::{ParamStore, Track};

/// Base + adapters + head for one client.
pub struct ClientModel {
    base: Arc<BaseModel>,
    adapters: AdapterSet,
    params: ParamStore,
    head_dropout: f64,
}

impl ClientModel {
    /// Builds the adapters and head; initial values depend on `seed` only (not the client).
    pub fn new(
        base: Arc<BaseModel>,
        spec: &AdapterSpec,
        adapter: &AdapterConfig,
        num_labels: usize,
        seed: u64,
    ) -> Result<ClientModel> {
        if num_labels < 2 {
            // The labels come from the data: `data.labels`, or those found in the file.
            return Err(Error::run_config(
                "data.labels",
                format!("a classifier needs at least two labels, got {num_labels}"),
            ));
        }
        let (adapters, mut initial) = AdapterSet::build(spec, adapter, &base, seed)?;
        initial.extend(initial_head(&base, num_labels, seed)?);
        let params = ParamStore::new(
            initial
                .into_iter()
                .map(|p| (p.name, p.role, p.value))
                .collect(),
        )?;
        Ok(ClientModel {
            head_dropout: base.config().head_dropout(),
            base,
            adapters,
            params,
        })
    }

    pub fn base(&self) -> &Arc<BaseModel> {
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

    /// The adapted encoder's sequence output `[batch, seq, hidden]`.
    pub fn encode(&self, batch: &Batch, ctx: &mut ForwardCtx<'_>) -> Result<Tensor> {
        self.run_encoder(batch, ctx, false, Track::Trained)
    }

    /// The adapted encoder's output at the first token, `[batch, 1, hidden]`, without the
    /// last block's work at other positions ([`BaseModel::forward_first_token`]).
    pub fn encode_first_token(&self, batch: &Batch, ctx: &mut ForwardCtx<'_>) -> Result<Tensor> {
        self.run_encoder(batch, ctx, true, Track::Trained)
    }

    fn run_encoder(
        &self,
        batch: &Batch,
        ctx: &mut ForwardCtx<'_>,
        first: bool,
        track: Track,
    ) -> Result<Tensor> {
        let input = self.base.inputs(batch)?;
        let params = &self.params;
        let lookup = |name: &str| params.value(name, track);
        let adapters = &self.adapters;
        let mut adapt = |layer, module, x: &Tensor, base: Tensor, w0: &Tensor| {
            adapters.forward(layer, module, x, base, w0, &lookup, ctx)
        };
        let adapted = |l, m| adapters.adapts(l, m);
        if first {
            self.base.forward_first_token(&input, &mut adapt, &adapted)
        } else {
            self.base.forward_adapted(&input, &mut adapt, &adapted)
        }
    }

    /// Logits `[batch, num_labels]`; dropout only when `ctx.train`. The head reads the first
    /// token, so only that position goes through the last block.
    pub fn forward(&self, batch: &Batch, ctx: &mut ForwardCtx<'_>) -> Result<Tensor> {
        self.forward_tracked(batch, ctx, Track::Trained)
    }

    /// The eval-mode logits with no parameter tracked: no autograd graph is recorded, and
    /// every op may take the host kernels' untracked path (evaluation and prediction).
    pub fn infer(&self, batch: &Batch) -> Result<Tensor> {
        self.forward_tracked(batch, &mut ForwardCtx::eval(), Track::None)
    }

    fn forward_tracked(
        &self,
        batch: &Batch,
        ctx: &mut ForwardCtx<'_>,
        track: Track,
    ) -> Result<Tensor> {
        let sequence = self.run_encoder(batch, ctx, true, track)?;
        let lookup = |name: &str| self.params.value(name, track);
        let p = self.head_dropout;
        let mut drop = |x: &Tensor| -> Result<Tensor> {
            match (&mut ctx.rng, ctx.train && p > 0.0) {
                (Some(rng), true) => {
                    let mask = dropout_mask(rng, x.dims(), p, x.device())?;
                    x.mul(&mask).ctx("head dropout")
                }
                _ => Ok(x.clone()),
            }
        };
        head_forward(self.base.family(), &sequence, &lookup, &mut drop)
    }
}
