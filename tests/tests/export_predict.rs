//! Using a finished run's personalised models: `fedsa predict` and `fedsa export` (PEFT layout).

use std::process::Command;

use fedsa_tests::fixtures::{TinyWorld, fedsa_bin, fedsa_ok};
use serde_json::Value;

fn run(world: &TinyWorld, name: &str, strategy: &str, adapter: &str) -> std::path::PathBuf {
    let config = world.config(name, strategy, adapter, "");
    fedsa_ok(["run".as_ref(), config.as_os_str()]);
    world.runs().join(name)
}

#[test]
fn predict_prints_a_distribution_per_text_for_each_client() {
    let world = TinyWorld::new(200);
    let dir = run(&world, "fedsa", "fedsa", "lora");
    let mut outputs = Vec::new();
    for client in 0..3 {
        let out = Command::new(fedsa_bin())
            .args(["predict"])
            .arg(&dir)
            .args([
                "--client",
                &client.to_string(),
                "the movie was great",
                "awful plot",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let probs: Vec<f64> = text
            .lines()
            .filter(|l| l.contains("fresh") || l.contains("rotten"))
            .map(|l| l.split_whitespace().last().unwrap().parse().unwrap())
            .collect();
        assert_eq!(probs.len(), 4, "{text}");
        for pair in probs.chunks(2) {
            assert!((pair[0] + pair[1] - 1.0).abs() < 1e-3, "{text}");
        }
        outputs.push(probs);
    }
    // Each client has its own B and head under FedSA: their predictions differ.
    assert_ne!(outputs[0], outputs[1]);

    let bad = Command::new(fedsa_bin())
        .args(["predict"])
        .arg(&dir)
        .args(["--client", "7", "text"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--client 7"));
}

#[test]
fn export_writes_peft_layout_with_the_clients_own_weights() {
    let world = TinyWorld::new(200);
    let dir = run(&world, "fedsa-rs", "fedsa", "rslora");
    let out_dir = world.dir.path().join("export-1");
    fedsa_ok([
        "export".as_ref(),
        dir.as_os_str(),
        "--client".as_ref(),
        "1".as_ref(),
        "--out".as_ref(),
        out_dir.as_os_str(),
    ]);
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["task_type"], "SEQ_CLS");
    assert_eq!(config["use_rslora"], true);
    assert_eq!(config["r"], 4);
    assert_eq!(
        config["target_modules"],
        serde_json::json!(["query", "value"])
    );
    let weights = fedsa_core::io::load_params(&out_dir.join("adapter_model.safetensors")).unwrap();
    let key = "base_model.model.bert.encoder.layer.1.attention.self.value.lora_B.weight";
    assert!(
        weights.contains(key),
        "{:?}",
        weights.names().collect::<Vec<_>>()
    );
    assert!(weights.contains("base_model.model.classifier.weight"));
    assert!(weights.contains("base_model.model.bert.pooler.dense.weight"));
    assert_eq!(
        weights.len(),
        2 * 2 * 2 + 4,
        "2 layers x 2 modules x (A, B) + pooler and classifier"
    );
    // The exported B is exactly client 1's B in its last checkpoint.
    let state =
        fedsa_core::io::load_params(&dir.join("checkpoints/round-3/client-1.safetensors")).unwrap();
    assert_eq!(
        weights.get(key).unwrap(),
        state
            .get("encoder.layer.1.attention.self.value.lora_B.weight")
            .unwrap()
    );
}

#[test]
fn vera_export_ships_its_projections() {
    let world = TinyWorld::new(200);
    let dir = run(&world, "vera", "fedsa", "vera");
    let out_dir = world.dir.path().join("export-vera");
    fedsa_ok([
        "export".as_ref(),
        dir.as_os_str(),
        "--client".as_ref(),
        "0".as_ref(),
        "--out".as_ref(),
        out_dir.as_os_str(),
    ]);
    let weights = fedsa_core::io::load_params(&out_dir.join("adapter_model.safetensors")).unwrap();
    assert!(weights.contains("base_model.vera_A"));
    assert!(weights.contains("base_model.vera_B"));
    assert!(
        weights
            .contains("base_model.model.bert.encoder.layer.0.attention.self.query.vera_lambda_d")
    );
}
