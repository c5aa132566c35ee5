//! Helpers shared by the integration tests: configs, error unpacking, synthetic datasets, and
//! the location of the real assets (which tests skip, saying so, when they are absent).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use fedsa_core::Error;
use fedsa_core::config::{DataConfig, DataFormat, PartitionConfig, PartitionKind};
use fedsa_data::{Dataset, Example};

/// The `assets/` folder `scripts/fetch-assets` fills, if it has been run.
pub fn assets() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = match std::env::var_os("FEDSA_ASSETS") {
        Some(p) => root.join(p),
        None => root.join("assets"),
    };
    dir.is_dir().then_some(dir)
}

/// The bundled model folder, or `None` with a note that the test is skipped.
pub fn minilm(test: &str) -> Option<PathBuf> {
    let dir = assets()
        .map(|a| a.join("all-MiniLM-L6-v2"))
        .filter(|d| d.join("tokenizer.json").is_file());
    if dir.is_none() {
        eprintln!("skipping {test}: assets/all-MiniLM-L6-v2 is absent (run scripts/fetch-assets)");
    }
    dir
}

/// The bundled corpus file, or `None` with a note that the test is skipped.
pub fn corpus(test: &str) -> Option<PathBuf> {
    let file = assets()
        .map(|a| a.join("rotten_tomatoes/rotten_tomatoes_corpus_full.csv"))
        .filter(|f| f.is_file());
    if file.is_none() {
        eprintln!(
            "skipping {test}: the Rotten Tomatoes corpus is absent (run scripts/fetch-assets)"
        );
    }
    file
}

pub fn data_config(format: DataFormat, path: &Path) -> DataConfig {
    DataConfig {
        format,
        path: path.to_path_buf(),
        text_column: Some("text".into()),
        text_pair_column: None,
        label_column: Some("label".into()),
        labels: None,
        glue_task: None,
        max_examples: None,
        test_fraction: 0.2,
    }
}

pub fn partition_config(kind: PartitionKind, alpha: f64, min_examples: usize) -> PartitionConfig {
    PartitionConfig {
        kind,
        alpha,
        min_examples,
        key: None,
    }
}

/// The (file, line, message) of a data error; fails the test on any other outcome.
pub fn data_error<T: std::fmt::Debug>(result: fedsa_core::Result<T>) -> (PathBuf, usize, String) {
    match result {
        Err(Error::Data {
            file,
            line,
            message,
        }) => (file, line, message),
        other => panic!("expected a data error, got {other:?}"),
    }
}

/// The (field, message) of a config error; fails the test on any other outcome.
pub fn config_error<T: std::fmt::Debug>(result: fedsa_core::Result<T>) -> (String, String) {
    match result {
        Err(Error::Config { field, message, .. }) => (field, message),
        other => panic!("expected a config error, got {other:?}"),
    }
}

/// `n` examples with labels drawn to the given weights and `keys` distinct keys.
pub fn synthetic(n: usize, weights: &[f64], keys: usize, seed: u64) -> Dataset {
    let mut rng = fedsa_core::SeededRng::new(seed);
    let total: f64 = weights.iter().sum();
    let examples = (0..n)
        .map(|i| {
            let mut u = rng.next_f64() * total;
            let mut label = weights.len() - 1;
            for (l, w) in weights.iter().enumerate() {
                if u < *w {
                    label = l;
                    break;
                }
                u -= w;
            }
            Example {
                text: format!("example {i}"),
                text_pair: None,
                label: label as u32,
                key: Some(format!("key-{}", rng.below(keys.max(1)))),
            }
        })
        .collect();
    Dataset {
        examples,
        label_names: (0..weights.len()).map(|l| format!("label{l}")).collect(),
        source: PathBuf::from("synthetic"),
    }
}
