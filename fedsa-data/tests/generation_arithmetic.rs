//! The bundled arithmetic word problems: deterministic per seed, every answer right (recomputed
//! here from the question's own numbers), every kind present, and a Dirichlet partition over
//! kinds gives clients skewed mixes where an IID one does not.

mod common;

use common::partition_config;
use fedsa_core::config::PartitionKind;
use fedsa_data::{
    ArithmeticSpec, Dataset, GenerationSource, ProblemKind, answer_of, arithmetic_dataset,
    generate_problems, load_generation, partition,
};

/// The integers written in `text`, in order (the questions hold no other digits).
fn integers(text: &str) -> Vec<i64> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

#[test]
fn problems_are_deterministic_per_seed_and_differ_across_seeds() {
    let spec = ArithmeticSpec {
        count: 200,
        seed: 7,
    };
    let a = generate_problems(&spec);
    assert_eq!(a.len(), 200);
    assert_eq!(a, generate_problems(&spec));
    assert_eq!(
        arithmetic_dataset(&spec).unwrap(),
        arithmetic_dataset(&spec).unwrap()
    );
    let b = generate_problems(&ArithmeticSpec { seed: 8, ..spec });
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    assert!(same < 5, "{same} of 200 problems equal across seeds");
    // A prefix of a longer run is the shorter run: the count does not reshuffle problems.
    let longer = generate_problems(&ArithmeticSpec { count: 300, ..spec });
    assert_eq!(&longer[..200], &a[..]);
}

#[test]
fn every_answer_is_right_and_extracted_from_its_solution() {
    let problems = generate_problems(&ArithmeticSpec {
        count: 1000,
        seed: 3,
    });
    for p in &problems {
        let n = integers(&p.question);
        let want = match p.kind {
            ProblemKind::Addition => {
                assert_eq!(n.len(), 2, "{}", p.question);
                n[0] + n[1]
            }
            ProblemKind::Subtraction => {
                assert_eq!(n.len(), 2, "{}", p.question);
                n[0] - n[1]
            }
            ProblemKind::Multiplication => {
                assert_eq!(n.len(), 2, "{}", p.question);
                n[0] * n[1]
            }
            ProblemKind::Division => {
                assert_eq!(n.len(), 2, "{}", p.question);
                assert_eq!(n[0] % n[1], 0, "inexact division: {}", p.question);
                n[0] / n[1]
            }
            ProblemKind::TwoStep => {
                assert_eq!(n.len(), 3, "{}", p.question);
                n[0] * n[1] - n[2]
            }
        };
        assert_eq!(p.answer, want, "{}", p.question);
        assert!(want > 0, "{}", p.question);
        assert!(
            p.solution.ends_with(&format!("\n#### {want}")),
            "{}",
            p.solution
        );
        assert_eq!(
            answer_of(&p.solution),
            Some(want.to_string()),
            "{}",
            p.solution
        );
        assert!(p.question.ends_with('?'), "{}", p.question);
    }
}

#[test]
fn dataset_has_every_kind_as_a_category_and_templates_as_keys() {
    let d = load_generation(
        &GenerationSource::Arithmetic(ArithmeticSpec {
            count: 500,
            seed: 11,
        }),
        None,
        1,
    )
    .unwrap();
    let names: Vec<&str> = ProblemKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(d.label_names, names);
    assert_eq!(d.label_counts(), [100; 5]);
    for e in &d.examples {
        let kind = d.label_names[e.label as usize].as_str();
        let key = e.key.as_deref().unwrap();
        assert!(key.starts_with(&format!("{kind}/")), "{key} for {kind}");
        let response = e.text_pair.as_deref().unwrap();
        assert!(answer_of(response).is_some());
    }
    let keys: std::collections::BTreeSet<&str> =
        d.examples.iter().filter_map(|e| e.key.as_deref()).collect();
    assert_eq!(keys.len(), 10, "{keys:?}");
    let capped = load_generation(
        &GenerationSource::Arithmetic(ArithmeticSpec {
            count: 500,
            seed: 11,
        }),
        Some(50),
        1,
    )
    .unwrap();
    assert_eq!(capped.examples.len(), 50);
    assert_eq!(capped.label_names, d.label_names);
}

/// The mean over clients of the largest category's share of the client's examples.
fn mean_dominant_share(d: &Dataset, kind: PartitionKind, alpha: f64) -> f64 {
    let clients = partition(d, &partition_config(kind, alpha, 10), 5, 0.2, 4).unwrap();
    let shares: Vec<f64> = clients
        .iter()
        .map(|c| {
            let mut counts = vec![0usize; d.num_labels()];
            for &i in c.train.iter().chain(&c.test) {
                counts[d.examples[i].label as usize] += 1;
            }
            *counts.iter().max().unwrap() as f64 / c.len() as f64
        })
        .collect();
    shares.iter().sum::<f64>() / shares.len() as f64
}

#[test]
fn dirichlet_partition_gives_clients_skewed_problem_mixes() {
    let d = arithmetic_dataset(&ArithmeticSpec {
        count: 1000,
        seed: 5,
    })
    .unwrap();
    let skewed = mean_dominant_share(&d, PartitionKind::Dirichlet, 0.1);
    let iid = mean_dominant_share(&d, PartitionKind::Iid, 0.1);
    // Five equally common kinds: an IID client's largest kind is about a fifth of it.
    assert!(iid < 0.3, "IID dominant share {iid}");
    assert!(skewed > 0.5, "Dirichlet(0.1) dominant share {skewed}");
}
