//! Seeded randomness for data handling. Every use draws from its own stream derived from the run
//! seed, so capping the dataset does not shift the partition and one client's split does not
//! shift another's. The project's own SplitMix64 is adapted to `rand`'s `RngCore` so that
//! `rand_distr`'s Gamma sampler (for Dirichlet draws) runs on it: same seed, same partition.

use fedsa_core::SeededRng;

/// Stream labels for [`SeededRng::derive`].
pub(crate) mod stream {
    pub const MAX_EXAMPLES: u64 = 0xDA7A_0001;
    pub const PARTITION: u64 = 0xDA7A_0002;
    pub const SPLIT: u64 = 0xDA7A_0003;
    pub const ARITHMETIC: u64 = 0xDA7A_0004;
}

/// [`SeededRng`] as a `rand` generator.
pub(crate) struct RandAdapter(pub SeededRng);

impl rand::RngCore for RandAdapter {
    fn next_u32(&mut self) -> u32 {
        (self.0.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.0.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}
