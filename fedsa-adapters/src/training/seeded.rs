//! Deterministic initial values. Every initial tensor is a function of the run seed and the
//! tensor's name only (never of the client), so all clients of a run start from the same
//! adapter and head: FFA-LoRA relies on a common frozen `A`.

use candle_core::{Device, Tensor};
use fedsa_core::{Result, SeededRng};

use crate::backend::Context;
use crate::kernels::par_init::par_init;

/// FNV-1a of a name: a stable label for [`SeededRng::derive`] across Rust versions.
pub(crate) fn name_label(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The RNG stream for the tensor `name` under `seed` (plus an extra label, e.g. a spec seed).
pub(crate) fn stream(seed: u64, name: &str, extra: u64) -> SeededRng {
    SeededRng::derive(seed, &[name_label(name), extra])
}

/// Values uniform in `[low, high)`.
pub(crate) fn uniform(rng: &mut SeededRng, n: usize, low: f64, high: f64) -> Vec<f32> {
    (0..n)
        .map(|_| (low + (high - low) * rng.next_f64()) as f32)
        .collect()
}

/// Values from N(0, std²) by Box-Muller.
pub(crate) fn normal(rng: &mut SeededRng, n: usize, std: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1 = rng.next_f64().max(f64::MIN_POSITIVE);
        let u2 = rng.next_f64();
        let r = (-2.0 * u1.ln()).sqrt() * std;
        let t = std::f64::consts::TAU * u2;
        out.push((r * t.cos()) as f32);
        out.push((r * t.sin()) as f32);
    }
    out.truncate(n);
    out
}

/// PyTorch's `kaiming_uniform_(w, a)` bound for a tensor whose fan-in is `fan_in`.
pub(crate) fn kaiming_bound(a: f64, fan_in: usize) -> f64 {
    let gain = (2.0 / (1.0 + a * a)).sqrt();
    gain * (3.0 / fan_in.max(1) as f64).sqrt()
}

/// A tensor from host values.
pub(crate) fn tensor(values: Vec<f32>, shape: &[usize], device: &Device) -> Result<Tensor> {
    Tensor::from_vec(values, shape, device).ctx("creating an initial tensor")
}

/// Dropout keep-mask scaled by `1/(1-p)`, drawn from the client's own RNG so that a run is
/// reproducible and resumable (candle's `dropout` draws from a global device RNG).
pub(crate) fn dropout_mask(
    rng: &mut SeededRng,
    shape: &[usize],
    p: f64,
    device: &Device,
) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let keep = (1.0 / (1.0 - p)) as f32;
    // Two 32-bit draws per u64 halve the RNG cost of large masks.
    let threshold = (p * f64::from(u32::MAX)) as u32;
    let draws = n.div_ceil(2);
    // Blocks of the stream drawn in parallel: the same values as drawing them in order.
    let start = rng.clone();
    let values = par_init(n, 2 * MASK_BLOCK, |block, out| {
        let mut r = start.skipped((block * MASK_BLOCK) as u64);
        for pair in out.chunks_mut(2) {
            let v = r.next_u64();
            for (o, half) in pair.iter_mut().zip([v as u32, (v >> 32) as u32]) {
                *o = if half >= threshold { keep } else { 0.0 };
            }
        }
    });
    *rng = start.skipped(draws as u64);
    tensor(values, shape, device)
}

/// Draws per parallel block of a dropout mask.
const MASK_BLOCK: usize = 8 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_depend_on_name_and_seed_only() {
        let a: Vec<_> = uniform(&mut stream(1, "x", 0), 4, 0.0, 1.0);
        assert_eq!(a, uniform(&mut stream(1, "x", 0), 4, 0.0, 1.0));
        assert_ne!(a, uniform(&mut stream(1, "y", 0), 4, 0.0, 1.0));
        assert_ne!(a, uniform(&mut stream(2, "x", 0), 4, 0.0, 1.0));
    }

    #[test]
    fn kaiming_bound_matches_pytorch_for_sqrt5() {
        // PyTorch: a = sqrt(5) gives gain sqrt(1/3), bound = 1/sqrt(fan_in).
        assert!((kaiming_bound(5f64.sqrt(), 16) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn normal_has_the_right_spread_and_dropout_the_right_rate() {
        let v = normal(&mut SeededRng::new(3), 20_000, 2.0);
        let var = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / v.len() as f64;
        assert!((var.sqrt() - 2.0).abs() < 0.05, "{var}");
        let m = dropout_mask(&mut SeededRng::new(4), &[10_000], 0.25, &Device::Cpu).unwrap();
        let m: Vec<f32> = m.to_vec1().unwrap();
        let kept = m.iter().filter(|x| **x > 0.0).count() as f64 / m.len() as f64;
        assert!((kept - 0.75).abs() < 0.02, "{kept}");
        assert!(m.iter().all(|x| *x == 0.0 || (*x - 4.0 / 3.0).abs() < 1e-6));
    }

    #[test]
    fn dropout_masks_drawn_in_blocks_are_the_sequential_draws() {
        // Odd sizes across several blocks: each element is the next half of the stream, low
        // half first, and the stream ends where sequential drawing would leave it.
        for n in [1, 7, 2 * MASK_BLOCK + 3, 5 * MASK_BLOCK] {
            let mut rng = SeededRng::new(9);
            let m: Vec<f32> = dropout_mask(&mut rng, &[n], 0.5, &Device::Cpu)
                .unwrap()
                .to_vec1()
                .unwrap();
            let mut seq = SeededRng::new(9);
            let threshold = (0.5 * f64::from(u32::MAX)) as u32;
            let mut want = Vec::with_capacity(n + 1);
            while want.len() < n {
                let v = seq.next_u64();
                for half in [v as u32, (v >> 32) as u32] {
                    want.push(if half >= threshold { 2.0f32 } else { 0.0 });
                }
            }
            want.truncate(n);
            assert_eq!(m, want, "n = {n}");
            assert_eq!(
                rng, seq,
                "n = {n}: the stream continues where it would have"
            );
        }
    }
}
