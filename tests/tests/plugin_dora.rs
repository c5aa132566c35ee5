//! The DoRA adapter plugin (`plugins/dora`): it loads and lists as an adapter, a federation
//! with it runs through the real `fedsa` binary, each adapted layer computes DoRA's formula, it
//! trains (every parameter gets a gradient, the loss falls), and specs that cannot work are
//! refused with a message that names the problem instead of a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

use candle_core::{D, Device, Tensor};
use fedsa_adapters::adapter::ForwardCtx;
use fedsa_adapters::model::ClientModel;
use fedsa_adapters::{AdapterSpec, BaseModel, LocalTrainer};
use fedsa_aggregators::PluginRegistry;
use fedsa_core::config::{AdapterConfig, TrainingConfig};
use fedsa_core::{Batch, ClientTrainer, EncodedExample, ParamSet, RolePolicy, SeededRng, Strategy};
use fedsa_tests::fixtures::{TinyWorld, build_plugin, fedsa_bin, vocab, write_tiny_bert};
use serde_json::Value;

const RANK: usize = 4;
const ALPHA: f64 = 8.0;

/// The plugin library, built once per test binary.
fn dora_library() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| build_plugin("fedsa-plugin-dora"))
}

fn spec_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dora/dora.json")
}

fn spec() -> AdapterSpec {
    AdapterSpec::load(&spec_file()).expect("the shipped DoRA spec is valid")
}

/// A path as a quoted TOML string.
fn toml_str(p: &Path) -> String {
    toml::Value::from(p.display().to_string()).to_string()
}

fn run(config: &Path) -> Output {
    Command::new(fedsa_bin())
        .arg("run")
        .arg(config)
        .output()
        .expect("fedsa runs")
}

fn round_lines(world: &TinyWorld, name: &str) -> Vec<Value> {
    std::fs::read_to_string(world.runs().join(name).join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json line"))
        .filter(|l| l["kind"] == "round")
        .collect()
}

#[test]
fn plugin_lists_as_an_adapter_and_serves_the_shipped_spec() {
    let lib = dora_library();
    let out = Command::new(fedsa_bin())
        .args(["plugins", "list", "--plugin"])
        .arg(lib)
        .output()
        .expect("fedsa runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.lines().any(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let abi = fedsa_aggregators::FEDSA_PLUGIN_ABI_VERSION.to_string();
            fields.len() >= 4 && fields[..3] == ["adapter", "dora", abi.as_str()]
        }),
        "no `adapter dora <abi version>` line in:\n{stdout}"
    );

    let registry = PluginRegistry::discover_with(&[lib.to_path_buf()], None).unwrap();
    let served = registry
        .adapter_spec("dora")
        .expect("dora is an adapter plugin");
    assert_eq!(served, std::fs::read_to_string(spec_file()).unwrap());
    assert_eq!(
        AdapterSpec::from_text(&served, "plugin").unwrap().name,
        "dora"
    );
}

#[test]
fn federation_with_the_plugin_completes_and_keeps_b_and_magnitude_personal() {
    let world = TinyWorld::new(200);
    let plugin = format!("plugins = [{}]\n", toml_str(dora_library()));
    let out = run(&world.config("dora", "fedsa", "dora", &plugin));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rounds = round_lines(&world, "dora");
    assert_eq!(rounds.len(), 3);
    // FedSA uploads A only: r=4 x in=32 f32 values on query/value of 2 layers, from 3 clients.
    // Were the magnitude vector shared, the upload would be larger.
    let a_bytes = 2 * 2 * (RANK * 32 * 4) as u64;
    assert_eq!(rounds[0]["bytes_up"].as_u64(), Some(3 * a_bytes));

    let client = |k: usize, suffix: &str| {
        let path = world
            .runs()
            .join(format!("dora/checkpoints/round-3/client-{k}.safetensors"));
        fedsa_core::io::load_params(&path)
            .unwrap()
            .filter(|n| !n.starts_with("__") && n.ends_with(suffix))
    };
    let magnitudes = client(0, "lora_magnitude_vector");
    assert_eq!(magnitudes.len(), 4, "one per adapted module");
    assert!(magnitudes.iter().all(|(_, t)| t.shape() == [32]));
    assert_eq!(client(0, "lora_A.weight"), client(1, "lora_A.weight"));
    assert_ne!(client(0, "lora_B.weight"), client(1, "lora_B.weight"));
    assert_ne!(magnitudes, client(1, "lora_magnitude_vector"));

    // The same spec read from its file instead of the library trains identically.
    let from_file = format!("[adapter]\nspec = {}\n", toml_str(&spec_file()));
    let out = run(&world.config("dora-file", "fedsa", "dora", &from_file));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = |l: &Value| (l["round"].clone(), l["mean_accuracy"].clone());
    let plugin_rounds: Vec<_> = rounds.iter().map(key).collect();
    let file_rounds: Vec<_> = round_lines(&world, "dora-file").iter().map(key).collect();
    assert_eq!(plugin_rounds, file_rounds);
}

/// The tiny fixture model, loaded from disk like a real one.
fn tiny_base() -> (tempfile::TempDir, Arc<BaseModel>) {
    let dir = tempfile::tempdir().unwrap();
    let folder = write_tiny_bert(&dir.path().join("tiny-bert"), 3);
    let base = BaseModel::load(&folder, &Device::Cpu).unwrap();
    (dir, base)
}

/// Query (32 -> 32) and the feed-forward input (32 -> 64), so `in != out` is covered.
fn dora_config() -> AdapterConfig {
    AdapterConfig {
        kind: "dora".into(),
        rank: RANK,
        alpha: ALPHA,
        dropout: 0.0,
        target_modules: vec!["query".into(), "intermediate.dense".into()],
        ..AdapterConfig::default()
    }
}

/// Moves every parameter off its init (B starts at zero, which would hide A's contribution).
fn perturb(model: &ClientModel, amount: f32, seed: u64) {
    let mut rng = SeededRng::new(seed);
    let current = model.params().export(&model.params().names()).unwrap();
    let mut moved = ParamSet::new();
    for (name, t) in current.iter() {
        let data = t
            .data()
            .iter()
            .map(|v| v + amount * (rng.next_f64() as f32 - 0.5))
            .collect();
        moved
            .insert(name.clone(), t.shape().to_vec(), data)
            .unwrap();
    }
    model.params().import(&moved).unwrap();
}

/// A tensor of seeded values in [-1, 1).
fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = SeededRng::new(seed);
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.next_f64() as f32 * 2.0 - 1.0).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap()
}

/// Every adapted layer's output, next to `m ⊙ (W0 + s·B·A) / ||W0 + s·B·A||_row · x + bias`
/// with the norm detached (PEFT's `weight_norm.detach()`, the paper's section 4.3).
fn layer_outputs(model: &ClientModel) -> Vec<(String, Tensor, Tensor)> {
    let base = model.base();
    let param = |n: &str| model.params().tensor(n);
    let scale = ALPHA / RANK as f64;
    let mut out = Vec::new();
    for m in base.modules() {
        if !model.adapters().targets().any(|t| t == (m.layer, m.module)) {
            continue;
        }
        let lin = base.linear(m.layer, m.module);
        let x = random(&[2, 3, m.inp], m.layer as u64);
        let got = model
            .adapters()
            .forward(
                m.layer,
                m.module,
                &x,
                lin.forward(&x).unwrap(),
                lin.weight(),
                &param,
                &mut ForwardCtx::eval(),
            )
            .unwrap();
        let a = param(&format!("{}.lora_A.weight", m.name)).unwrap();
        let b = param(&format!("{}.lora_B.weight", m.name)).unwrap();
        let magnitude = param(&format!("{}.lora_magnitude_vector", m.name)).unwrap();
        let merged = (lin.weight() + (b.matmul(&a).unwrap() * scale).unwrap()).unwrap();
        let norm = merged
            .sqr()
            .unwrap()
            .sum(D::Minus1)
            .unwrap()
            .sqrt()
            .unwrap()
            .detach();
        let direction = merged.broadcast_div(&norm.unsqueeze(1).unwrap()).unwrap();
        let weight = direction
            .broadcast_mul(&magnitude.unsqueeze(1).unwrap())
            .unwrap();
        let mut expected = x.broadcast_matmul(&weight.t().unwrap()).unwrap();
        if let Some(bias) = lin.bias() {
            expected = expected.broadcast_add(bias).unwrap();
        }
        out.push((m.name.clone(), got, expected));
    }
    out
}

#[test]
fn each_adapted_layer_is_the_weight_decomposed_formula() {
    let (_dir, base) = tiny_base();
    let model = ClientModel::new(base, &spec(), &dora_config(), 2, 11).unwrap();
    let layers = layer_outputs(&model);
    assert_eq!(layers.len(), 4, "query and intermediate.dense of 2 layers");
    // At init m = ||W0|| and B = 0: the adapted layer is the frozen one.
    for (name, got, expected) in &layers {
        assert!(max_abs_diff(got, expected) < 1e-4, "{name} at init");
    }
    perturb(&model, 0.5, 5);
    for (name, got, expected) in layer_outputs(&model) {
        let d = max_abs_diff(&got, &expected);
        assert!(d < 1e-4, "{name}: differs from DoRA's formula by {d}");
        // Same gradients too: the spec must detach the norm exactly where PEFT does.
        let up = random(got.dims(), 9);
        let backward = |y: &Tensor| (y * &up).unwrap().sum_all().unwrap().backward().unwrap();
        let (g_got, g_expected) = (backward(&got), backward(&expected));
        for suffix in ["lora_A.weight", "lora_B.weight", "lora_magnitude_vector"] {
            let t = model.params().tensor(&format!("{name}.{suffix}")).unwrap();
            let d = max_abs_diff(g_got.get(&t).unwrap(), g_expected.get(&t).unwrap());
            assert!(d < 1e-3, "{name}.{suffix}: gradient differs by {d}");
        }
    }
}

#[test]
fn every_dora_parameter_gets_a_gradient() {
    let (_dir, base) = tiny_base();
    let model = ClientModel::new(base.clone(), &spec(), &dora_config(), 2, 11).unwrap();
    perturb(&model, 0.1, 7);
    let examples = sentiment_examples(8, 1);
    let refs: Vec<_> = examples.iter().collect();
    let batch = Batch::pad(&refs, base.pad_token_id());
    let logits = model.forward(&batch, &mut ForwardCtx::eval()).unwrap();
    let labels = Tensor::from_slice(&batch.labels, batch.batch, &Device::Cpu).unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, &labels).unwrap();
    let grads = loss.backward().unwrap();

    let mut per_suffix = std::collections::BTreeMap::<&str, usize>::new();
    for (name, var, _) in model.params().vars() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let size: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert!(size > 0.0, "zero gradient for {name}");
        for suffix in ["lora_A.weight", "lora_B.weight", "lora_magnitude_vector"] {
            if name.ends_with(suffix) {
                *per_suffix.entry(suffix).or_default() += 1;
            }
        }
    }
    assert_eq!(
        per_suffix.into_iter().collect::<Vec<_>>(),
        [
            ("lora_A.weight", 4),
            ("lora_B.weight", 4),
            ("lora_magnitude_vector", 4)
        ]
    );
    for (name, t) in base.named_tensors() {
        assert!(grads.get(&t).is_none(), "frozen {name} got a gradient");
    }
}

/// `n` labelled snippets over the fixture vocabulary: `[CLS] filler.. word filler.. [SEP]`,
/// labelled by whether the sentiment word is positive (the first six corpus words).
fn sentiment_examples(n: usize, seed: u64) -> Vec<EncodedExample> {
    let words = vocab();
    let id = |w: &str| words.iter().position(|v| v == w).expect("in vocab") as u32;
    let (positive, negative, filler) = (id("good"), id("bad"), id("the"));
    let mut rng = SeededRng::new(seed);
    (0..n)
        .map(|i| {
            let label = (i % 2) as u32;
            let first = if label == 1 { positive } else { negative };
            let mut ids = vec![2];
            for _ in 0..2 + rng.below(4) {
                ids.push(filler + rng.below(12) as u32);
            }
            ids.insert(1 + rng.below(ids.len()), first + rng.below(6) as u32);
            ids.push(3);
            EncodedExample {
                type_ids: vec![0; ids.len()],
                input_ids: ids,
                label,
            }
        })
        .collect()
}

#[test]
fn dora_alone_lowers_the_training_loss() {
    let (_dir, base) = tiny_base();
    let examples = sentiment_examples(32, 3);
    let training = TrainingConfig {
        local_steps: 30,
        batch_size: 16,
        eval_batch_size: 32,
        lr: 1e-2,
        weight_decay: 0.0,
        ..TrainingConfig::default()
    };
    let mut trainer = LocalTrainer::new(
        0,
        base,
        &spec(),
        &dora_config(),
        &training,
        2,
        examples.clone(),
        examples,
        7,
        1,
    )
    .unwrap();
    // The head stays at its random init, so any fall in loss is the adapter's doing.
    let adapter_only = Strategy::from_roles(
        "adapter-only",
        RolePolicy::new(true, false),
        RolePolicy::new(true, false),
        RolePolicy::new(false, false),
    );
    trainer.configure(&adapter_only).unwrap();
    let before = trainer.evaluate().unwrap().loss;
    let magnitudes = |t: &LocalTrainer| {
        let names: Vec<String> = t
            .roles()
            .into_keys()
            .filter(|n| n.ends_with("lora_magnitude_vector"))
            .collect();
        t.params(&names).unwrap()
    };
    let m0 = magnitudes(&trainer);
    trainer.train(1).unwrap();
    let after = trainer.evaluate().unwrap().loss;
    assert!(
        after < 0.9 * before,
        "loss {before:.4} -> {after:.4}: DoRA did not learn"
    );
    assert_ne!(m0, magnitudes(&trainer), "the magnitudes did not move");
}

/// Writes `spec` as a file and runs a one-round federation with it; returns the binary's output.
fn run_with_spec(world: &TinyWorld, name: &str, spec: &str) -> Output {
    let path = world.dir.path().join(format!("{name}.json"));
    std::fs::write(&path, spec).unwrap();
    let extra = format!(
        "[adapter]\nspec = {}\n[federation]\nrounds = 1\n",
        toml_str(&path)
    );
    run(&world.config(name, "fedsa", "dora", &extra))
}

/// A refusal: exit code 1 (not a panic's 101), every `needles` in the message, no panic text.
fn assert_refused(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "`{n}` not in: {stderr}");
    }
}

#[test]
fn specs_that_cannot_work_are_refused_with_the_reason() {
    let world = TinyWorld::new(120);
    let shipped = std::fs::read_to_string(spec_file()).unwrap();
    let unknown = shipped.replace("\"col_norm\"", "\"frobnicate\"");
    assert_ne!(unknown, shipped);
    let out = run_with_spec(&world, "unknown-op", &unknown);
    assert_refused(&out, &["program[3].op", "unknown op `frobnicate`"]);

    // A [r, r] matrix applied to x, whose last dimension is `in`.
    let misfit = r#"{
      "name": "misfit",
      "params": [
        {"name": "mix", "peft_name": "mix.weight", "shape": ["r", "r"],
         "init": {"kind": "zeros"}, "role": "a"}
      ],
      "program": [
        {"op": "linear", "args": ["x", "mix"], "out": "h"},
        {"op": "add", "args": ["base", "h"], "out": "y"}
      ]
    }"#;
    let out = run_with_spec(&world, "misfit", misfit);
    assert_refused(
        &out,
        &["program[0]", "linear needs x [..., in] and w [out, in]"],
    );
    for name in ["unknown-op", "misfit"] {
        assert!(
            !world.runs().join(name).join("metrics.jsonl").exists(),
            "{name}: a refused run started training"
        );
    }
}
