//! Measures how skewed the clients' label mixes are on the bundled Rotten Tomatoes corpus for
//! each partition kind: mean per-client label entropy (bits; 1.0 is a 50/50 mix of the two
//! labels) and mean share of a client's majority label, averaged over seeds.
//!
//! Run `scripts/fetch-assets` first, then `cargo run -p fedsa-data --example partition_skew`.

use std::path::Path;

use fedsa_core::config::{DataConfig, DataFormat, PartitionConfig, PartitionKind};
use fedsa_data::{PartitionReport, load_dataset, partition};

const SEEDS: u64 = 10;

fn main() -> fedsa_core::Result<()> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../assets/rotten_tomatoes/rotten_tomatoes_corpus_full.csv");
    let data = DataConfig {
        format: DataFormat::RottenTomatoes,
        path: file,
        text_column: None,
        text_pair_column: None,
        label_column: None,
        labels: None,
        glue_task: None,
        max_examples: None,
        test_fraction: 0.2,
    };
    let dataset = load_dataset(&data, None, 0)?;
    let counts = dataset.label_counts();
    println!(
        "{} examples, {:?} = {counts:?}; {SEEDS} seeds, min_examples 10",
        dataset.examples.len(),
        dataset.label_names
    );
    println!(
        "{:<16} {:>7}  {:>12}  {:>14}",
        "partition", "clients", "mean entropy", "mean max share"
    );
    let kinds = [
        ("dirichlet 0.1", PartitionKind::Dirichlet, 0.1),
        ("dirichlet 0.5", PartitionKind::Dirichlet, 0.5),
        ("dirichlet 1.0", PartitionKind::Dirichlet, 1.0),
        ("iid", PartitionKind::Iid, 1.0),
        ("key movie_name", PartitionKind::Key, 1.0),
    ];
    for clients in [3, 10] {
        for (name, kind, alpha) in kinds {
            let cfg = PartitionConfig {
                kind,
                alpha,
                min_examples: 10,
                key: Some("movie_name".into()),
            };
            let (mut entropy, mut share) = (0.0, 0.0);
            for seed in 0..SEEDS {
                let splits = partition(&dataset, &cfg, clients, 0.2, seed)?;
                let report = PartitionReport::new(&dataset, &splits);
                entropy += report.mean_label_entropy();
                share += report.mean_max_label_share();
            }
            let n = SEEDS as f64;
            println!(
                "{name:<16} {clients:>7}  {:>12.3}  {:>14.3}",
                entropy / n,
                share / n
            );
        }
    }
    Ok(())
}
