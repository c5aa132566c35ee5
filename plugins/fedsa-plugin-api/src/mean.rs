//! The example-weighted mean most aggregator plugins need for the tensors they do not treat
//! specially (a module rule's head, a test plugin's fallback).

/// `out[j] = Σ_k weights[k] · clients[k][j]`, summed in f64 in client order.
pub fn weighted_mean(clients: &[&[f32]], weights: &[f64], out: &mut [f32]) {
    for (j, o) in out.iter_mut().enumerate() {
        *o = clients
            .iter()
            .zip(weights)
            .map(|(c, w)| w * f64::from(c[j]))
            .sum::<f64>() as f32;
    }
}
