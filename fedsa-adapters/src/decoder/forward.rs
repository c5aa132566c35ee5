//! The decoder's forward pass, for training (a whole padded batch) and for generation (new
//! tokens appended to a [`KvCache`], whose rows may be left-padded prompts of different
//! lengths). Attention is causal; padded keys are masked too.
//! Grouped-query attention folds the query heads that share a key/value head into the row
//! dimension, so keys and values are never copied per query head.

use candle_core::Tensor;

use fedsa_core::{Error, Result, SequenceBatch};

use crate::adapter::{AdaptFn, Module};
use crate::backend::Context;
use crate::decoder::model::{DecoderLayer, DecoderModel};
use crate::layers::causal_attention::{causal_bias, grouped_attention};
use crate::layers::{Heads, RowPositions, causal_attention, swiglu};

/// Token ids for one forward call, on the model's device.
pub struct DecoderInput {
    /// `[batch, seq]`.
    pub input_ids: Tensor,
    /// 1 for real tokens, 0 for padding, row-major `[batch, seq]`; `None`: all real.
    pub key_mask: Option<Vec<u32>>,
    pub batch: usize,
    pub seq_len: usize,
}

/// Keys and values of every block for the tokens seen so far (one generation call's state;
/// clients share the base model, never a cache).
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
    /// Per batch row, how many of its first columns are left padding: those keys are hidden
    /// from every query and the row's positions start after them. Empty: no padding.
    pads: Vec<usize>,
}

impl KvCache {
    pub fn new(model: &DecoderModel) -> KvCache {
        Self::left_padded(model, Vec::new())
    }

    /// A cache for a batch whose row `r` starts with `pads[r]` padding tokens.
    pub fn left_padded(model: &DecoderModel, pads: Vec<usize>) -> KvCache {
        KvCache {
            layers: vec![None; model.layers.len()],
            len: 0,
            pads,
        }
    }

    /// Number of positions cached (padding included).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps only the batch rows `rows` (ascending), so finished sequences cost nothing more,
    /// and drops the leading columns that are padding in every row kept (their positions and
    /// masks are relative to each row's padding, so nothing else changes).
    pub fn keep_rows(&mut self, rows: &[usize]) -> Result<()> {
        let pads: Vec<usize> = if self.pads.is_empty() {
            vec![0; rows.len()]
        } else {
            rows.iter().map(|&r| self.pads[r]).collect()
        };
        let cut = pads.iter().copied().min().unwrap_or(0);
        let device = self
            .layers
            .iter()
            .flatten()
            .next()
            .map(|(k, _)| k.device().clone());
        let len = self.len;
        if let Some(device) = device {
            let ids: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
            let index = Tensor::from_vec(ids, rows.len(), &device).ctx("cache rows")?;
            let pick = |t: &Tensor| {
                t.index_select(&index, 0)
                    .and_then(|t| t.narrow(2, cut, len - cut))
                    .and_then(|t| t.contiguous())
                    .ctx("cache rows")
            };
            for slot in &mut self.layers {
                if let Some((k, v)) = slot.as_ref() {
                    *slot = Some((pick(k)?, pick(v)?));
                }
            }
        }
        self.len -= cut;
        self.pads = pads.into_iter().map(|p| p - cut).collect();
        Ok(())
    }

    fn pad(&self, row: usize) -> usize {
        self.pads.get(row).copied().unwrap_or(0)
    }
}

/// Where the new tokens sit: one offset for every row, or a position per token.
enum Positions {
    From(usize),
    Rows(RowPositions),
}

impl DecoderModel {
    /// Checks ids against the vocabulary and moves them to the device.
    pub fn inputs(
        &self,
        ids: &[u32],
        key_mask: Option<&[u32]>,
        batch: usize,
        seq_len: usize,
    ) -> Result<DecoderInput> {
        if batch == 0 || seq_len == 0 || ids.len() != batch * seq_len {
            return Err(Error::backend(
                "decoder input",
                format!("{} ids for a batch of {batch} × {seq_len}", ids.len()),
            ));
        }
        if key_mask.is_some_and(|m| m.len() != ids.len()) {
            return Err(Error::backend(
                "decoder input",
                "attention mask size differs from the ids",
            ));
        }
        let vocab = self.config.vocab_size;
        if let Some(id) = ids.iter().find(|&&i| i as usize >= vocab) {
            return Err(Error::backend(
                "decoder input",
                format!("token id {id} is outside the vocabulary of {vocab}"),
            ));
        }
        Ok(DecoderInput {
            input_ids: Tensor::from_slice(ids, (batch, seq_len), &self.device)
                .ctx("ids to device")?,
            key_mask: key_mask.filter(|m| m.contains(&0)).map(<[u32]>::to_vec),
            batch,
            seq_len,
        })
    }

    /// A padded training batch as input.
    pub fn batch_inputs(&self, batch: &SequenceBatch) -> Result<DecoderInput> {
        self.inputs(
            &batch.input_ids,
            Some(&batch.attention_mask),
            batch.batch,
            batch.seq_len,
        )
    }

    /// The final-norm hidden states `[batch, seq, hidden]` of the new tokens. With a cache,
    /// the tokens continue the cached ones (positions start at `cache.len()`) and their keys
    /// and values are appended. `adapt(layer, module, x, base, w0)` returns each linear
    /// layer's output (identity: no adapter).
    pub fn forward(
        &self,
        input: &DecoderInput,
        mut cache: Option<&mut KvCache>,
        adapt: &mut AdaptFn<'_>,
    ) -> Result<Tensor> {
        let (b, s) = (input.batch, input.seq_len);
        let offset = cache.as_ref().map_or(0, |c| c.len);
        if let Some(rows) = cache
            .as_ref()
            .map(|c| c.pads.len())
            .filter(|&rows| rows > 0 && rows != b)
        {
            return Err(Error::backend(
                "decoder input",
                format!("a batch of {b} rows for a cache of {rows}"),
            ));
        }
        let pads: Vec<usize> = (0..b)
            .map(|r| cache.as_ref().map_or(0, |c| c.pad(r)))
            .collect();
        let needed = offset + s - pads.iter().copied().min().unwrap_or(0);
        if needed > self.rotary.len() {
            return Err(Error::backend(
                "decoder input",
                format!(
                    "{needed} positions needed, the model has {} (max_position_embeddings)",
                    self.rotary.len()
                ),
            ));
        }
        let positions = if pads.iter().all(|&p| p == 0) {
            Positions::From(offset)
        } else {
            // A padding column's position is clamped to 0: its key is hidden anyway.
            let ids: Vec<u32> = (0..b * s)
                .map(|t| (offset + t % s).saturating_sub(pads[t / s]) as u32)
                .collect();
            Positions::Rows(self.rotary.rows(&ids, b, s)?)
        };
        // The cached path's mask; a whole sequence's attention masks by itself.
        let bias = match cache {
            Some(_) => {
                let keys = input.key_mask.as_deref();
                causal_bias(keys, b, s, offset, &pads, &self.embed_tokens)?
            }
            None => None,
        };
        let mut x = input
            .input_ids
            .flatten_all()
            .and_then(|ids| self.embed_tokens.index_select(&ids, 0))
            .and_then(|t| t.reshape((b, s, self.config.hidden_size)))
            .ctx("token embeddings")?;
        for (l, layer) in self.layers.iter().enumerate() {
            let slot = cache.as_mut().map(|c| &mut c.layers[l]);
            let keys = input.key_mask.as_deref();
            x = self.block(l, layer, &x, (keys, bias.as_ref()), &positions, slot, adapt)?;
        }
        if let Some(c) = cache {
            c.len += s;
        }
        self.norm.forward(&x)
    }

    /// Logits `[..., vocab]` of hidden states from [`DecoderModel::forward`].
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        self.lm_head.forward(hidden)
    }

    #[allow(clippy::too_many_arguments)]
    fn block(
        &self,
        l: usize,
        layer: &DecoderLayer,
        x: &Tensor,
        mask: (Option<&[u32]>, Option<&Tensor>),
        positions: &Positions,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
        adapt: &mut AdaptFn<'_>,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (b, s, _) = x.dims3().ctx("decoder block")?;
        let (nh, nkv, dh) = (c.num_attention_heads, c.kv_heads(), c.head_dim());
        let mut lin = |m: Module, input: &Tensor| -> Result<Tensor> {
            let frozen = &layer.linears[m.slot()];
            let base = frozen.forward(input)?;
            adapt(l, m, input, base, frozen.weight())
        };
        let hn = layer.input_norm.forward(x)?;
        let (q, k, v) = (
            lin(Module::QProj, &hn)?,
            lin(Module::KProj, &hn)?,
            lin(Module::VProj, &hn)?,
        );
        let context = match cache {
            None => {
                let h = Heads {
                    heads: nh,
                    kv_heads: nkv,
                    dim: dh,
                };
                causal_attention(&q, &k, &v, mask.0, &self.rotary, h)?
            }
            Some(slot) => {
                let heads = |t: Tensor, n: usize| -> Result<Tensor> {
                    t.reshape((b, s, n, dh))
                        .and_then(|t| t.transpose(1, 2))
                        .and_then(|t| t.contiguous())
                        .ctx("attention heads")
                };
                let rotate = |t: &Tensor| match positions {
                    Positions::From(offset) => self.rotary.apply(t, *offset),
                    Positions::Rows(rows) => rows.apply(t),
                };
                let q = rotate(&heads(q, nh)?)?
                    .affine(1.0 / (dh as f64).sqrt(), 0.0)
                    .ctx("query")?;
                let mut k = rotate(&heads(k, nkv)?)?;
                let mut v = heads(v, nkv)?;
                if let Some((ck, cv)) = slot.take() {
                    k = Tensor::cat(&[&ck, &k], 2).ctx("key cache")?;
                    v = Tensor::cat(&[&cv, &v], 2).ctx("value cache")?;
                }
                // Generation is never differentiated: the cache holds plain values.
                *slot = Some((k.detach(), v.detach()));
                grouped_attention(&q, &k, &v, mask.1)?
            }
        };
        let attn = lin(Module::OProj, &context)?;
        let x = (x + attn).ctx("residual")?;
        let hn = layer.post_norm.forward(&x)?;
        let gate = lin(Module::GateProj, &hn)?;
        let up = lin(Module::UpProj, &hn)?;
        let act = swiglu(&gate, &up)?;
        let down = lin(Module::DownProj, &act)?;
        (x + down).ctx("residual")
    }
}
