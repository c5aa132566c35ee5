//! BERT specifics: absolute positions `0..n`; head = pooler (dense + tanh on the first token)
//! and a linear classifier, as `BertForSequenceClassification`.

use candle_core::Tensor;
use fedsa_core::Batch;

/// Positions `0..seq_len` for every row.
pub(crate) fn position_ids(batch: &Batch) -> Vec<u32> {
    (0..batch.batch)
        .flat_map(|_| 0..batch.seq_len as u32)
        .collect()
}

/// Head tensors: name and shape code (rows, cols): 1 = hidden, 0 = `num_labels` for rows, none for cols.
pub(crate) const HEAD: [(&str, usize, usize); 4] = [
    ("pooler.dense.weight", 1, 1),
    ("pooler.dense.bias", 1, 0),
    ("classifier.weight", 0, 1),
    ("classifier.bias", 0, 0),
];

/// `classifier(dropout(tanh(pooler(h[:, 0]))))`; `drop` applies dropout in train mode.
pub(crate) fn head_forward(
    cls: &Tensor,
    p: &dyn Fn(&str) -> fedsa_core::Result<Tensor>,
    drop: &mut dyn FnMut(&Tensor) -> fedsa_core::Result<Tensor>,
) -> fedsa_core::Result<Tensor> {
    use crate::backend::Context;
    let pooled = crate::layers::linear(
        cls,
        &p("pooler.dense.weight")?,
        Some(&p("pooler.dense.bias")?),
    )
    .and_then(|t| t.tanh())
    .ctx("pooler")?;
    let pooled = drop(&pooled)?;
    crate::layers::linear(
        &pooled,
        &p("classifier.weight")?,
        Some(&p("classifier.bias")?),
    )
    .ctx("classifier")
}
