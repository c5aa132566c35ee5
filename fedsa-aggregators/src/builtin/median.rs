//! Coordinate-wise median: robust to a minority of arbitrary client values. Client weights are
//! ignored (a weighted median would let one client claiming many examples decide alone).

use fedsa_core::{Aggregator, ClientFailure, ClientUpdate, ParamSet, Result};

use super::coordinate::{coordinatewise, mean};

/// For each coordinate, the median of the clients' values (the mean of the two middle values
/// when the count is even).
#[derive(Debug, Default, Clone)]
pub struct Median;

/// The median of `values`, which it sorts.
pub(crate) fn median(values: &mut [f32]) -> f32 {
    values.sort_unstable_by(f32::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        mean(&values[n / 2 - 1..=n / 2])
    }
}

impl Aggregator for Median {
    fn name(&self) -> &'static str {
        "median"
    }

    fn aggregate(
        &mut self,
        _round: usize,
        global: &ParamSet,
        updates: &[ClientUpdate],
        _failures: &[ClientFailure],
    ) -> Result<Option<ParamSet>> {
        coordinatewise(self.name(), global, updates, median).map(Some)
    }
}
