//! Fresh output buffers filled on the rayon pool.
//!
//! `vec![0.0; n]` zero-fills the whole buffer on the calling thread (glibc's `calloc` on memory
//! the heap reuses), so every kernel output paid one serial pass before its parallel one. Here
//! each block is zeroed by the task that fills it, while it is in that core's cache.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// A buffer of `len` values whose blocks of `block` elements (the last may be shorter) are
/// written by `fill(block_index, block)`, in parallel; each block starts zeroed.
pub(crate) fn par_init(
    len: usize,
    block: usize,
    fill: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let mut out: Vec<f32> = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(block.max(1))
        .enumerate()
        .for_each(|(i, chunk)| {
            for v in chunk.iter_mut() {
                v.write(0.0);
            }
            // SAFETY: every element of `chunk` was just initialised, and `MaybeUninit<f32>` has
            // the layout of `f32`.
            let chunk =
                unsafe { &mut *(std::ptr::from_mut::<[MaybeUninit<f32>]>(chunk) as *mut [f32]) };
            fill(i, chunk);
        });
    // SAFETY: the blocks above cover `0..len` and each was initialised.
    unsafe { out.set_len(len) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_block_is_filled_once_and_in_place() {
        for (len, block) in [(0, 4), (10, 4), (12, 4), (5, 100), (7, 1)] {
            let out = par_init(len, block, |i, b| {
                for (j, v) in b.iter_mut().enumerate() {
                    assert_eq!(*v, 0.0, "blocks start zeroed");
                    *v = (i * block + j) as f32;
                }
            });
            let want: Vec<f32> = (0..len).map(|k| k as f32).collect();
            assert_eq!(out, want);
        }
    }
}
