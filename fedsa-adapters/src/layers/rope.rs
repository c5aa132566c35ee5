//! Rotary position embeddings in Hugging Face's "rotate_half" layout (the first half of each
//! head is paired with the second). candle's fused `rope` has no backward; a rotation's input
//! gradient is the inverse rotation, i.e. the same op with the sine negated.

use candle_core::{Device, Tensor};

use fedsa_core::Result;

use crate::backend::Context;
use crate::layers::grad::with_input_grad;

/// Cosine and sine tables `[max_positions, head_dim / 2]` for `theta`.
#[derive(Clone)]
pub struct RotaryTables {
    cos: Tensor,
    sin: Tensor,
}

impl RotaryTables {
    /// `cos(p θ^(-2i/d))`, `sin(...)` for positions `0..max_positions`, as `transformers`'
    /// default rope (computed in f64, then rounded).
    pub fn new(
        head_dim: usize,
        theta: f64,
        max_positions: usize,
        device: &Device,
    ) -> Result<RotaryTables> {
        let half = head_dim / 2;
        let inv_freq: Vec<f64> = (0..half)
            .map(|i| 1.0 / theta.powf((2 * i) as f64 / head_dim as f64))
            .collect();
        let mut cos = Vec::with_capacity(max_positions * half);
        let mut sin = Vec::with_capacity(max_positions * half);
        for p in 0..max_positions {
            for f in &inv_freq {
                let angle = p as f64 * f;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        let table =
            |v: Vec<f32>| Tensor::from_vec(v, (max_positions, half), device).ctx("rotary tables");
        Ok(RotaryTables {
            cos: table(cos)?,
            sin: table(sin)?,
        })
    }

    /// Number of positions the tables cover.
    pub fn len(&self) -> usize {
        self.cos.dims()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rotates `x` `[batch, heads, seq, head_dim]` as positions `offset..offset + seq`.
    pub fn apply(&self, x: &Tensor, offset: usize) -> Result<Tensor> {
        let seq = x.dims()[2];
        let narrow = |t: &Tensor| {
            t.narrow(0, offset, seq)
                .and_then(|t| t.contiguous())
                .ctx("rotary positions")
        };
        let (cos, sin) = (narrow(&self.cos)?, narrow(&self.sin)?);
        let xd = x.detach().contiguous().ctx("rotary embedding")?;
        let y = candle_nn::rotary_emb::rope(&xd, &cos, &sin).ctx("rotary embedding")?;
        let neg_sin = sin.neg().ctx("rotary embedding")?;
        with_input_grad("rotary-embedding", x, y, move |_x, _y, dy| {
            candle_nn::rotary_emb::rope(&dy.contiguous()?, &cos, &neg_sin)
        })
    }
}
