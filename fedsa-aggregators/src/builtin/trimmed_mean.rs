//! Coordinate-wise trimmed mean: drop the largest and smallest values at each coordinate, then
//! average the rest. Client weights are ignored, deliberately: weighting would let one client
//! claiming many examples undo the trimming.

use fedsa_core::{Aggregator, ClientFailure, ClientUpdate, Error, ParamSet, Result};

use super::coordinate::{coordinatewise, mean};

/// Drops `floor(trim * n)` values on each side of every coordinate and averages the rest.
#[derive(Debug, Clone)]
pub struct TrimmedMean {
    trim: f64,
}

impl TrimmedMean {
    /// The default share trimmed on each side.
    pub const DEFAULT_TRIM: f64 = 0.2;

    /// A trimmed mean dropping the fraction `trim` (in [0, 0.5)) of values on each side.
    pub fn new(trim: f64) -> Result<Self> {
        if (0.0..0.5).contains(&trim) {
            Ok(Self { trim })
        } else {
            Err(Error::Aggregation {
                aggregator: "trimmed_mean".into(),
                message: format!("trim must be in [0, 0.5), got {trim}"),
            })
        }
    }

    pub fn trim(&self) -> f64 {
        self.trim
    }
}

/// The trimmed mean of `values` (which it sorts), dropping `floor(trim * n)` per side.
pub(crate) fn trimmed_mean(values: &mut [f32], trim: f64) -> f32 {
    let n = values.len();
    let k = (trim * n as f64).floor() as usize;
    values.sort_unstable_by(f32::total_cmp);
    mean(&values[k..n - k])
}

impl Aggregator for TrimmedMean {
    fn name(&self) -> &'static str {
        "trimmed_mean"
    }

    fn aggregate(
        &mut self,
        _round: usize,
        global: &ParamSet,
        updates: &[ClientUpdate],
        _failures: &[ClientFailure],
    ) -> Result<Option<ParamSet>> {
        let trim = self.trim;
        coordinatewise(self.name(), global, updates, |v| trimmed_mean(v, trim)).map(Some)
    }
}
