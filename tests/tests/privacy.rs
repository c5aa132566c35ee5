//! A differentially private run through the real binary on the tiny model: every round prints
//! and records the ε the accountant gives, and a run crashed between rounds and resumed adds
//! the same noise, so its metrics equal an uninterrupted run's.

use std::process::Command;

use fedsa_aggregators::RdpAccountant;
use fedsa_tests::fixtures::{TinyWorld, fedsa_bin, fedsa_ok, metric_lines, metrics_without_times};

/// Two of three clients per round (q = 2/3), σ = 1.1, δ = 1e-5.
const PRIVATE: &str = "[federation]\nrounds = 3\nclients_per_round = 2\n[privacy]\nclip_norm = 0.5\nnoise_multiplier = 1.1\n";

#[test]
fn a_private_run_reports_epsilon_and_resumes_with_the_same_noise() {
    let world = TinyWorld::new(120);
    let config = world.config("private", "fedsa", "lora", PRIVATE);
    let reference_out = world.dir.path().join("reference");
    let out = fedsa_ok([
        "run".as_ref(),
        "--output-dir".as_ref(),
        reference_out.as_os_str(),
        config.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("aggregator dp-fedavg"), "{stderr}");

    let accountant = RdpAccountant::new(2.0 / 3.0, 1.1, 1e-5);
    let metrics = reference_out.join("private/metrics.jsonl");
    let rounds: Vec<serde_json::Value> = metric_lines(&metrics)
        .into_iter()
        .filter(|r| r["kind"] == "round")
        .collect();
    assert_eq!(rounds.len(), 3);
    for (t, record) in rounds.iter().enumerate() {
        let releases = t + 1;
        let epsilon = accountant.epsilon(releases).0;
        assert_eq!(record["privacy"]["releases"], releases, "{record}");
        assert_eq!(record["privacy"]["delta"], 1e-5, "{record}");
        assert_eq!(
            record["privacy"]["epsilon"].as_f64(),
            Some(epsilon),
            "{record}"
        );
        let line = format!("round {releases}/3: ");
        let printed = stderr
            .lines()
            .find(|l| l.starts_with(&line))
            .unwrap_or_else(|| panic!("no `{line}` in:\n{stderr}"));
        assert!(
            printed.contains(&format!("ε {epsilon:.2} (δ 1e-5)")),
            "{printed}"
        );
    }

    // Crashed after round 1's checkpoint, then resumed: the same rounds, noise included.
    let crashed = Command::new(fedsa_bin())
        .arg("run")
        .arg(&config)
        .env("FEDSA_CRASH_AT", "checkpoint-1-done")
        .output()
        .unwrap();
    assert!(!crashed.status.success(), "the run did not crash");
    fedsa_ok(["run".as_ref(), "--resume".as_ref(), config.as_os_str()]);
    assert_eq!(
        metrics_without_times(&world.runs().join("private/metrics.jsonl")),
        metrics_without_times(&metrics)
    );
}
