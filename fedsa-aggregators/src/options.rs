//! The options of a built-in aggregator: the TOML of `[strategy.aggregator_options]`, read key
//! by key. Every error names the key as `strategy.aggregator_options.<key>`, and a key nobody
//! read is an error, so a misspelt option never silently falls back to its default.

use std::collections::BTreeSet;

use fedsa_core::{Error, Result};

/// Where aggregator options live in a config.
pub const OPTIONS_FIELD: &str = "strategy.aggregator_options";

/// Options being read for one aggregator.
pub(crate) struct OptionTable {
    aggregator: String,
    table: toml::Table,
    read: BTreeSet<String>,
}

impl OptionTable {
    /// Parses the options text given to `aggregator`.
    pub(crate) fn parse(aggregator: &str, text: &str) -> Result<Self> {
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            Error::run_config(
                OPTIONS_FIELD,
                format!("for `{aggregator}`: {}", e.message().trim()),
            )
        })?;
        Ok(Self {
            aggregator: aggregator.to_string(),
            table,
            read: BTreeSet::new(),
        })
    }

    /// A number (integer or float), or `default` when absent.
    pub(crate) fn f64_or(&mut self, key: &str, default: f64) -> Result<f64> {
        self.read.insert(key.to_string());
        match self.table.get(key) {
            None => Ok(default),
            Some(toml::Value::Float(v)) => Ok(*v),
            Some(toml::Value::Integer(v)) => Ok(*v as f64),
            Some(other) => Err(option_error(
                key,
                format!("expected a number, got {} `{other}`", other.type_str()),
            )),
        }
    }

    /// `value` when `ok` and finite, otherwise an error saying it must be `rule`.
    pub(crate) fn require(&self, key: &str, value: f64, ok: bool, rule: &str) -> Result<f64> {
        if ok && value.is_finite() {
            Ok(value)
        } else {
            Err(option_error(
                key,
                // The error's source is the config file, so the message names the aggregator.
                format!(
                    "must be {rule}, got {value} (an option of `{}`)",
                    self.aggregator
                ),
            ))
        }
    }

    /// Fails on the first option that was not read, listing the `known` ones.
    pub(crate) fn finish(self, known: &[&str]) -> Result<()> {
        match self.table.keys().find(|k| !self.read.contains(*k)) {
            None => Ok(()),
            Some(key) => Err(option_error(
                key,
                format!(
                    "unknown option for `{}` (known: {})",
                    self.aggregator,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            )),
        }
    }
}

/// An error about option `key`, named as the config's dotted field.
fn option_error(key: &str, message: String) -> Error {
    Error::run_config(format!("{OPTIONS_FIELD}.{key}"), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_defaults_and_unknown_keys() {
        let mut o = OptionTable::parse("x", "trim = 1\nlr = 0.5\n").unwrap();
        assert_eq!(o.f64_or("trim", 0.0).unwrap(), 1.0);
        assert_eq!(o.f64_or("lr", 0.0).unwrap(), 0.5);
        assert_eq!(o.f64_or("tau", 7.0).unwrap(), 7.0);
        o.finish(&["trim", "lr", "tau"]).unwrap();

        let o = OptionTable::parse("x", "tirm = 0.1").unwrap();
        let e = o.finish(&["trim"]).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "config {}: strategy.aggregator_options.tirm: unknown option for `x` (known: trim)",
                fedsa_core::UNNAMED_CONFIG
            )
        );
        let mut o = OptionTable::parse("x", "trim = \"a\"").unwrap();
        let e = o.f64_or("trim", 0.1).unwrap_err().to_string();
        assert!(
            e.contains("strategy.aggregator_options.trim: expected a number"),
            "{e}"
        );
        let e = OptionTable::parse("x", "trim = ")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("strategy.aggregator_options:"), "{e}");
    }
}
