//! The bundled Rotten Tomatoes corpus as `scripts/fetch-assets` unpacks it: its known counts,
//! and the partitions a quickstart run makes of it. Skipped, with a note, without the assets.

mod common;

use std::collections::BTreeSet;

use common::{corpus, partition_config};
use fedsa_core::config::{DataConfig, DataFormat, PartitionKind};
use fedsa_data::{ClientSplit, PartitionReport, load_dataset, partition};

fn config(path: &std::path::Path) -> DataConfig {
    DataConfig {
        format: DataFormat::RottenTomatoes,
        path: path.to_path_buf(),
        text_column: None,
        text_pair_column: None,
        label_column: None,
        labels: None,
        glue_task: None,
        max_examples: None,
        test_fraction: 0.2,
    }
}

#[test]
fn corpus_has_the_known_counts() {
    let Some(file) = corpus("corpus_has_the_known_counts") else {
        return;
    };
    let d = load_dataset(&config(&file), None, 42).unwrap();
    assert_eq!(d.examples.len(), 12_808);
    assert_eq!(d.label_names, ["fresh", "rotten"]);
    assert_eq!(d.label_counts(), [7_403, 5_405]);
    let movies: BTreeSet<&str> = d.examples.iter().filter_map(|e| e.key.as_deref()).collect();
    assert_eq!(movies.len(), 508);
    assert!(d.examples.iter().all(|e| !e.text.trim().is_empty()));
}

#[test]
fn quickstart_partitions_of_the_corpus_hold() {
    let Some(file) = corpus("quickstart_partitions_of_the_corpus_hold") else {
        return;
    };
    let d = load_dataset(&config(&file), None, 42).unwrap();
    for (kind, alpha) in [
        (PartitionKind::Dirichlet, 0.1),
        (PartitionKind::Dirichlet, 0.5),
        (PartitionKind::Key, 0.5),
        (PartitionKind::Iid, 0.5),
    ] {
        for clients in [3, 10] {
            let splits =
                partition(&d, &partition_config(kind, alpha, 10), clients, 0.2, 42).unwrap();
            let total: usize = splits.iter().map(ClientSplit::len).sum();
            assert_eq!(total, 12_808);
            assert!(splits.iter().all(|s| s.len() >= 10 && !s.test.is_empty()));
            let report = PartitionReport::new(&d, &splits);
            eprintln!("{kind:?} alpha {alpha}, {clients} clients:\n{report}");
        }
    }
}

#[test]
fn capped_corpus_is_a_seeded_subset() {
    let Some(file) = corpus("capped_corpus_is_a_seeded_subset") else {
        return;
    };
    let mut cfg = config(&file);
    cfg.max_examples = Some(1_000);
    let a = load_dataset(&cfg, None, 1).unwrap();
    assert_eq!(a.examples.len(), 1_000);
    assert_eq!(a, load_dataset(&cfg, None, 1).unwrap());
    assert_eq!(a.label_names, ["fresh", "rotten"]);
}
