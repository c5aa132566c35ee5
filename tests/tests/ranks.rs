//! Clients of different ranks end to end with the real binary on the tiny random model: under
//! FLoRA, FlexLoRA and HetLoRA, clients of ranks 2, 4 and 8 train, resume after SIGKILL to the
//! metrics of an uninterrupted run, send (and receive) bytes in proportion to their ranks, export
//! PEFT folders whose `r` is their own, predict and are analysed; a strategy that needs one
//! rank refuses the config naming the field.

use std::path::Path;
use std::process::Command;

use fedsa_tests::fixtures::{
    HIDDEN, LAYERS, TinyWorld, fedsa_bin, fedsa_ok, killed_and_resumed, metric_lines,
};

const ROUNDS: usize = 4;
const RANKS: [u64; 3] = [2, 4, 8];
const EXTRA: &str =
    "[federation]\nrounds = 4\n[training]\nlocal_steps = 4\n[clients]\nrank = [2, 4, 8]\n";
/// The tiny model's adapted modules: query and value in each layer, `HIDDEN × HIDDEN`.
const MODULES: u64 = 2 * LAYERS as u64;
/// What one rank more adds to a client's factors: a row of A and a column of B per module.
const BYTES_PER_RANK: u64 = MODULES * 2 * HIDDEN as u64 * 4;

/// `(bytes up, bytes down)` of each client in round `round`.
fn client_bytes(run: &Path, round: u64) -> Vec<(u64, u64)> {
    metric_lines(&run.join("metrics.jsonl"))
        .into_iter()
        .filter(|v| v["kind"] == "client" && v["round"].as_u64() == Some(round))
        .map(|v| {
            (
                v["bytes_up"].as_u64().expect("bytes_up"),
                v["bytes_down"].as_u64().expect("bytes_down"),
            )
        })
        .collect()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[cfg(unix)]
#[test]
fn each_rank_strategy_trains_resumes_exports_and_counts_bytes_by_rank() {
    let world = TinyWorld::new(200);
    for strategy in ["flora", "flexlora", "hetlora"] {
        let config = world.config(strategy, strategy, "lora", EXTRA);
        let run = killed_and_resumed(&world, strategy, &config, ROUNDS);

        // Up: each client's own factors (plus the same head), so the differences are the ranks'.
        let first = client_bytes(&run, 1);
        assert_eq!(first.len(), 3, "{strategy}");
        for (k, rank) in RANKS.iter().enumerate() {
            assert_eq!(
                first[k].0 - first[0].0,
                (rank - RANKS[0]) * BYTES_PER_RANK,
                "{strategy}: client {k} up"
            );
        }
        // Down after the first aggregation: FlexLoRA and HetLoRA send each client its own
        // rank's factors; FLoRA sends every client the same merged correction.
        let second = client_bytes(&run, 2);
        for (k, rank) in RANKS.iter().enumerate() {
            let want = if strategy == "flora" {
                0
            } else {
                (rank - RANKS[0]) * BYTES_PER_RANK
            };
            assert_eq!(
                second[k].1 - second[0].1,
                want,
                "{strategy}: client {k} down"
            );
        }

        for (k, rank) in RANKS.iter().enumerate() {
            let out = world.dir.path().join(format!("export-{strategy}-{k}"));
            fedsa_ok([
                "export".as_ref(),
                run.as_os_str(),
                "--client".as_ref(),
                k.to_string().as_ref(),
                "--out".as_ref(),
                out.as_os_str(),
            ]);
            let peft = json(&out.join("adapter_config.json"));
            assert_eq!(peft["r"].as_u64(), Some(*rank), "{strategy}: client {k}");
            let tensors =
                fedsa_core::io::load_params(&out.join("adapter_model.safetensors")).unwrap();
            let a = tensors
                .iter()
                .find(|(n, _)| n.contains("lora_A"))
                .expect("an A factor")
                .1;
            assert_eq!(
                a.shape(),
                &[*rank as usize, HIDDEN],
                "{strategy}: client {k}"
            );
            // FLoRA's learning lives in the merged base, exported beside the adapter.
            let record = json(&out.join("fedsa_export.json"));
            assert_eq!(
                record["base_delta"].is_object(),
                strategy == "flora",
                "{strategy}: {record}"
            );
        }

        let predicted = Command::new(fedsa_bin())
            .arg("predict")
            .arg(&run)
            .args(["--client", "2", "the movie was great"])
            .output()
            .unwrap();
        assert!(
            predicted.status.success(),
            "{strategy}: {}",
            String::from_utf8_lossy(&predicted.stderr)
        );

        let analysed = fedsa_ok([
            "analyze".as_ref(),
            run.as_os_str(),
            "--json".as_ref(),
            "--png".as_ref(),
            world.dir.path().join(format!("{strategy}.png")).as_os_str(),
        ]);
        let report: serde_json::Value = serde_json::from_slice(&analysed.stdout).unwrap();
        let notes = report["notes"].to_string();
        assert!(notes.contains("ranks differ"), "{strategy}: {notes}");
        for t in report["tensors"].as_array().unwrap() {
            let s = t["subspace"].as_f64().unwrap();
            assert!((0.0..=1.0 + 1e-9).contains(&s), "{strategy}: {t}");
        }
    }
}

#[test]
fn a_strategy_that_needs_one_rank_refuses_differing_ranks_naming_the_field() {
    let world = TinyWorld::new(120);
    let config = world.config("fedsa-ranks", "fedsa", "lora", EXTRA);
    let out = Command::new(fedsa_bin())
        .arg("run")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in ["clients.rank", "[2, 4, 8]", "flora, flexlora, hetlora"] {
        assert!(stderr.contains(needle), "{needle} missing from: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!world.runs().join("fedsa-ranks/metrics.jsonl").exists());
}
