//! The shared skeleton of coordinate-wise rules (median, trimmed mean): gather each client's
//! value at one coordinate, reduce, repeat for every coordinate of every tensor.

use fedsa_core::{ClientUpdate, Error, ParamSet, Result};

/// Each update's values for tensor `name`, checked against the global shape.
pub(crate) fn client_values<'a>(
    name: &str,
    shape: &[usize],
    updates: &'a [ClientUpdate],
) -> Result<Vec<&'a [f32]>> {
    updates
        .iter()
        .map(|u| {
            let t = u.params.require(name)?;
            if t.shape() == shape {
                Ok(t.data())
            } else {
                Err(Error::param(
                    name,
                    format!(
                        "client {} sent shape {:?}, expected {shape:?}",
                        u.client,
                        t.shape()
                    ),
                ))
            }
        })
        .collect()
}

/// Applies `reduce` to every coordinate's client values; the slice handed to `reduce` is
/// scratch space it may reorder.
pub(crate) fn coordinatewise(
    aggregator: &str,
    global: &ParamSet,
    updates: &[ClientUpdate],
    mut reduce: impl FnMut(&mut [f32]) -> f32,
) -> Result<ParamSet> {
    if updates.is_empty() {
        return Err(Error::Aggregation {
            aggregator: aggregator.to_string(),
            message: "no updates to aggregate".into(),
        });
    }
    let mut out = ParamSet::new();
    let mut column = vec![0f32; updates.len()];
    for (name, tensor) in global.iter() {
        let clients = client_values(name, tensor.shape(), updates)?;
        let values = (0..tensor.len())
            .map(|j| {
                for (slot, c) in column.iter_mut().zip(&clients) {
                    *slot = c[j];
                }
                reduce(&mut column)
            })
            .collect();
        out.insert(name.clone(), tensor.shape().to_vec(), values)?;
    }
    Ok(out)
}

/// The mean of `values`, accumulated in f64.
pub(crate) fn mean(values: &[f32]) -> f32 {
    let sum: f64 = values.iter().map(|v| f64::from(*v)).sum();
    (sum / values.len() as f64) as f32
}
