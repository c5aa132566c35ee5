//! `--round` on the commands that read a client from a checkpoint, and the refusal to export a
//! client that never trained: the real binary on the tiny random model.

use std::path::Path;
use std::process::{Command, Output};

use fedsa_tests::fixtures::{TinyWorld, fedsa_bin, fedsa_ok, metric_lines};

fn fedsa(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(fedsa_bin()).args(args).output().unwrap()
}

fn refused(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn record(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("fedsa_export.json")).unwrap()).unwrap()
}

#[test]
fn export_and_predict_read_the_round_asked_and_refuse_one_not_kept() {
    let world = TinyWorld::new(160);
    let config = world.config("rounds", "fedsa", "lora", "[federation]\nrounds = 3\n");
    fedsa_ok(["run".as_ref(), config.as_os_str()]);
    let run = world.runs().join("rounds");
    let out = world.dir.path().join("export-r2");
    fedsa_ok([
        "export".as_ref(),
        run.as_os_str(),
        "--client".as_ref(),
        "0".as_ref(),
        "--round".as_ref(),
        "2".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(record(&out)["round"], 2);
    let last = world.dir.path().join("export-last");
    fedsa_ok([
        "export".as_ref(),
        run.as_os_str(),
        "--client".as_ref(),
        "0".as_ref(),
        "--out".as_ref(),
        last.as_os_str(),
    ]);
    assert_eq!(record(&last)["round"], 3);
    // The two rounds hold different adapters.
    assert_ne!(
        std::fs::read(out.join("adapter_model.safetensors")).unwrap(),
        std::fs::read(last.join("adapter_model.safetensors")).unwrap()
    );
    // Only the last two checkpoints are kept.
    let stderr = refused(&fedsa(&[
        "predict".as_ref(),
        run.as_os_str(),
        "--client".as_ref(),
        "0".as_ref(),
        "--round".as_ref(),
        "1".as_ref(),
        "good film".as_ref(),
    ]));
    assert!(
        stderr.contains("--round 1") && stderr.contains("rounds kept: 2, 3"),
        "{stderr}"
    );
    let ok = fedsa_ok([
        "predict".as_ref(),
        run.as_os_str(),
        "--client".as_ref(),
        "1".as_ref(),
        "--round".as_ref(),
        "2".as_ref(),
        "good film".as_ref(),
    ]);
    assert!(String::from_utf8_lossy(&ok.stdout).contains("good film"));
}

#[test]
fn a_client_that_never_trained_is_not_exported() {
    let world = TinyWorld::new(160);
    let config = world.config(
        "sampled",
        "fedsa",
        "lora",
        "[federation]\nrounds = 1\nclients_per_round = 1\n",
    );
    fedsa_ok(["run".as_ref(), config.as_os_str()]);
    let run = world.runs().join("sampled");
    let trained: Vec<u64> = metric_lines(&run.join("metrics.jsonl"))
        .into_iter()
        .filter(|v| v["kind"] == "client" && !v["train"].is_null())
        .map(|v| v["client"].as_u64().unwrap())
        .collect();
    assert_eq!(trained.len(), 1, "one client per round, one round");
    let idle = (0..3).find(|c| !trained.contains(c)).unwrap();
    let out = world.dir.path().join("export-idle");
    let stderr = refused(&fedsa(&[
        "export".as_ref(),
        run.as_os_str(),
        "--client".as_ref(),
        idle.to_string().as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]));
    assert!(
        stderr.contains(&format!("client {idle} did not train")) && stderr.contains("--round"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing written for a refused export");
    fedsa_ok([
        "export".as_ref(),
        run.as_os_str(),
        "--client".as_ref(),
        trained[0].to_string().as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
}
