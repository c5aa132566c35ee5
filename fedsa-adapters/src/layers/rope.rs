//! Rotary position embeddings in Hugging Face's "rotate_half" layout (the first half of each
//! head is paired with the second). candle's fused `rope` has no backward; a rotation's input
//! gradient is the inverse rotation, i.e. the same op with the sine negated.

use candle_core::{DType, Device, Tensor};

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

    /// The tables in `dtype` (the rotation reads them in its input's dtype).
    pub fn to_dtype(&self, dtype: DType) -> Result<RotaryTables> {
        let cast = |t: &Tensor| t.to_dtype(dtype).ctx("rotary tables");
        Ok(RotaryTables {
            cos: cast(&self.cos)?,
            sin: cast(&self.sin)?,
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
        rotate(x, narrow(&self.cos)?, &narrow(&self.sin)?)
    }

    /// The cosine and sine rows of positions `0..seq` as plain values (`[seq, head_dim / 2]`
    /// each), for the host attention kernel.
    pub(crate) fn host_tables(&self, seq: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        let read = |t: &Tensor| {
            t.narrow(0, 0, seq)
                .and_then(|t| t.flatten_all()?.to_dtype(DType::F32))
                .and_then(|t| t.to_vec1::<f32>())
                .ctx("rotary tables")
        };
        Ok((read(&self.cos)?, read(&self.sin)?))
    }

    /// The tables' rows for a position per token: `positions` row-major `[batch, seq]`, each
    /// below [`RotaryTables::len`]; cosine and sine `[batch, seq, head_dim / 2]`, for
    /// [`RowPositions::apply`]. Left-padded batches give each row its own positions.
    pub fn rows(&self, positions: &[u32], batch: usize, seq: usize) -> Result<RowPositions> {
        let half = self.cos.dims()[1];
        let ids = Tensor::from_slice(positions, positions.len(), self.cos.device())
            .ctx("rotary positions")?;
        let pick = |t: &Tensor| {
            t.index_select(&ids, 0)
                .and_then(|t| t.reshape((batch, seq, half)))
                .ctx("rotary positions")
        };
        Ok(RowPositions {
            cos: pick(&self.cos)?,
            sin: pick(&self.sin)?,
        })
    }
}

/// Rotary tables gathered for one batch's own positions (see [`RotaryTables::rows`]).
pub struct RowPositions {
    cos: Tensor,
    sin: Tensor,
}

impl RowPositions {
    /// Rotates `x` `[batch, heads, seq, head_dim]`, each token at its row's position.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        rotate(x, self.cos.clone(), &self.sin)
    }
}

/// `x` rotated by the `cos`/`sin` tables (`[seq, half]` or `[batch, seq, half]`), with its input
/// gradient: the inverse rotation.
fn rotate(x: &Tensor, cos: Tensor, sin: &Tensor) -> Result<Tensor> {
    let xd = x.detach().contiguous().ctx("rotary embedding")?;
    let y = candle_nn::rotary_emb::rope(&xd, &cos, sin).ctx("rotary embedding")?;
    let neg_sin = sin.neg().ctx("rotary embedding")?;
    with_input_grad("rotary-embedding", x, y, move |_x, _y, dy| {
        candle_nn::rotary_emb::rope(&dy.contiguous()?, &cos, &neg_sin)
    })
}
