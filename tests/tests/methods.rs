//! The field's methods end to end with the real binary on the tiny random model: each runs,
//! is killed by SIGKILL after a checkpoint and resumed to exactly the metrics of an
//! uninterrupted run, and reports the bytes it actually exchanged (checked against FedIT's,
//! whose exchange it differs from by known tensors).

use std::path::{Path, PathBuf};
use std::process::Command;

use fedsa_tests::fixtures::{
    HIDDEN, LAYERS, TinyWorld, fedsa_bin, fedsa_ok, killed_and_resumed, metric_lines,
};

const ROUNDS: usize = 6;
const EXTRA: &str = "[federation]\nrounds = 6\n[training]\nlocal_steps = 6\n";
/// The tiny model's adapted modules: query and value in each layer, `HIDDEN × HIDDEN`.
const MODULES: usize = 2 * LAYERS;
/// One factor of every module, rank 4 (`tiny_config_toml`): `[4, HIDDEN]` or `[HIDDEN, 4]`.
const FACTOR_BYTES: u64 = (MODULES * 4 * HIDDEN * 4) as u64;
/// One `[out, in]` residual per module.
const RESIDUAL_BYTES: u64 = (MODULES * HIDDEN * HIDDEN * 4) as u64;
const CLIENTS: u64 = 3;

/// Per round: (bytes up, bytes down) from the run's round records.
fn round_bytes(run: &Path) -> Vec<(u64, u64)> {
    metric_lines(&run.join("metrics.jsonl"))
        .into_iter()
        .filter(|v| v["kind"] == "round")
        .map(|v| {
            (
                v["bytes_up"].as_u64().expect("bytes_up"),
                v["bytes_down"].as_u64().expect("bytes_down"),
            )
        })
        .collect()
}

/// Runs `name` (strategy and extra settings) uninterrupted and killed-then-resumed; asserts
/// identical metrics and returns the uninterrupted run's folder.
#[cfg(unix)]
fn run_killed_and_resumed(world: &TinyWorld, name: &str, strategy: &str, extra: &str) -> PathBuf {
    let config = world.config(name, strategy, "lora", &format!("{EXTRA}{extra}"));
    killed_and_resumed(world, name, &config, ROUNDS)
}

#[cfg(unix)]
#[test]
fn every_new_strategy_runs_resumes_exactly_and_counts_what_it_exchanged() {
    let world = TinyWorld::new(200);
    let fedit_config = world.config("fedit", "fedit", "lora", EXTRA);
    fedsa_ok(["run".as_ref(), fedit_config.as_os_str()]);
    let fedit = round_bytes(&world.runs().join("fedit"));
    assert_eq!(fedit.len(), ROUNDS);

    // FedEx: FedIT's exchange, plus the residuals with every evaluation sync (all clients
    // train every round, so the training syncs send nothing new).
    let fedex = round_bytes(&run_killed_and_resumed(&world, "fedex", "fedex", ""));
    for (r, (x, it)) in fedex.iter().zip(&fedit).enumerate() {
        assert_eq!(x.0, it.0, "fedex up, round {}", r + 1);
        assert_eq!(
            x.1,
            it.1 + CLIENTS * RESIDUAL_BYTES,
            "fedex down, round {}",
            r + 1
        );
    }

    // The export carries the drifted base beside the adapter.
    let exported = world.dir.path().join("export-fedex");
    fedsa_ok([
        "export".as_ref(),
        world.runs().join("fedex").as_os_str(),
        "--client".as_ref(),
        "1".as_ref(),
        "--out".as_ref(),
        exported.as_os_str(),
    ]);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exported.join("fedsa_export.json")).unwrap())
            .unwrap();
    assert_eq!(record["base_delta"]["file"], "fedsa_base_delta.safetensors");
    let deltas =
        fedsa_core::io::load_params(&exported.join("fedsa_base_delta.safetensors")).unwrap();
    assert_eq!(deltas.len(), MODULES);
    assert!(
        deltas
            .names()
            .all(|n| n.starts_with("bert.encoder.layer.") && n.ends_with(".weight"))
    );

    // RoLoRA: one factor up per round, never both.
    let rolora = round_bytes(&run_killed_and_resumed(&world, "rolora", "rolora", ""));
    for (r, (x, it)) in rolora.iter().zip(&fedit).enumerate() {
        assert_eq!(
            x.0,
            it.0 - CLIENTS * FACTOR_BYTES,
            "rolora up, round {}",
            r + 1
        );
    }
    let rolora_b = round_bytes(&run_killed_and_resumed(
        &world,
        "rolora-b",
        "rolora",
        "[strategy]\nfirst_factor = \"b\"\n",
    ));
    assert_eq!(rolora_b.len(), ROUNDS);

    // FedSVD: B and the head up (A is frozen on the clients); A comes down when refreshed.
    let fedsvd = round_bytes(&run_killed_and_resumed(
        &world,
        "fedsvd",
        "fedsvd",
        "[strategy]\nrefresh_every = 2\n",
    ));
    for (r, (x, it)) in fedsvd.iter().zip(&fedit).enumerate() {
        assert_eq!(
            x.0,
            it.0 - CLIENTS * FACTOR_BYTES,
            "fedsvd up, round {}",
            r + 1
        );
    }

    // FedDPA: the local adapter never leaves a client: up equals FedIT's (global adapter and
    // head), although each client trains twice the adapter.
    let feddpa = round_bytes(&run_killed_and_resumed(&world, "feddpa", "feddpa", ""));
    for (r, (x, it)) in feddpa.iter().zip(&fedit).enumerate() {
        assert_eq!(x.0, it.0, "feddpa up, round {}", r + 1);
    }
    // Its export is one PEFT adapter of rank 2r, the record saying which half is which.
    let exported = world.dir.path().join("export-feddpa");
    fedsa_ok([
        "export".as_ref(),
        world.runs().join("feddpa").as_os_str(),
        "--client".as_ref(),
        "0".as_ref(),
        "--out".as_ref(),
        exported.as_os_str(),
    ]);
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(exported.join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (config["r"].as_u64(), config["lora_alpha"].as_f64()),
        (Some(8), Some(16.0))
    );
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exported.join("fedsa_export.json")).unwrap())
            .unwrap();
    assert_eq!(
        record["personal_adapter"]["local"],
        serde_json::json!([4, 8])
    );

    // Shared-model FedSA: A up, plus the relayed B and head.
    let fedsa_config = world.config("fedsa", "fedsa", "lora", EXTRA);
    fedsa_ok(["run".as_ref(), fedsa_config.as_os_str()]);
    let fedsa = round_bytes(&world.runs().join("fedsa"));
    let shared = round_bytes(&run_killed_and_resumed(
        &world,
        "fedsa-shared",
        "fedsa",
        "[strategy]\nshare_local_model = true\n",
    ));
    for (r, (x, own)) in shared.iter().zip(&fedsa).enumerate() {
        assert!(
            x.0 > own.0,
            "shared-model up, round {}: {x:?} vs {own:?}",
            r + 1
        );
    }
}

#[test]
fn strategies_that_need_a_low_rank_product_refuse_vera_before_training() {
    let world = TinyWorld::new(120);
    for strategy in ["fedex", "fedsvd", "feddpa"] {
        let config = world.config(&format!("{strategy}-vera"), strategy, "vera", "");
        let out = Command::new(fedsa_bin())
            .arg("run")
            .arg(&config)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{strategy} on VeRA ran");
        assert!(
            err.contains("strategy.name") && err.contains("vera"),
            "{err}"
        );
        assert!(
            !world.runs().join(format!("{strategy}-vera")).exists(),
            "{strategy}: a run folder was left"
        );
    }
}
