//! `fedsa export` layouts and names on the tiny random models, without Python: generation runs
//! export the decoder adapter in PEFT's causal-LM layout (LoRA, rsLoRA, VeRA), and every export
//! records how it was made in `fedsa_export.json`.

use std::path::{Path, PathBuf};

use fedsa_core::io::load_params;
use fedsa_tests::fixtures::{TinyWorld, fedsa_ok};
use fedsa_tests::llama_fixture::{LAYERS, tiny_generation_toml, write_tiny_llama};
use serde_json::Value;

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn export(run: &Path, client: usize, out: &Path) {
    fedsa_ok([
        "export".as_ref(),
        run.as_os_str(),
        "--client".as_ref(),
        client.to_string().as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
}

fn generation_run(dir: &Path, model: &Path, adapter: &str) -> PathBuf {
    let name = format!("gen-{adapter}");
    let toml = tiny_generation_toml(model, &dir.join("runs"), &name, "fedsa")
        .replace("kind = \"lora\"", &format!("kind = \"{adapter}\""));
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, toml).unwrap();
    fedsa_ok([Path::new("run"), &config]);
    dir.join("runs").join(name)
}

#[test]
fn generation_exports_are_peft_causal_lm_adapters_with_llama_names() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_tiny_llama(&dir.path().join("tiny-llama"), 3);
    for adapter in ["lora", "rslora", "vera"] {
        let run = generation_run(dir.path(), &model, adapter);
        let out = dir.path().join(format!("export-{adapter}"));
        export(&run, 1, &out);

        let config = json(&out.join("adapter_config.json"));
        assert_eq!(config["task_type"], "CAUSAL_LM", "{adapter}");
        assert_eq!(config["r"], 4);
        assert_eq!(
            config["target_modules"],
            serde_json::json!(["q_proj", "v_proj"])
        );
        assert_eq!(
            config["base_model_name_or_path"],
            model.display().to_string()
        );
        assert_eq!(config["modules_to_save"], serde_json::json!([]));

        let weights = load_params(&out.join("adapter_model.safetensors")).unwrap();
        let names: Vec<&String> = weights.names().collect();
        let state = load_params(&run.join("checkpoints/round-2/client-1.safetensors")).unwrap();
        // Each adapted module carries two trained tensors (A and B, or VeRA's two vectors).
        let factor = if adapter == "vera" {
            assert_eq!(config["peft_type"], "VERA");
            assert_eq!(config["save_projection"], true);
            // The projections are drawn from fedsa's seed, not PEFT's: they ship.
            assert!(weights.contains("base_model.vera_A"), "{names:?}");
            assert!(weights.contains("base_model.vera_B"), "{names:?}");
            "vera_lambda_b"
        } else {
            assert_eq!(config["peft_type"], "LORA");
            assert_eq!(config["lora_alpha"], 8.0);
            assert_eq!(config["use_rslora"], adapter == "rslora");
            "lora_B.weight"
        };
        let extra = if adapter == "vera" { 2 } else { 0 };
        assert_eq!(weights.len(), LAYERS * 2 * 2 + extra, "{names:?}");
        let key = format!("model.layers.1.self_attn.v_proj.{factor}");
        let peft_name = format!("base_model.model.{key}");
        // The exported personal factor is exactly client 1's in its last checkpoint.
        assert_eq!(
            weights
                .get(&peft_name)
                .unwrap_or_else(|| panic!("{peft_name} in {names:?}")),
            state.get(&key).unwrap(),
            "{adapter}"
        );

        let record = json(&out.join("fedsa_export.json"));
        assert_eq!(record["round"], 2);
        assert_eq!(record["client"], 1);
        assert_eq!(record["strategy"], "fedsa");
        assert_eq!(record["adapter"], adapter);
        assert_eq!(record["kind"], "peft");
        assert_eq!(record["task"], "generation");
        assert_eq!(record["base_loader"]["format"], "huggingface");
    }
}

#[test]
fn classification_exports_record_how_they_were_made() {
    let world = TinyWorld::new(200);
    let config = world.config("rec", "fedit", "lora", "");
    fedsa_ok(["run".as_ref(), config.as_os_str()]);
    let out = world.dir.path().join("export-rec");
    export(&world.runs().join("rec"), 2, &out);
    let record = json(&out.join("fedsa_export.json"));
    assert_eq!(record["client"], 2);
    assert_eq!(record["round"], 3);
    assert_eq!(record["strategy"], "fedit");
    assert_eq!(record["task"], "classification");
    assert_eq!(
        json(&out.join("adapter_config.json"))["task_type"],
        "SEQ_CLS"
    );
    assert!(out.join("fedsa_labels.json").is_file());
}

/// The DoRA plugin on the decoder: PEFT's `use_dora` adapter with each module's magnitude
/// vector under PEFT's name, the client's own.
#[test]
fn a_dora_generation_client_exports_use_dora_with_its_magnitudes() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_tiny_llama(&dir.path().join("tiny-llama"), 3);
    let plugin = fedsa_tests::fixtures::build_plugin("fedsa-plugin-dora");
    let toml = tiny_generation_toml(&model, &dir.path().join("runs"), "gen-dora", "fedsa")
        .replace("kind = \"lora\"", "kind = \"dora\"");
    let toml = format!(
        "plugins = [{}]\n{toml}",
        toml::Value::from(plugin.display().to_string())
    );
    let config = dir.path().join("gen-dora.toml");
    std::fs::write(&config, toml).unwrap();
    fedsa_ok([Path::new("run"), &config]);
    let run = dir.path().join("runs/gen-dora");
    let out = dir.path().join("export-dora");
    export(&run, 1, &out);

    let config = json(&out.join("adapter_config.json"));
    assert_eq!(
        (
            &config["peft_type"],
            &config["task_type"],
            &config["use_dora"]
        ),
        (
            &Value::from("LORA"),
            &Value::from("CAUSAL_LM"),
            &Value::from(true)
        )
    );
    let weights = load_params(&out.join("adapter_model.safetensors")).unwrap();
    let names: Vec<&String> = weights.names().collect();
    // A, B and the magnitude on q_proj and v_proj of every layer.
    assert_eq!(weights.len(), LAYERS * 2 * 3, "{names:?}");
    let state = load_params(&run.join("checkpoints/round-2/client-1.safetensors")).unwrap();
    let key = "model.layers.1.self_attn.v_proj.lora_magnitude_vector";
    assert_eq!(
        weights
            .get(&format!("base_model.model.{key}"))
            .unwrap_or_else(|| panic!("{key} in {names:?}")),
        state.get(key).unwrap()
    );
    assert_eq!(json(&out.join("fedsa_export.json"))["adapter"], "dora");
}
