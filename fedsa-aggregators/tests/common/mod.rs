//! Shared test helpers: building the example plugins with cargo and finding their libraries,
//! small parameter sets, and a short federation of deterministic fake clients.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use fedsa_core::testing::FakeTrainer;
use fedsa_core::{
    Aggregator, ClientTrainer, ClientUpdate, EventSink, Federation, FederationSettings, NoEvents,
    ParamSet, Strategy,
};

/// The plugin libraries built for the tests, by cargo target name.
pub struct Built {
    libraries: BTreeMap<String, PathBuf>,
}

impl Built {
    /// The library of target `name` (e.g. `fedsa_plugin_trimmed_mean`).
    pub fn library(&self, name: &str) -> &Path {
        self.libraries
            .get(name)
            .unwrap_or_else(|| panic!("cargo built no library `{name}`: {:?}", self.libraries))
    }

    pub fn trimmed_mean(&self) -> &Path {
        self.library("fedsa_plugin_trimmed_mean")
    }

    pub fn fedadam(&self) -> &Path {
        self.library("fedsa_plugin_fedadam")
    }

    pub fn faulty(&self) -> &Path {
        self.library("fedsa_plugin_test_faulty")
    }

    pub fn product_mean(&self) -> &Path {
        self.library("fedsa_plugin_product_mean")
    }
}

/// Builds the example and test plugins once per test binary. `cargo test` does not build
/// cdylib members, so the tests do; cargo's JSON messages give the exact library paths, which
/// respects `CARGO_TARGET_DIR` and any other target-dir setting.
pub fn plugins() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the crate sits in the workspace");
        let mut child = Command::new(env!("CARGO"))
            .current_dir(workspace)
            .args([
                "build",
                "--message-format=json",
                "-p",
                "fedsa-plugin-trimmed-mean",
                "-p",
                "fedsa-plugin-fedadam",
                "-p",
                "fedsa-plugin-test-faulty",
                "-p",
                "fedsa-plugin-product-mean",
                "--lib",
                "--examples",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cargo runs");
        let mut libraries = BTreeMap::new();
        let stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
        for line in stdout.lines() {
            let line = line.expect("cargo output");
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if msg["reason"] != "compiler-artifact" {
                continue;
            }
            let name = msg["target"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let library = msg["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(std::env::consts::DLL_SUFFIX));
            if let Some(path) = library {
                libraries.insert(name, PathBuf::from(path));
            }
        }
        assert!(
            child.wait().expect("cargo ends").success(),
            "building the plugins failed"
        );
        Built { libraries }
    })
}

/// A parameter set with one tensor `w` of the given values.
pub fn set(values: &[f32]) -> ParamSet {
    let mut p = ParamSet::new();
    p.insert("w", vec![values.len()], values.to_vec()).unwrap();
    p
}

/// Updates with these values and example counts.
pub fn updates(values: &[&[f32]], examples: &[usize]) -> Vec<ClientUpdate> {
    values
        .iter()
        .zip(examples)
        .enumerate()
        .map(|(client, (v, n))| ClientUpdate {
            client,
            num_examples: *n,
            params: set(v),
        })
        .collect()
}

/// Five fake clients of different sizes under FedIT (everything shared), so clients disagree
/// on the shared `B` and head tensors and robust rules differ from the mean.
pub fn federation(aggregator: Box<dyn Aggregator>, rounds: usize) -> Federation {
    federation_with(aggregator, rounds, Box::new(NoEvents))
}

/// [`federation`] reporting its events to `sink`.
pub fn federation_with(
    aggregator: Box<dyn Aggregator>,
    rounds: usize,
    sink: Box<dyn EventSink>,
) -> Federation {
    let n = 5;
    let clients: Vec<Box<dyn ClientTrainer>> = (0..n)
        .map(|id| Box::new(FakeTrainer::new(id, 10 * (id + 1), 2, 7)) as Box<dyn ClientTrainer>)
        .collect();
    let settings = FederationSettings {
        num_clients: n,
        clients_per_round: n,
        rounds,
        seed: 3,
        failure_rate: 0.0,
        eval_every: 1,
    };
    Federation::new(settings, Strategy::fedit(), aggregator, clients, sink).unwrap()
}

/// Runs every remaining round.
pub fn run(fed: &mut Federation) -> fedsa_core::Result<fedsa_core::RunSummary> {
    let stop = std::sync::atomic::AtomicBool::new(false);
    fed.run(&stop, &mut |_, _| Ok(()))
}

/// The largest absolute difference between two sets of the same layout.
pub fn max_diff(a: &ParamSet, b: &ParamSet) -> f32 {
    a.check_same_layout(b).unwrap();
    a.iter()
        .flat_map(|(n, t)| {
            t.data()
                .iter()
                .zip(b.get(n).unwrap().data())
                .map(|(x, y)| (x - y).abs())
        })
        .fold(0.0, f32::max)
}
