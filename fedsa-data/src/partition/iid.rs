//! IID partition: a seeded shuffle dealt into clients of equal size (sizes differ by at most
//! one), so every client's label mix matches the whole dataset's up to sampling noise.

use fedsa_core::SeededRng;

pub(super) fn assign(n: usize, num_clients: usize, rng: &mut SeededRng) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    let (base, extra) = (n / num_clients, n % num_clients);
    let mut start = 0;
    (0..num_clients)
        .map(|k| {
            let size = base + usize::from(k < extra);
            let mut client = order[start..start + size].to_vec();
            start += size;
            client.sort_unstable();
            client
        })
        .collect()
}
