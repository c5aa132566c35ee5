//! The trainable sequence-classification head (role `Head`): its tensors per family, their
//! initial values (the checkpoint's when it ships them with the right shape, else seeded
//! normal(0, initializer_range) weights and zero biases, as `transformers` does), its forward.

use candle_core::Tensor;

use fedsa_core::{Result, Role};

use crate::adapter::InitialParam;
use crate::backend::Context;
use crate::encoder::config::Family;
use crate::encoder::{BaseModel, bert, roberta};
use crate::training::seeded::{normal, stream, tensor};

fn table(family: Family) -> &'static [(&'static str, usize, usize); 4] {
    match family {
        Family::Bert => &bert::HEAD,
        Family::Roberta => &roberta::HEAD,
    }
}

/// The head's tensors and shapes for a family, hidden size and label count.
pub fn head_layout(family: Family, hidden: usize, num_labels: usize) -> Vec<(String, Vec<usize>)> {
    let size = |code: usize| if code == 1 { hidden } else { num_labels };
    table(family)
        .iter()
        .map(|&(name, rows, cols)| {
            let shape = if is_bias(name) {
                vec![size(rows)]
            } else {
                vec![size(rows), size(cols)]
            };
            (name.to_string(), shape)
        })
        .collect()
}

fn is_bias(name: &str) -> bool {
    name.rsplit('.').next() == Some("bias")
}

/// Head tensor names a checkpoint may ship.
pub(crate) fn pretrained_head_names(family: Family) -> Vec<&'static str> {
    table(family).iter().map(|(n, _, _)| *n).collect()
}

/// The head's initial values; identical for all clients of a run with the same `seed`.
pub(crate) fn initial_head(
    base: &BaseModel,
    num_labels: usize,
    seed: u64,
) -> Result<Vec<InitialParam>> {
    let c = base.config();
    head_layout(base.family(), c.hidden_size, num_labels)
        .into_iter()
        .map(|(name, shape)| {
            let value = match base.pretrained_head(&name) {
                Some(t) if t.dims() == shape.as_slice() => t.copy().ctx("copying the head")?,
                _ => {
                    let n = shape.iter().product();
                    let values = if is_bias(&name) {
                        vec![0.0; n]
                    } else {
                        normal(&mut stream(seed, &name, 0), n, c.initializer_range)
                    };
                    tensor(values, &shape, base.device())?
                }
            };
            Ok(InitialParam {
                name,
                role: Role::Head,
                value,
            })
        })
        .collect()
}

/// Logits `[batch, num_labels]` from the sequence output.
pub(crate) fn head_forward(
    family: Family,
    sequence: &Tensor,
    p: &dyn Fn(&str) -> Result<Tensor>,
    drop: &mut dyn FnMut(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let cls = sequence
        .narrow(1, 0, 1)
        .and_then(|t| t.squeeze(1))
        .ctx("first token")?;
    match family {
        Family::Bert => bert::head_forward(&cls, p, drop),
        Family::Roberta => roberta::head_forward(&cls, p, drop),
    }
}
