//! Tokenised generation examples and their padded batches: the plain-data hand-off between
//! `fedsa-data` (which tokenises prompt and response) and `fedsa-adapters` (which trains a
//! causal language model on them). The loss is taken on response tokens only.

use serde::{Deserialize, Serialize};

use crate::batch::pad_right;

/// One tokenised prompt/response pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodedSequence {
    /// Prompt tokens followed by response tokens (and the end-of-sequence token, if any).
    pub input_ids: Vec<u32>,
    /// How many leading tokens belong to the prompt: they are context, never a target.
    pub prompt_len: usize,
    /// The expected final answer (e.g. the number after `####`), compared by exact match with
    /// the answer extracted from a generated response; `None` when the task has none.
    pub reference: Option<String>,
}

impl EncodedSequence {
    /// The prompt's tokens alone: what generation starts from.
    pub fn prompt(&self) -> &[u32] {
        &self.input_ids[..self.prompt_len.min(self.input_ids.len())]
    }

    /// Number of tokens the loss is taken on.
    pub fn num_targets(&self) -> usize {
        self.input_ids.len().saturating_sub(self.prompt_len.max(1))
    }
}

/// A right-padded batch of sequences in row-major `[batch, seq_len]` layout, with next-token
/// targets: position `t` predicts `input_ids[t + 1]`, and counts in the loss only when that
/// token is a response token.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceBatch {
    pub batch: usize,
    pub seq_len: usize,
    pub input_ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Vec<u32>,
    /// `input_ids` shifted left by one (padding where there is no next token).
    pub targets: Vec<u32>,
    /// 1.0 where `targets` is a response token, else 0.0.
    pub loss_mask: Vec<f32>,
}

impl SequenceBatch {
    /// Pads `examples` on the right to the longest among them with `pad_id`.
    pub fn pad(examples: &[&EncodedSequence], pad_id: u32) -> SequenceBatch {
        let (seq_len, input_ids, attention_mask) =
            pad_right(examples.iter().map(|e| e.input_ids.as_slice()), pad_id);
        let cells = examples.len() * seq_len;
        let (mut targets, mut loss_mask) = (Vec::with_capacity(cells), Vec::with_capacity(cells));
        for e in examples {
            let n = e.input_ids.len();
            for t in 0..seq_len {
                let next = t + 1;
                let (target, counts) = if next < n {
                    (e.input_ids[next], next >= e.prompt_len.max(1))
                } else {
                    (pad_id, false)
                };
                targets.push(target);
                loss_mask.push(if counts { 1.0 } else { 0.0 });
            }
        }
        SequenceBatch {
            batch: examples.len(),
            seq_len,
            input_ids,
            attention_mask,
            targets,
            loss_mask,
        }
    }

    /// Number of positions that count in the loss.
    pub fn num_targets(&self) -> usize {
        self.loss_mask.iter().filter(|m| **m > 0.0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(ids: &[u32], prompt_len: usize) -> EncodedSequence {
        EncodedSequence {
            input_ids: ids.to_vec(),
            prompt_len,
            reference: None,
        }
    }

    #[test]
    fn targets_are_shifted_and_only_response_tokens_count() {
        // prompt [1, 2], response [3, 4]; second example: prompt [5], response [6].
        let a = seq(&[1, 2, 3, 4], 2);
        let b = seq(&[5, 6], 1);
        let batch = SequenceBatch::pad(&[&a, &b], 0);
        assert_eq!((batch.batch, batch.seq_len), (2, 4));
        assert_eq!(batch.input_ids, [1, 2, 3, 4, 5, 6, 0, 0]);
        assert_eq!(batch.attention_mask, [1, 1, 1, 1, 1, 1, 0, 0]);
        assert_eq!(batch.targets, [2, 3, 4, 0, 6, 0, 0, 0]);
        // Position 0 predicts the prompt's own token 2: not counted. 1 → 3 and 2 → 4 count.
        assert_eq!(batch.loss_mask, [0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
        assert_eq!(batch.num_targets(), 3);
        assert_eq!(a.num_targets() + b.num_targets(), 3);
        assert_eq!(a.prompt(), [1, 2]);
    }
}
