//! Example aggregator plugin: the coordinate-wise trimmed mean, registered as
//! `trimmed_mean_plugin`. For each coordinate it drops the `trim` fraction of smallest and of
//! largest client values (`floor(trim * n)` each side) and averages the rest. Client weights
//! are ignored, as in the robust-aggregation literature: weighting would let one client with
//! many claimed examples undo the trimming.
//!
//! Options (`[strategy.aggregator_options]`): `trim`, in [0, 0.5), default 0.2.

#![forbid(unsafe_code)]

use fedsa_plugin_api::{AggregatorPlugin, Options, export_aggregator};

/// The rule and its one option.
pub struct TrimmedMean {
    trim: f64,
    /// Scratch space for one coordinate's client values, reused across calls.
    column: Vec<f32>,
}

impl AggregatorPlugin for TrimmedMean {
    fn new(config: &str) -> Result<Self, String> {
        let mut options = Options::parse(config)?;
        let trim = options.f64_or("trim", 0.2)?;
        options.finish(&["trim"])?;
        if !(0.0..0.5).contains(&trim) {
            return Err(format!(
                "strategy.aggregator_options.trim: must be in [0, 0.5), got {trim}"
            ));
        }
        Ok(Self {
            trim,
            column: Vec::new(),
        })
    }

    fn aggregate(
        &mut self,
        _round: u64,
        _tensor: &str,
        _global: &[f32],
        clients: &[&[f32]],
        _weights: &[f64],
        out: &mut [f32],
    ) -> Result<(), String> {
        let n = clients.len();
        if n == 0 {
            return Err("no client values to aggregate".into());
        }
        let k = (self.trim * n as f64).floor() as usize;
        for (j, o) in out.iter_mut().enumerate() {
            self.column.clear();
            self.column.extend(clients.iter().map(|c| c[j]));
            self.column.sort_unstable_by(f32::total_cmp);
            let kept = &self.column[k..n - k];
            let sum: f64 = kept.iter().map(|v| f64::from(*v)).sum();
            *o = (sum / kept.len() as f64) as f32;
        }
        Ok(())
    }
}

export_aggregator!(TrimmedMean, "trimmed_mean_plugin");
