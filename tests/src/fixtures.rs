//! Writes tiny but real Hugging Face-style assets: `config.json`, `model.safetensors`,
//! `tokenizer.json`, and a CSV corpus whose label is learnable from its words.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use fedsa_core::{ParamSet, SeededRng};

/// Words that carry the label, and filler that does not.
const POSITIVE: [&str; 6] = ["good", "great", "love", "fine", "superb", "fun"];
const NEGATIVE: [&str; 6] = ["bad", "awful", "hate", "poor", "dull", "boring"];
const FILLER: [&str; 12] = [
    "the", "movie", "film", "plot", "actor", "was", "is", "a", "very", "and", "story", "scene",
];
const MOVIES: [&str; 8] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
];

/// Tiny BERT shape used by the integration tests.
pub const HIDDEN: usize = 32;
pub const LAYERS: usize = 2;
pub const HEADS: usize = 4;
pub const INTERMEDIATE: usize = 64;
pub const MAX_POSITIONS: usize = 64;

/// The vocabulary: special tokens first (ids 0..5), then every word of the corpus.
pub fn vocab() -> Vec<String> {
    let mut v: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
    for w in POSITIVE
        .iter()
        .chain(&NEGATIVE)
        .chain(&FILLER)
        .chain(&MOVIES)
    {
        v.push((*w).to_string());
    }
    v.push(".".into());
    v
}

/// Writes a tiny random BERT model folder (config, weights, tokenizer) into `dir`.
pub fn write_tiny_bert(dir: &Path, seed: u64) -> PathBuf {
    std::fs::create_dir_all(dir).expect("model dir");
    let vocab = vocab();
    let config = serde_json::json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": INTERMEDIATE,
        "vocab_size": vocab.len(),
        "max_position_embeddings": MAX_POSITIONS,
        "type_vocab_size": 2,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02
    });
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config).expect("json"),
    )
    .expect("config.json");
    let mut rng = SeededRng::new(seed);
    let mut p = ParamSet::new();
    let mut normal = |shape: Vec<usize>, std: f32| {
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|_| {
                // Box-Muller from two uniforms.
                let u1 = rng.next_f64().max(1e-12);
                let u2 = rng.next_f64();
                ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32 * std
            })
            .collect();
        (shape, data)
    };
    let mut put = |name: String, (shape, data): (Vec<usize>, Vec<f32>)| {
        p.insert(name, shape, data).expect("tensor");
    };
    let ones = |n: usize| (vec![n], vec![1.0f32; n]);
    let zeros = |n: usize| (vec![n], vec![0.0f32; n]);
    put(
        "embeddings.word_embeddings.weight".into(),
        normal(vec![vocab.len(), HIDDEN], 0.5),
    );
    put(
        "embeddings.position_embeddings.weight".into(),
        normal(vec![MAX_POSITIONS, HIDDEN], 0.1),
    );
    put(
        "embeddings.token_type_embeddings.weight".into(),
        normal(vec![2, HIDDEN], 0.1),
    );
    put("embeddings.LayerNorm.weight".into(), ones(HIDDEN));
    put("embeddings.LayerNorm.bias".into(), zeros(HIDDEN));
    for l in 0..LAYERS {
        let pre = format!("encoder.layer.{l}");
        for m in ["query", "key", "value"] {
            put(
                format!("{pre}.attention.self.{m}.weight"),
                normal(vec![HIDDEN, HIDDEN], 0.2),
            );
            put(
                format!("{pre}.attention.self.{m}.bias"),
                normal(vec![HIDDEN], 0.02),
            );
        }
        put(
            format!("{pre}.attention.output.dense.weight"),
            normal(vec![HIDDEN, HIDDEN], 0.2),
        );
        put(
            format!("{pre}.attention.output.dense.bias"),
            normal(vec![HIDDEN], 0.02),
        );
        put(
            format!("{pre}.attention.output.LayerNorm.weight"),
            ones(HIDDEN),
        );
        put(
            format!("{pre}.attention.output.LayerNorm.bias"),
            zeros(HIDDEN),
        );
        put(
            format!("{pre}.intermediate.dense.weight"),
            normal(vec![INTERMEDIATE, HIDDEN], 0.2),
        );
        put(
            format!("{pre}.intermediate.dense.bias"),
            normal(vec![INTERMEDIATE], 0.02),
        );
        put(
            format!("{pre}.output.dense.weight"),
            normal(vec![HIDDEN, INTERMEDIATE], 0.2),
        );
        put(
            format!("{pre}.output.dense.bias"),
            normal(vec![HIDDEN], 0.02),
        );
        put(format!("{pre}.output.LayerNorm.weight"), ones(HIDDEN));
        put(format!("{pre}.output.LayerNorm.bias"), zeros(HIDDEN));
    }
    put(
        "pooler.dense.weight".into(),
        normal(vec![HIDDEN, HIDDEN], 0.2),
    );
    put("pooler.dense.bias".into(), zeros(HIDDEN));
    fedsa_core::io::save_params(&dir.join("model.safetensors"), &p).expect("weights");
    write_tokenizer(&dir.join("tokenizer.json"), &vocab);
    std::fs::write(dir.join("vocab.txt"), vocab.join("\n") + "\n").expect("vocab.txt");
    dir.to_path_buf()
}

/// A BERT WordPiece `tokenizer.json` over `vocab`.
fn write_tokenizer(path: &Path, vocab: &[String]) {
    let special = |id: usize, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true})
    };
    let map: serde_json::Map<String, serde_json::Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, w)| (w.clone(), serde_json::json!(i)))
        .collect();
    let tok = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(0, "[PAD]"), special(1, "[UNK]"), special(2, "[CLS]"),
                          special(3, "[SEP]"), special(4, "[MASK]")],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                        "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}
            }
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                   "max_input_chars_per_word": 100, "vocab": map}
    });
    std::fs::write(path, serde_json::to_string_pretty(&tok).expect("json")).expect("tokenizer");
}

/// A sentiment corpus in the Rotten Tomatoes layout (`category,text,movie_name,
/// has_plot_and_reviews`): `n` snippets whose label follows from their sentiment words, with a
/// few plot summaries mixed in (which readers must skip).
pub fn write_tiny_corpus(path: &Path, n: usize, seed: u64) -> PathBuf {
    let mut rng = SeededRng::new(seed);
    let mut csv = String::from("category,text,movie_name,has_plot_and_reviews\n");
    for i in 0..n {
        let fresh = rng.next_f64() < 0.6;
        let words = if fresh { &POSITIVE } else { &NEGATIVE };
        let mut text = Vec::new();
        for _ in 0..3 + rng.below(4) {
            text.push(FILLER[rng.below(FILLER.len())]);
        }
        text.insert(rng.below(text.len() + 1), words[rng.below(words.len())]);
        let movie = MOVIES[rng.below(MOVIES.len())];
        let _ = writeln!(
            csv,
            "{},\"{}.\",{movie},True",
            if fresh { "fresh" } else { "rotten" },
            text.join(" ")
        );
        if i % 50 == 0 {
            let _ = writeln!(csv, "plot,\"the plot of {movie} is a story.\",{movie},True");
        }
    }
    std::fs::write(path, csv).expect("corpus");
    path.to_path_buf()
}

/// A complete tiny run config (TOML) over a model folder and corpus, for `strategy` with
/// `adapter` (lora, rslora, vera).
pub fn tiny_config_toml(
    model: &Path,
    corpus: &Path,
    output_dir: &Path,
    name: &str,
    strategy: &str,
    adapter: &str,
) -> String {
    let lr = if adapter == "vera" { 0.02 } else { 0.01 };
    let rank = if adapter == "vera" { 16 } else { 4 };
    format!(
        r#"name = "{name}"
seed = 7
output_dir = "{out}"

[model]
path = "{model}"
max_length = 16

[data]
format = "rotten_tomatoes"
path = "{corpus}"
test_fraction = 0.25

[partition]
kind = "dirichlet"
alpha = 0.5
min_examples = 20

[federation]
num_clients = 3
clients_per_round = 3
rounds = 3

[training]
local_steps = 4
batch_size = 8
eval_batch_size = 32
lr = {lr}

[adapter]
kind = "{adapter}"
rank = {rank}
alpha = 8
dropout = 0.0
target_modules = ["query", "value"]

[strategy]
name = "{strategy}"
"#,
        out = toml_path(output_dir),
        model = toml_path(model),
        corpus = toml_path(corpus),
    )
}

/// A path as a TOML string body (forward slashes, escaped quotes).
pub fn toml_path(p: &Path) -> String {
    p.display()
        .to_string()
        .replace('\\', "/")
        .replace('"', "\\\"")
}

/// The `fedsa` binary, built on first use with the same profile as this test.
pub fn fedsa_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            // Test executables live in <target>/<profile>/deps; the binary one folder up.
            let exe = std::env::current_exe().expect("test executable");
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target profile folder")
                .to_path_buf();
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
            let status = std::process::Command::new(env!("CARGO"))
                .args([
                    "build",
                    "-q",
                    "-p",
                    "fedsa-tui",
                    "--bin",
                    "fedsa",
                    "--manifest-path",
                ])
                .arg(&manifest)
                .env(
                    "CARGO_TARGET_DIR",
                    profile_dir.parent().expect("target folder"),
                )
                .status()
                .expect("running cargo build");
            assert!(status.success(), "building the fedsa binary failed");
            profile_dir.join(format!("fedsa{}", std::env::consts::EXE_SUFFIX))
        })
        .clone()
}

/// A temporary workspace with the tiny model and corpus in it.
pub struct TinyWorld {
    pub dir: tempfile::TempDir,
    pub model: PathBuf,
    pub corpus: PathBuf,
}

impl TinyWorld {
    pub fn new(examples: usize) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let model = write_tiny_bert(&dir.path().join("tiny-bert"), 3);
        let corpus = write_tiny_corpus(&dir.path().join("corpus.csv"), examples, 5);
        Self { dir, model, corpus }
    }

    pub fn runs(&self) -> PathBuf {
        self.dir.path().join("runs")
    }

    /// Writes a config for `strategy`/`adapter` and returns its path.
    pub fn config(&self, name: &str, strategy: &str, adapter: &str, extra: &str) -> PathBuf {
        let text = tiny_config_toml(
            &self.model,
            &self.corpus,
            &self.runs(),
            name,
            strategy,
            adapter,
        );
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, merge_toml(&text, extra)).expect("config");
        path
    }
}

/// Overrides keys of `base` with the tables/keys written in `extra` (TOML text).
pub fn merge_toml(base: &str, extra: &str) -> String {
    let mut doc: toml::Table = toml::from_str(base).expect("base toml");
    let over: toml::Table = toml::from_str(extra).expect("extra toml");
    for (k, v) in over {
        match (doc.get_mut(&k), v) {
            (Some(toml::Value::Table(t)), toml::Value::Table(o)) => t.extend(o),
            (_, v) => {
                doc.insert(k, v);
            }
        }
    }
    toml::to_string(&doc).expect("toml")
}

/// Builds the cdylib of workspace package `package` (e.g. `fedsa-plugin-dora`) and returns its
/// library path. `cargo test` does not build cdylib members, so tests do; cargo's JSON messages
/// give the exact file, whatever the target folder is.
pub fn build_plugin(package: &str) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace");
    let out = std::process::Command::new(env!("CARGO"))
        .current_dir(workspace)
        .args([
            "build",
            "-q",
            "--lib",
            "--message-format=json",
            "-p",
            package,
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("running cargo build");
    assert!(out.status.success(), "building {package} failed");
    let target = package.replace('-', "_");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == target.as_str())
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.to_string_lossy().ends_with(std::env::consts::DLL_SUFFIX))
        .unwrap_or_else(|| panic!("cargo reported no library for {package}"))
}

/// Runs `fedsa ARGS`, asserting that it succeeds; returns its output.
pub fn fedsa_ok<I, S>(args: I) -> std::process::Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = std::process::Command::new(fedsa_bin())
        .args(args)
        .output()
        .expect("running fedsa");
    assert!(
        out.status.success(),
        "fedsa failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The records of a run's `metrics.jsonl`.
pub fn metric_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("metrics.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a metrics record"))
        .collect()
}

/// The records of a run's `metrics.jsonl` without their wall-clock fields, for comparing runs.
pub fn metrics_without_times(path: &Path) -> Vec<serde_json::Value> {
    metric_lines(path)
        .into_iter()
        .map(|mut v| {
            let o = v.as_object_mut().expect("a JSON object");
            o.remove("seconds");
            o.remove("train_seconds");
            v
        })
        .collect()
}

/// The round `checkpoints/LATEST` of run folder `dir` names (0 before the first checkpoint).
pub fn latest_round(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("checkpoints/LATEST"))
        .ok()
        .and_then(|t| t.trim().strip_prefix("round-").and_then(|r| r.parse().ok()))
        .unwrap_or(0)
}

/// Starts `fedsa run CONFIG` and kills it with SIGKILL as soon as its run folder `run_dir`
/// holds the checkpoint of round `round` or a later one; returns the round it was killed at.
#[cfg(unix)]
pub fn run_and_kill_after_checkpoint(config: &Path, run_dir: &Path, round: usize) -> usize {
    use std::os::unix::process::ExitStatusExt;
    use std::time::{Duration, Instant};

    let mut child = std::process::Command::new(fedsa_bin())
        .arg("run")
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting fedsa");
    let deadline = Instant::now() + Duration::from_mins(2);
    while latest_round(run_dir) < round {
        assert!(Instant::now() < deadline, "no checkpoint appeared");
        assert!(
            child.try_wait().expect("polling fedsa").is_none(),
            "the run ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().expect("killing fedsa");
    let status = child.wait().expect("waiting for fedsa");
    assert_eq!(status.signal(), Some(9), "the child must die by SIGKILL");
    latest_round(run_dir)
}

/// Runs `config` (whose run is `name` in `world`) uninterrupted into a reference folder and
/// again killed by SIGKILL after its checkpoint of round 2, then resumed; asserts that both
/// record identical metrics and returns the uninterrupted run's folder.
#[cfg(unix)]
pub fn killed_and_resumed(world: &TinyWorld, name: &str, config: &Path, rounds: usize) -> PathBuf {
    let reference_out = world.dir.path().join(format!("reference-{name}"));
    fedsa_ok([
        "run".as_ref(),
        "--output-dir".as_ref(),
        reference_out.as_os_str(),
        config.as_os_str(),
    ]);
    let run_dir = world.runs().join(name);
    let killed_at = run_and_kill_after_checkpoint(config, &run_dir, 2);
    assert!(killed_at < rounds, "{name}: killed after the run finished");
    fedsa_ok(["run".as_ref(), "--resume".as_ref(), config.as_os_str()]);
    let reference = reference_out.join(name);
    assert_eq!(
        metrics_without_times(&run_dir.join("metrics.jsonl")),
        metrics_without_times(&reference.join("metrics.jsonl")),
        "{name}: the resumed run differs from the uninterrupted one"
    );
    reference
}

/// The optimizer's step count in a saved client state (four 16-bit limbs, as the trainer
/// saves `__optimizer.step`), under `prefix` (a node's state folder saves it as `client/`).
pub fn optimizer_step(state: &fedsa_core::ParamSet, prefix: &str) -> u64 {
    let limbs = state
        .get(&format!("{prefix}__optimizer.step"))
        .expect("an optimizer step")
        .data();
    limbs
        .iter()
        .enumerate()
        .map(|(i, v)| (*v as u64) << (16 * i))
        .sum()
}
