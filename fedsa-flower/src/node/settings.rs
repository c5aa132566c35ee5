//! What a node is told by its operator (Flower's `--node-config`): which client it is, where
//! its private state lives, and where its own files are.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use fedsa_core::Config;

/// The node config's keys, as a SuperNode's `--node-config "partition-id=0 state-dir=..."`.
pub const KEYS: [&str; 4] = ["partition-id", "state-dir", "data-file", "base-dir"];

/// One node's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSettings {
    /// The client this node is (`partition-id`): its index in the config, and, without
    /// `data-file`, the partition of the config's data it trains on.
    pub client: usize,
    /// The node's private state folder (`state-dir`); it must exist.
    pub state_dir: PathBuf,
    /// The node's own data (`data-file`), in the config's `data.format`; all of it is this
    /// client's, held out by `data.test_fraction`.
    pub data_file: Option<PathBuf>,
    /// Where relative paths in the server's config (model, data, adapter spec, plugins) are
    /// found on this node (`base-dir`); the working directory when absent.
    pub base_dir: Option<PathBuf>,
}

impl NodeSettings {
    /// Reads the node config; errors name the key.
    pub fn from_node_config(values: &BTreeMap<String, String>) -> Result<Self> {
        if let Some(unknown) = values
            .keys()
            .find(|k| !KEYS.contains(&k.as_str()) && k.as_str() != "num-partitions")
        {
            bail!(
                "node config: unknown key `{unknown}` (known: {})",
                KEYS.join(", ")
            );
        }
        let get = |key: &str| values.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
        let client = get("partition-id")
            .context("node config: `partition-id` is missing (the client this node is, 0-based)")?;
        let client = client.parse::<usize>().with_context(|| {
            format!("node config: `partition-id` must be a whole number from 0, got `{client}`")
        })?;
        let state_dir = get("state-dir").context(
            "node config: `state-dir` is missing (the folder of this node's private state)",
        )?;
        Ok(Self {
            client,
            state_dir: PathBuf::from(state_dir),
            data_file: get("data-file").map(PathBuf::from),
            base_dir: get("base-dir").map(PathBuf::from),
        })
    }

    /// The server's config with its relative paths found under `base-dir`.
    pub fn resolve(&self, config: Config) -> Config {
        match &self.base_dir {
            Some(base) => config.input_paths_under(base),
            None => config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn reads_the_keys_and_names_the_bad_one() {
        let s = NodeSettings::from_node_config(&config(&[
            ("partition-id", "2"),
            ("state-dir", "st"),
            ("num-partitions", "3"),
        ]))
        .unwrap();
        assert_eq!((s.client, s.state_dir.as_path()), (2, Path::new("st")));
        let e = NodeSettings::from_node_config(&config(&[("state-dir", "st")])).unwrap_err();
        assert!(e.to_string().contains("partition-id"), "{e}");
        let e =
            NodeSettings::from_node_config(&config(&[("partition-id", "-1"), ("state-dir", "s")]))
                .unwrap_err();
        assert!(e.to_string().contains("`-1`"), "{e}");
        let e = NodeSettings::from_node_config(&config(&[("partition-id", "0")])).unwrap_err();
        assert!(e.to_string().contains("state-dir"), "{e}");
        let e = NodeSettings::from_node_config(&config(&[
            ("partition-id", "0"),
            ("state-dir", "s"),
            ("data-dir", "x"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("`data-dir`"), "{e}");
    }
}
