//! Whole federations through the real `fedsa` binary on a tiny random BERT: every strategy
//! completes, communication follows the strategy, and the run folder is complete.

use fedsa_tests::fixtures::{TinyWorld, fedsa_ok, metric_lines};
use serde_json::Value;

fn run_ok(world: &TinyWorld, name: &str, strategy: &str, adapter: &str) -> Vec<Value> {
    let config = world.config(name, strategy, adapter, "");
    fedsa_ok(["run".as_ref(), config.as_os_str()]);
    let dir = world.runs().join(name);
    for f in [
        "config.toml",
        "metrics.jsonl",
        "metrics.csv",
        "summary.json",
        "labels.json",
        "partition.json",
    ] {
        assert!(dir.join(f).is_file(), "{name}: missing {f}");
    }
    assert!(dir.join("checkpoints/LATEST").is_file());
    metric_lines(&dir.join("metrics.jsonl"))
}

fn rounds(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l["kind"] == "round").collect()
}

fn up_bytes(lines: &[Value]) -> u64 {
    rounds(lines)[0]["bytes_up"].as_u64().unwrap()
}

#[test]
fn every_strategy_completes_and_communicates_what_it_shares() {
    let world = TinyWorld::new(240);
    let fedsa = run_ok(&world, "fedsa", "fedsa", "lora");
    let fedit = run_ok(&world, "fedit", "fedit", "lora");
    let ffa = run_ok(&world, "ffa", "ffa", "lora");
    let local = run_ok(&world, "local", "local", "lora");
    for lines in [&fedsa, &fedit, &ffa, &local] {
        assert_eq!(rounds(lines).len(), 3);
        let last = rounds(lines)[2];
        assert!(last["mean_accuracy"].as_f64().unwrap() > 0.0);
    }
    // LoRA r=4 on query/value of a 2-layer, hidden-32 model: A and B hold 4*32 values each.
    let per_matrix = 4 * 32 * 4;
    let a_bytes = 2 * 2 * per_matrix as u64;
    let clients = 3;
    assert_eq!(up_bytes(&fedsa), clients * a_bytes, "FedSA sends A only");
    // FedIT sends A, B and the head; its adapter part is twice FedSA's upload.
    let fedit_up = up_bytes(&fedit);
    assert!(fedit_up > 2 * up_bytes(&fedsa));
    assert_eq!(up_bytes(&local), 0);
    // FFA sends B and the head: FedIT's upload less the A matrices.
    assert_eq!(fedit_up - up_bytes(&ffa), clients * a_bytes);

    // FFA: A is identical on every client and never moves between rounds; FedSA's does.
    let a_of = |run: &str, round: usize, client: usize| {
        let path = world.runs().join(run).join(format!(
            "checkpoints/round-{round}/client-{client}.safetensors"
        ));
        let state = fedsa_core::io::load_params(&path).unwrap();
        state.filter(|n| !n.starts_with("__") && n.ends_with("lora_A.weight"))
    };
    let ffa_a = a_of("ffa", 3, 0);
    assert_eq!(ffa_a.len(), 4, "2 layers x query/value");
    assert_eq!(ffa_a, a_of("ffa", 2, 0));
    assert_eq!(ffa_a, a_of("ffa", 3, 1));
    assert_eq!(ffa_a, a_of("ffa", 3, 2));
    assert_ne!(a_of("fedsa", 3, 0), a_of("fedsa", 2, 0));
    // FedSA: every client holds the same aggregated A, and its own B.
    assert_eq!(a_of("fedsa", 3, 0), a_of("fedsa", 3, 1));
    let b_of = |client: usize| {
        let path = world.runs().join(format!(
            "fedsa/checkpoints/round-3/client-{client}.safetensors"
        ));
        fedsa_core::io::load_params(&path)
            .unwrap()
            .filter(|n| !n.starts_with("__") && n.ends_with("lora_B.weight"))
    };
    assert_ne!(b_of(0), b_of(1));
}

#[test]
fn fedsa_halves_the_adapter_upload_of_fedit() {
    // With the head excluded from the comparison, FedSA's upload is exactly half of FedIT's
    // adapter upload (A and B have the same size for square target modules).
    let world = TinyWorld::new(200);
    let fedsa = run_ok(&world, "fedsa", "fedsa", "lora");
    let custom_extra = "[strategy]\nname = \"custom\"\n[strategy.roles]\na = { train = true, share = true }\nb = { train = true, share = true }\nhead = { train = true, share = false }\n";
    let config = world.config("fedit-no-head", "fedit", "lora", custom_extra);
    fedsa_ok(["run".as_ref(), config.as_os_str()]);
    let lines = metric_lines(&world.runs().join("fedit-no-head/metrics.jsonl"));
    assert_eq!(2 * up_bytes(&fedsa), up_bytes(&lines));
}

#[test]
fn rslora_and_vera_runs_complete() {
    let world = TinyWorld::new(200);
    for (name, strategy, adapter) in [
        ("fedsa-rslora", "fedsa", "rslora"),
        ("fedsa-vera", "fedsa", "vera"),
        ("vera", "fedit", "vera"),
    ] {
        let lines = run_ok(&world, name, strategy, adapter);
        assert_eq!(rounds(&lines).len(), 3, "{name}");
    }
}

#[test]
fn a_second_run_of_one_config_gets_its_own_folder() {
    let world = TinyWorld::new(120);
    let config = world.config("twice", "fedsa", "lora", "[federation]\nrounds = 1\n");
    for _ in 0..2 {
        fedsa_ok(["run".as_ref(), config.as_os_str()]);
    }
    let first = std::fs::read_to_string(world.runs().join("twice/config.toml")).unwrap();
    let second = std::fs::read_to_string(world.runs().join("twice-2/config.toml")).unwrap();
    assert!(first.contains("name = \"twice\""));
    assert!(second.contains("name = \"twice-2\""));
    assert!(world.runs().join("twice/summary.json").is_file());
    assert!(world.runs().join("twice-2/summary.json").is_file());
}
