//! Fault handling end to end: injected failures are reported and the run completes; bad
//! configs exit non-zero with a message naming the field or file, and write no run folder.

use std::process::Command;

use fedsa_tests::fixtures::{TinyWorld, fedsa_bin, metric_lines};
use serde_json::Value;

#[test]
fn failure_injection_completes_and_reports_every_failure() {
    let world = TinyWorld::new(160);
    let extra = "[federation]\nrounds = 10\nfailure_rate = 0.3\n[training]\nlocal_steps = 1\n";
    let config = world.config("faulty", "fedsa", "lora", extra);
    let out = Command::new(fedsa_bin())
        .arg("run")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = metric_lines(&world.runs().join("faulty/metrics.jsonl"));
    let failed_clients: Vec<&Value> = lines
        .iter()
        .filter(|l| l["kind"] == "client" && !l["failure"].is_null())
        .collect();
    let failed_in_rounds: u64 = lines
        .iter()
        .filter(|l| l["kind"] == "round")
        .map(|l| l["failed"].as_array().unwrap().len() as u64)
        .sum();
    assert!(
        !failed_clients.is_empty(),
        "30% of 30 draws injected no failure"
    );
    assert_eq!(failed_clients.len() as u64, failed_in_rounds);
    for f in &failed_clients {
        assert!(f["failure"].as_str().unwrap().contains("injected failure"));
        let line = format!("round {}: client {} failed", f["round"], f["client"]);
        assert!(stderr.contains(&line), "missing `{line}` in:\n{stderr}");
    }
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(world.runs().join("faulty/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["failures"].as_u64().unwrap(), failed_in_rounds);
    assert_eq!(summary["rounds"], 10);
}

#[test]
fn bad_configs_exit_non_zero_naming_the_problem_and_write_nothing() {
    let world = TinyWorld::new(100);
    let cases: [(&str, &str, &str); 5] = [
        (
            "unknown-key",
            "[federation]\nnum_clientz = 3\n",
            "num_clientz",
        ),
        (
            "wrong-type",
            "[adapter]\nrank = \"eight\"\n",
            "adapter.rank",
        ),
        ("rank-zero", "[adapter]\nrank = 0\n", "adapter.rank"),
        (
            "too-many-per-round",
            "[federation]\nclients_per_round = 5\n",
            "federation.clients_per_round",
        ),
        (
            "no-model",
            "[model]\npath = \"no/such/model\"\n",
            "no/such/model",
        ),
    ];
    for (name, extra, expected) in cases {
        let config = world.config(name, "fedsa", "lora", extra);
        let out = Command::new(fedsa_bin())
            .arg("run")
            .arg(&config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} succeeded");
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{name}: `{expected}` not in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(
            !world.runs().join(name).exists(),
            "{name} left a run folder"
        );
    }
}
