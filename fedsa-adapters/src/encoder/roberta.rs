//! RoBERTa specifics: positions count real tokens starting after the padding id (padding keeps
//! the padding id), one token type; head = dense + tanh + out_proj on the first token, as
//! `RobertaClassificationHead`.

use candle_core::Tensor;
use fedsa_core::Batch;

/// `padding_idx + cumsum(mask)` on real tokens, `padding_idx` on padding (Hugging Face's
/// `create_position_ids_from_input_ids`).
pub(crate) fn position_ids(batch: &Batch, pad: u32) -> Vec<u32> {
    let mut out = Vec::with_capacity(batch.input_ids.len());
    for row in batch.input_ids.chunks(batch.seq_len.max(1)) {
        let mut count = 0;
        for &id in row {
            if id == pad {
                out.push(pad);
            } else {
                count += 1;
                out.push(pad + count);
            }
        }
    }
    out
}

/// Head tensors: name and shape code (rows, cols): 1 = hidden, 0 = `num_labels` for rows, none for cols.
pub(crate) const HEAD: [(&str, usize, usize); 4] = [
    ("classifier.dense.weight", 1, 1),
    ("classifier.dense.bias", 1, 0),
    ("classifier.out_proj.weight", 0, 1),
    ("classifier.out_proj.bias", 0, 0),
];

/// `out_proj(dropout(tanh(dense(dropout(h[:, 0])))))`.
pub(crate) fn head_forward(
    cls: &Tensor,
    p: &dyn Fn(&str) -> fedsa_core::Result<Tensor>,
    drop: &mut dyn FnMut(&Tensor) -> fedsa_core::Result<Tensor>,
) -> fedsa_core::Result<Tensor> {
    use crate::backend::Context;
    let x = drop(cls)?;
    let x = crate::layers::linear(
        &x,
        &p("classifier.dense.weight")?,
        Some(&p("classifier.dense.bias")?),
    )
    .and_then(|t| t.tanh())
    .ctx("classification head")?;
    let x = drop(&x)?;
    crate::layers::linear(
        &x,
        &p("classifier.out_proj.weight")?,
        Some(&p("classifier.out_proj.bias")?),
    )
    .ctx("classification head")
}
