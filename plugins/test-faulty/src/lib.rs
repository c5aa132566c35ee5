//! A misbehaving aggregator plugin for the host's tests, registered as `test_faulty`: it works
//! like a plain weighted mean until round `from_round`, then panics (`mode = "panic"`, the
//! default) or returns an error (`mode = "error"`). Never use it in a real run.

#![forbid(unsafe_code)]

use fedsa_plugin_api::{AggregatorPlugin, Options, export_aggregator};

/// How and when to misbehave.
pub struct Faulty {
    panic: bool,
    from_round: u64,
}

impl AggregatorPlugin for Faulty {
    fn new(config: &str) -> Result<Self, String> {
        let mut o = Options::parse(config)?;
        let mode = o.text_or("mode", "panic")?;
        let from_round = o.f64_or("from_round", 1.0)? as u64;
        o.finish(&["mode", "from_round"])?;
        let panic = match mode.as_str() {
            "panic" => true,
            "error" => false,
            other => {
                return Err(format!(
                    "strategy.aggregator_options.mode: `panic` or `error`, got `{other}`"
                ));
            }
        };
        Ok(Self { panic, from_round })
    }

    fn aggregate(
        &mut self,
        round: u64,
        tensor: &str,
        _global: &[f32],
        clients: &[&[f32]],
        weights: &[f64],
        out: &mut [f32],
    ) -> Result<(), String> {
        if round >= self.from_round {
            if self.panic {
                let empty: Vec<f32> = Vec::new();
                // An index out of bounds: the kind of bug a real plugin would have.
                let _ = empty[out.len()];
            }
            return Err(format!("test_faulty refuses `{tensor}` in round {round}"));
        }
        fedsa_plugin_api::weighted_mean(clients, weights, out);
        Ok(())
    }
}

export_aggregator!(Faulty, "test_faulty");
