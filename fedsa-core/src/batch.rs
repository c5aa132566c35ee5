//! Tokenised examples and padded batches: the plain-data hand-off between `fedsa-data`
//! (which tokenises) and `fedsa-adapters` (which trains). Padding is dynamic: each batch is
//! padded to its own longest example, not to a fixed length.

use serde::{Deserialize, Serialize};

/// One tokenised classification example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodedExample {
    pub input_ids: Vec<u32>,
    /// Segment ids (0 for the first text, 1 for the pair), same length as `input_ids`.
    pub type_ids: Vec<u32>,
    pub label: u32,
}

/// A padded batch in row-major `[batch, seq_len]` layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub batch: usize,
    pub seq_len: usize,
    pub input_ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Vec<u32>,
    pub labels: Vec<u32>,
}

impl Batch {
    /// Pads `examples` to the longest among them with `pad_id` (type id 0, mask 0).
    pub fn pad(examples: &[&EncodedExample], pad_id: u32) -> Batch {
        let (seq_len, input_ids, attention_mask) =
            pad_right(examples.iter().map(|e| e.input_ids.as_slice()), pad_id);
        let batch = examples.len();
        let mut type_ids = Vec::with_capacity(batch * seq_len);
        for e in examples {
            let n = e.input_ids.len();
            type_ids.extend(e.type_ids.iter().copied().take(n));
            type_ids.extend(std::iter::repeat_n(0, seq_len - e.type_ids.len().min(n)));
        }
        Batch {
            batch,
            seq_len,
            input_ids,
            type_ids,
            attention_mask,
            labels: examples.iter().map(|e| e.label).collect(),
        }
    }
}

/// Rows of ids padded on the right to the longest with `pad_id`: `(seq_len, ids, mask)`, with
/// mask 1 on real tokens and 0 on padding, both row-major `[rows, seq_len]`.
pub(crate) fn pad_right<'a>(
    rows: impl Iterator<Item = &'a [u32]> + Clone,
    pad_id: u32,
) -> (usize, Vec<u32>, Vec<u32>) {
    let seq_len = rows.clone().map(<[u32]>::len).max().unwrap_or(0);
    let cells = rows.clone().count() * seq_len;
    let (mut ids, mut mask) = (Vec::with_capacity(cells), Vec::with_capacity(cells));
    for row in rows {
        let n = row.len();
        ids.extend_from_slice(row);
        ids.extend(std::iter::repeat_n(pad_id, seq_len - n));
        mask.extend(std::iter::repeat_n(1, n));
        mask.extend(std::iter::repeat_n(0, seq_len - n));
    }
    (seq_len, ids, mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_to_the_longest_example() {
        let a = EncodedExample {
            input_ids: vec![101, 7, 102],
            type_ids: vec![0, 0, 0],
            label: 1,
        };
        let b = EncodedExample {
            input_ids: vec![101, 102],
            type_ids: vec![0, 0],
            label: 0,
        };
        let batch = Batch::pad(&[&a, &b], 0);
        assert_eq!((batch.batch, batch.seq_len), (2, 3));
        assert_eq!(batch.input_ids, [101, 7, 102, 101, 102, 0]);
        assert_eq!(batch.attention_mask, [1, 1, 1, 1, 1, 0]);
        assert_eq!(batch.type_ids, [0; 6]);
        assert_eq!(batch.labels, [1, 0]);
    }
}
