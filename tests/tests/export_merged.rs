//! `fedsa export --merged` on the tiny random BERT: the folder is a plain Hugging Face
//! sequence-classification model — loaded back with no adapter at all, it predicts what
//! `fedsa predict` prints for the client, for LoRA under FedSA (personal B and head), for
//! FedEx-LoRA (a server-corrected base), VeRA, FedDPA (two adapters) and the DoRA plugin; a
//! generation client becomes a causal-LM folder whose adapted weights alone moved.

use std::path::Path;

use candle_core::Device;
use fedsa_adapters::{AdapterSpec, BaseModel, LocalTrainer};
use fedsa_core::config::{AdapterConfig, TrainingConfig};
use fedsa_data::TextTokenizer;
use fedsa_tests::fixtures::{TinyWorld, build_plugin, fedsa_ok};
use fedsa_tests::llama_fixture::{tiny_generation_toml, write_tiny_llama};

const TEXTS: [&str; 3] = ["the movie was great", "awful plot", "a film"];

/// `fedsa predict`'s probabilities for `client`, in text order then label order.
fn predicted(run: &Path, client: usize) -> Vec<f64> {
    let out = fedsa_ok(
        [
            "predict".as_ref(),
            run.as_os_str(),
            "--client".as_ref(),
            client.to_string().as_ref(),
        ]
        .into_iter()
        .chain(TEXTS.iter().map(AsRef::as_ref)),
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().last().unwrap().parse().unwrap())
        .collect()
}

/// The merged folder loaded as a base model with an adapter whose product is zero (LoRA's B
/// starts at zero) and the head it ships: its probabilities, in the same order.
fn merged_predictions(dir: &Path) -> Vec<f64> {
    let labels: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("fedsa_labels.json")).unwrap())
            .unwrap();
    let base = BaseModel::load(dir, &Device::Cpu).unwrap();
    let adapter = AdapterConfig {
        kind: "lora".into(),
        rank: 2,
        alpha: 4.0,
        dropout: 0.0,
        target_modules: vec!["query".into()],
        ..AdapterConfig::default()
    };
    let spec = AdapterSpec::builtin("lora", &adapter).unwrap();
    let tokenizer = TextTokenizer::from_file(&dir.join("tokenizer.json"), 16).unwrap();
    let examples: Vec<_> = TEXTS
        .iter()
        .map(|t| tokenizer.encode_text(t, None).unwrap())
        .collect();
    let trainer = LocalTrainer::new(
        0,
        base,
        &spec,
        &adapter,
        &TrainingConfig::default(),
        labels.len(),
        examples.clone(),
        Vec::new(),
        1,
        1,
    )
    .unwrap();
    trainer
        .predict_proba(&examples)
        .unwrap()
        .into_iter()
        .flatten()
        .map(f64::from)
        .collect()
}

#[test]
fn a_merged_export_predicts_what_fedsa_predict_prints() {
    let world = TinyWorld::new(160);
    let dora = build_plugin("fedsa-plugin-dora");
    let plugins = format!(
        "plugins = [{}]\n",
        toml::Value::from(dora.display().to_string())
    );
    for (name, strategy, adapter) in [
        ("fedsa", "fedsa", "lora"),
        ("fedex", "fedex", "lora"),
        ("vera", "fedsa", "vera"),
        ("feddpa", "feddpa", "lora"),
        ("dora", "fedsa", "dora"),
    ] {
        let extra = if adapter == "dora" {
            plugins.as_str()
        } else {
            ""
        };
        let config = world.config(
            name,
            strategy,
            adapter,
            &format!("{extra}[federation]\nrounds = 2\n"),
        );
        fedsa_ok(["run".as_ref(), config.as_os_str()]);
        let run = world.runs().join(name);
        let out = world.dir.path().join(format!("merged-{name}"));
        fedsa_ok([
            "export".as_ref(),
            run.as_os_str(),
            "--client".as_ref(),
            "1".as_ref(),
            "--merged".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ]);
        for file in [
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "fedsa_export.json",
        ] {
            assert!(out.join(file).is_file(), "{name}: {file}");
        }
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config["architectures"][0], "BertForSequenceClassification");
        assert_eq!(config["id2label"].as_object().unwrap().len(), 2);
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("fedsa_export.json")).unwrap())
                .unwrap();
        assert_eq!(record["kind"], "merged", "{name}");
        // Hugging Face names, no adapter tensors.
        let tensors = fedsa_core::io::load_params(&out.join("model.safetensors")).unwrap();
        assert!(
            tensors
                .names()
                .all(|n| !n.contains("lora") && !n.contains("vera"))
        );
        assert!(tensors.contains("bert.encoder.layer.0.attention.self.query.weight"));
        assert!(
            tensors.contains("bert.pooler.dense.weight") && tensors.contains("classifier.weight")
        );

        let want = predicted(&run, 1);
        let got = merged_predictions(&out);
        assert_eq!(want.len(), TEXTS.len() * 2, "{name}");
        for (w, g) in want.iter().zip(&got) {
            // `fedsa predict` prints 4 decimals.
            assert!((w - g).abs() < 1e-4, "{name}: {want:?} vs {got:?}");
        }
        // Another client's merged model differs (its own B and head, or at least its head).
        if strategy == "fedsa" || strategy == "feddpa" {
            assert_ne!(predicted(&run, 0), want, "{name}");
        }
    }
}

#[test]
fn a_generation_client_merges_into_a_causal_lm_folder() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_tiny_llama(&dir.path().join("tiny-llama"), 3);
    let config = dir.path().join("gen.toml");
    std::fs::write(
        &config,
        tiny_generation_toml(&model, &dir.path().join("runs"), "gen", "fedsa"),
    )
    .unwrap();
    fedsa_ok(["run".as_ref(), config.as_os_str()]);
    let out = dir.path().join("merged");
    fedsa_ok([
        "export".as_ref(),
        dir.path().join("runs/gen").as_os_str(),
        "--client".as_ref(),
        "0".as_ref(),
        "--merged".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["torch_dtype"], "float32");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("fedsa_export.json")).unwrap())
            .unwrap();
    assert_eq!(record["kind"], "merged");
    assert_eq!(record["task"], "generation");
    let merged = fedsa_core::io::load_params(&out.join("model.safetensors")).unwrap();
    let base = fedsa_core::io::load_params(&model.join("model.safetensors")).unwrap();
    assert!(merged.names().all(|n| !n.contains("lora")));
    // Same tensors as the base; the adapted ones (q_proj, v_proj) moved, the others did not.
    let mut moved = 0;
    for (name, t) in base.iter() {
        let m = merged.get(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(m.shape(), t.shape(), "{name}");
        let same = m.data() == t.data();
        let adapted = name.contains("q_proj") || name.contains("v_proj");
        assert_eq!(!same, adapted, "{name}");
        moved += usize::from(!same);
    }
    assert!(moved > 0);
}
