//! Generation runs end to end on a tiny random LLaMA-architecture model: `fedsa run` trains
//! every client on the bundled arithmetic problems and reports exact match, FedSA sends only
//! A-role tensors up, FFA never moves A, and `fedsa generate` answers a prompt with a client's
//! model (several prompts at once as each alone).

use std::ffi::OsStr;
use std::path::Path;

use fedsa_core::io::load_params;
use fedsa_tests::fixtures::{fedsa_bin, fedsa_ok, metric_lines};
use fedsa_tests::llama_fixture::{tiny_generation_toml, write_tiny_llama};

fn run(dir: &Path, model: &Path, name: &str, strategy: &str) -> std::path::PathBuf {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        tiny_generation_toml(model, &dir.join("runs"), name, strategy),
    )
    .unwrap();
    let out = fedsa_ok([Path::new("run"), &config]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("EM %") && table.contains("token acc %"),
        "{table}"
    );
    dir.join("runs").join(name)
}

fn bytes_up(run: &Path) -> u64 {
    metric_lines(&run.join("metrics.jsonl"))
        .iter()
        .filter(|r| r["kind"] == "round")
        .map(|r| r["bytes_up"].as_u64().unwrap())
        .sum()
}

#[test]
fn generation_runs_train_evaluate_and_generate() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_tiny_llama(&dir.path().join("tiny-llama"), 3);

    let fedsa = run(dir.path(), &model, "gen-fedsa", "fedsa");
    let records = metric_lines(&fedsa.join("metrics.jsonl"));
    let evals: Vec<_> = records
        .iter()
        .filter(|r| r["kind"] == "client" && !r["eval"].is_null())
        .map(|r| r["eval"].clone())
        .collect();
    assert_eq!(evals.len(), 3 * 2, "every client is evaluated every round");
    for e in &evals {
        let em = e["extra"]["exact_match"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&em) && e["accuracy"].as_f64() == Some(em));
        assert!(e["loss"].as_f64().unwrap().is_finite());
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fedsa.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["clients"].as_array().unwrap().len(), 3);

    // FedSA uploads A only; FedIT uploads A and B (there is no classifier head).
    let fedit = run(dir.path(), &model, "gen-fedit", "fedit");
    let (up_sa, up_it) = (bytes_up(&fedsa), bytes_up(&fedit));
    let init = load_params(&fedsa.join("init.safetensors")).unwrap();
    let role_bytes = |suffix: &str| -> u64 {
        init.iter()
            .filter(|(name, _)| name.ends_with(suffix))
            .map(|(_, t)| t.num_bytes())
            .sum()
    };
    let (a, b) = (role_bytes("lora_A.weight"), role_bytes("lora_B.weight"));
    assert!(a > 0 && b > 0);
    assert_eq!(up_sa, 2 * 3 * a, "2 rounds x 3 clients x the A matrices");
    assert_eq!(up_it, 2 * 3 * (a + b));

    // FFA-LoRA: A stays at its common init on every client.
    let ffa = run(dir.path(), &model, "gen-ffa", "ffa");
    let last = std::fs::read_to_string(ffa.join("checkpoints/LATEST")).unwrap();
    let ckpt = ffa.join("checkpoints").join(last.trim());
    for k in 0..3 {
        let state = load_params(&ckpt.join(format!("client-{k}.safetensors"))).unwrap();
        for (name, t) in init.iter().filter(|(n, _)| n.ends_with("lora_A.weight")) {
            assert_eq!(
                state.get(name).unwrap().data(),
                t.data(),
                "{name} moved under FFA"
            );
        }
    }

    let out = fedsa_ok([
        OsStr::new("generate"),
        fedsa.as_os_str(),
        OsStr::new("--client"),
        OsStr::new("1"),
        OsStr::new("Ava has 3 apples. How many?"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("Ava has 3 apples") && text.contains("->"),
        "{text}"
    );
    // Several prompts (of different lengths: one batch, left-padded) print, in their order,
    // what each prints alone.
    let prompts = [
        "Ava has 3 apples. How many?",
        "What is 12 plus 30?",
        "Bo had 40 coins and gave 15 to Cy. How many coins does Bo have now?",
    ];
    let alone: String = prompts
        .iter()
        .map(|p| {
            let out = fedsa_ok([
                OsStr::new("generate"),
                fedsa.as_os_str(),
                OsStr::new("--client"),
                OsStr::new("1"),
                OsStr::new(p),
            ]);
            String::from_utf8_lossy(&out.stdout).to_string()
        })
        .collect();
    let mut args = vec![
        OsStr::new("generate"),
        fedsa.as_os_str(),
        OsStr::new("--client"),
        OsStr::new("1"),
    ];
    args.extend(prompts.iter().map(OsStr::new));
    let together = fedsa_ok(args);
    assert_eq!(String::from_utf8_lossy(&together.stdout), alone);
    assert!(alone.starts_with(&text), "{alone}");

    // A classification command on a generation run says what to use instead.
    let out = std::process::Command::new(fedsa_bin())
        .args([
            "predict".as_ref(),
            fedsa.as_os_str(),
            "--client".as_ref(),
            "0".as_ref(),
        ])
        .arg("text")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("fedsa generate"));
}
