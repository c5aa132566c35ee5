//! What batch jobs rely on, through the real binary on the tiny model: a run that learned
//! nothing exits non-zero with its reason; the model's limits are checked before a run folder
//! exists; resume after a crash at any moment rewrites every file byte for byte (wall times
//! aside) and adds the wall times up; damaged checkpoints are refused; nothing half-written is
//! left behind; and export, analyze and plugin search say what they did not do.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fedsa_tests::fixtures::{TinyWorld, fedsa_bin, fedsa_ok};
use serde_json::Value;

fn fedsa(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(fedsa_bin()).args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn summary(run: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap()
}

/// `text` with the number after every `"seconds"` / `"train_seconds"` key replaced, so two
/// runs' files compare byte for byte apart from wall times.
fn without_wall_times(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("seconds\":") {
        let (head, tail) = rest.split_at(i + "seconds\":".len());
        out.push_str(head);
        let tail = tail.trim_start();
        let end = tail
            .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
            .unwrap_or(tail.len());
        out.push('T');
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `config` with the process set to crash at `point`; asserts that it crashed there.
fn run_crashing_at(config: &Path, point: &str, out_dir: Option<&Path>) {
    let mut cmd = Command::new(fedsa_bin());
    cmd.arg("run");
    if let Some(dir) = out_dir {
        cmd.arg("--output-dir").arg(dir);
    }
    let crashed = cmd
        .arg(config)
        .env("FEDSA_CRASH_AT", point)
        .output()
        .unwrap();
    assert!(!crashed.status.success(), "{point}: the run did not crash");
    assert!(
        stderr(&crashed).contains(&format!("crashing at {point}")),
        "{point}: {}",
        stderr(&crashed)
    );
}

#[test]
fn wall_times_are_masked_and_nothing_else() {
    let a = r#"{"round":1,"seconds":1.25,"train_seconds":3e-2,"x":0.5}"#;
    let b = r#"{"round":1,"seconds":17.0,"train_seconds":0.9,"x":0.5}"#;
    assert_eq!(without_wall_times(a), without_wall_times(b));
    let c = r#"{"round":1,"seconds":17.0,"train_seconds":0.9,"x":0.51}"#;
    assert_ne!(without_wall_times(a), without_wall_times(c));
    assert_eq!(
        without_wall_times("{\n  \"seconds\": 12.5\n}"),
        "{\n  \"seconds\":T\n}"
    );
}

#[test]
fn a_run_whose_every_client_fails_exits_3_with_the_reason() {
    let world = TinyWorld::new(120);
    // NaN weights: every client's loss is NaN, so every local round fails.
    let weights = world.model.join("model.safetensors");
    let mut params = fedsa_core::io::load_params(&weights).unwrap();
    let names: Vec<String> = params.names().cloned().collect();
    for name in names {
        let t = params.get_mut(&name).unwrap();
        t.data_mut().fill(f32::NAN);
    }
    fedsa_core::io::save_params(&weights, &params).unwrap();
    let config = world.config("nan", "fedsa", "lora", "[federation]\nrounds = 2\n");
    let out = fedsa(&["run".as_ref(), config.as_os_str()]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{e}");
    assert!(
        e.contains("the run failed: no client trained successfully in any of 2 rounds"),
        "{e}"
    );
    assert!(!e.contains("panicked"), "{e}");
    let run = world.runs().join("nan");
    let s = summary(&run);
    assert!(
        s["failed"].as_str().unwrap().contains("no client trained"),
        "{s}"
    );
    assert!(
        run.join("metrics.jsonl").is_file(),
        "the run folder is kept"
    );
}

#[test]
fn failures_above_the_configured_share_exit_3_and_below_it_exit_0() {
    let world = TinyWorld::new(160);
    let run = |name: &str, limit: &str| {
        let extra = format!(
            "[federation]\nrounds = 6\nfailure_rate = 0.3\n{limit}\n[training]\nlocal_steps = 1\n"
        );
        let config = world.config(name, "fedsa", "lora", &extra);
        fedsa(&["run".as_ref(), config.as_os_str()])
    };
    let strict = run("strict", "max_failure_rate = 0.01");
    let e = stderr(&strict);
    assert_eq!(strict.status.code(), Some(3), "{e}");
    assert!(e.contains("federation.max_failure_rate = 0.01"), "{e}");
    let lenient = run("lenient", "max_failure_rate = 1.0");
    assert_eq!(lenient.status.code(), Some(0), "{}", stderr(&lenient));
    assert!(summary(&world.runs().join("lenient"))["failed"].is_null());
}

#[test]
fn the_models_limits_are_checked_before_a_run_folder_exists() {
    let world = TinyWorld::new(80);
    let config = world.config("long", "fedsa", "lora", "[model]\nmax_length = 100000\n");
    let out = fedsa(&["run".as_ref(), config.as_os_str()]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains(&format!(
            "config {}: model.max_length: 100000 is more than the",
            config.display()
        )) && e.contains("max_position_embeddings")
            && e.contains("config.json"),
        "{e}"
    );
    assert!(!world.runs().join("long").exists());
}

/// A reference run and the same config crashed at `point` then resumed (once more when the
/// crash left nothing to resume but the folder): every file but wall times is equal.
fn crash_and_resume(world: &TinyWorld, point: &str) {
    let extra = "[federation]\nrounds = 3\nclients_per_round = 2\n[training]\nlocal_steps = 3\n";
    let config = world.config("crashy", "fedsa", "lora", extra);
    let reference = world.dir.path().join("reference");
    if !reference.join("crashy/summary.json").exists() {
        fedsa_ok([
            "run".as_ref(),
            "--output-dir".as_ref(),
            reference.as_os_str(),
            config.as_os_str(),
        ]);
    }
    let out_dir = world.dir.path().join(format!("crash-{point}"));
    run_crashing_at(&config, point, Some(&out_dir));
    let run = out_dir.join("crashy");
    assert!(!run.join("summary.json").exists(), "{point}");
    fedsa_ok([
        "run".as_ref(),
        "--resume".as_ref(),
        "--output-dir".as_ref(),
        out_dir.as_os_str(),
        config.as_os_str(),
    ]);
    // The configs differ in output_dir only; everything the run wrote must be equal.
    let config_of = |dir: &Path| -> String {
        read(&dir.join("config.toml"))
            .lines()
            .filter(|l| !l.starts_with("output_dir"))
            .collect()
    };
    assert_eq!(config_of(&run), config_of(&reference.join("crashy")));
    for file in [
        "metrics.jsonl",
        "summary.json",
        "partition.json",
        "labels.json",
    ] {
        assert_eq!(
            without_wall_times(&read(&run.join(file))),
            without_wall_times(&read(&reference.join("crashy").join(file))),
            "{point}: {file} differs"
        );
    }
    assert_eq!(
        std::fs::read(run.join("init.safetensors")).unwrap(),
        std::fs::read(reference.join("crashy/init.safetensors")).unwrap()
    );
    let leftovers: Vec<PathBuf> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{point}: {leftovers:?}");
}

#[test]
fn a_run_crashed_at_any_moment_resumes_to_the_same_files() {
    let world = TinyWorld::new(160);
    for point in [
        "run-started",
        "round-1-recorded",
        "checkpoint-1-written",
        "checkpoint-1-renamed",
        "checkpoint-1-done",
        "round-2-recorded",
        "checkpoint-2-written",
        "checkpoint-2-done",
        "round-3-recorded",
        "checkpoint-3-renamed",
    ] {
        crash_and_resume(&world, point);
    }
}

#[test]
fn wall_times_add_up_across_resumes() {
    let world = TinyWorld::new(120);
    let config = world.config("timed", "fedsa", "lora", "[federation]\nrounds = 3\n");
    run_crashing_at(&config, "checkpoint-2-done", None);
    fedsa_ok(["run".as_ref(), "--resume".as_ref(), config.as_os_str()]);
    let run = world.runs().join("timed");
    let lines = fedsa_tests::fixtures::metric_lines(&run.join("metrics.jsonl"));
    let round_seconds: f64 = lines
        .iter()
        .filter(|l| l["kind"] == "round")
        .map(|l| l["seconds"].as_f64().unwrap())
        .sum();
    let first = summary(&run)["seconds"].as_f64().unwrap();
    assert!(
        first >= round_seconds,
        "summary {first} s < the rounds' {round_seconds} s"
    );
    // Resuming a finished run trains nothing and keeps its time.
    fedsa_ok(["run".as_ref(), "--resume".as_ref(), config.as_os_str()]);
    let again = summary(&run)["seconds"].as_f64().unwrap();
    assert!(
        again >= round_seconds,
        "{again} s after resuming a finished run"
    );
}

/// The last checkpoint of `run`.
fn last_checkpoint(run: &Path) -> PathBuf {
    let name = read(&run.join("checkpoints/LATEST"));
    run.join("checkpoints").join(name.trim())
}

#[test]
fn damaged_or_inconsistent_checkpoints_are_refused_on_resume() {
    let world = TinyWorld::new(120);
    let config = world.config("damaged", "fedsa", "lora", "[federation]\nrounds = 3\n");
    run_crashing_at(&config, "checkpoint-2-done", None);
    let run = world.runs().join("damaged");
    let ckpt = last_checkpoint(&run);
    // Finite garbage in a client's tensor: its last float's bytes changed.
    let file = ckpt.join("client-1.safetensors");
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes[n - 2] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    let out = fedsa(&["run".as_ref(), "--resume".as_ref(), config.as_os_str()]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains("client-1.safetensors") && e.contains("damaged"),
        "{e}"
    );
    assert!(!run.join("summary.json").exists());

    // A server.json whose round disagrees, with a manifest that vouches for it.
    bytes[n - 2] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    let server = ckpt.join("server.json");
    let text = read(&server).replace("\"completed_rounds\": 2", "\"completed_rounds\": 1");
    std::fs::write(&server, &text).unwrap();
    let manifest = ckpt.join("manifest.json");
    let mut m: Value = serde_json::from_str(&read(&manifest)).unwrap();
    m["files"]["server.json"] = format!("{:08x}", crc32(text.as_bytes())).into();
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let out = fedsa(&["run".as_ref(), "--resume".as_ref(), config.as_os_str()]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains("completed_rounds is 1, but the checkpoint is of round 2"),
        "{e}"
    );

    // A checkpoint without its manifest cannot be checked, so resume refuses it.
    std::fs::remove_file(&manifest).unwrap();
    let out = fedsa(&["run".as_ref(), "--resume".as_ref(), config.as_os_str()]);
    assert!(stderr(&out).contains("manifest.json"), "{}", stderr(&out));
}

/// CRC-32 (IEEE), bit by bit: the test's own, independent of the engine's.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_run_stopped_before_its_first_checkpoint_resumes_in_its_folder_and_a_rerun_says_so() {
    let world = TinyWorld::new(120);
    let config = world.config("early", "fedsa", "lora", "[federation]\nrounds = 2\n");
    run_crashing_at(&config, "round-1-recorded", None);
    let run = world.runs().join("early");
    assert!(!run.join("checkpoints/LATEST").exists());
    // A plain rerun never overwrites, but says how to continue.
    let rerun = fedsa_ok(["run".as_ref(), config.as_os_str()]);
    let e = stderr(&rerun);
    assert!(
        e.contains("holds an unfinished run") && e.contains("--resume"),
        "{e}"
    );
    assert!(world.runs().join("early-2/summary.json").is_file());
    let resumed = fedsa_ok(["run".as_ref(), "--resume".as_ref(), config.as_os_str()]);
    assert!(
        stderr(&resumed).contains("starting from round 1 in the same folder"),
        "{}",
        stderr(&resumed)
    );
    assert_eq!(
        without_wall_times(&read(&run.join("metrics.jsonl"))),
        without_wall_times(&read(&world.runs().join("early-2/metrics.jsonl")))
    );
}

#[test]
fn resume_fails_before_training_when_the_folder_cannot_be_written() {
    let world = TinyWorld::new(120);
    let config = world.config("stuck", "fedsa", "lora", "[federation]\nrounds = 3\n");
    run_crashing_at(&config, "checkpoint-1-done", None);
    let run = world.runs().join("stuck");
    let before = read(&run.join("metrics.jsonl"));
    // A folder in the place of metrics.csv: its rewrite cannot land (permissions would not
    // stop root, which CI may be).
    std::fs::remove_file(run.join("metrics.csv")).unwrap();
    std::fs::create_dir_all(run.join("metrics.csv/blocked")).unwrap();
    let out = fedsa(&["run".as_ref(), "--resume".as_ref(), config.as_os_str()]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("cannot be written"), "{e}");
    assert!(!e.contains("round 2/3"), "a round was trained first: {e}");
    assert_eq!(read(&run.join("metrics.jsonl")), before);
}

#[test]
fn export_refuses_a_folder_with_files_unless_forced() {
    let world = TinyWorld::new(120);
    let config = world.config("exp", "fedsa", "lora", "[federation]\nrounds = 1\n");
    fedsa_ok(["run".as_ref(), config.as_os_str()]);
    let run = world.runs().join("exp");
    let out_dir = world.dir.path().join("export");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("adapter_config.json"), "mine").unwrap();
    let args = |force: bool| {
        let mut a: Vec<&std::ffi::OsStr> = vec![
            "export".as_ref(),
            run.as_os_str(),
            "--client".as_ref(),
            "0".as_ref(),
            "--out".as_ref(),
            out_dir.as_os_str(),
        ];
        if force {
            a.push("--force".as_ref());
        }
        a
    };
    let out = fedsa(&args(false));
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("is not empty") && e.contains("--force"), "{e}");
    assert_eq!(read(&out_dir.join("adapter_config.json")), "mine");
    fedsa_ok(args(true));
    assert!(read(&out_dir.join("adapter_config.json")).contains("LORA"));
}

#[test]
fn analyze_prints_its_table_before_a_png_that_cannot_be_written() {
    let world = TinyWorld::new(120);
    let config = world.config("ana", "local", "lora", "[federation]\nrounds = 1\n");
    fedsa_ok(["run".as_ref(), config.as_os_str()]);
    let run = world.runs().join("ana");
    // A path under a file cannot be created.
    let png = run.join("summary.json").join("heat.png");
    let out = fedsa(&[
        "analyze".as_ref(),
        run.as_os_str(),
        "--png".as_ref(),
        png.as_os_str(),
    ]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("A/B similarity across 3 clients"),
        "the table was lost"
    );
    assert!(e.contains("--png") && e.contains("summary.json"), "{e}");
    assert!(!e.contains("ImageError"), "{e}");
}

#[test]
fn a_broken_library_on_the_plugin_path_is_reported_not_skipped_silently() {
    let world = TinyWorld::new(80);
    let folder = world.dir.path().join("plugins");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("broken.so"), "not a library").unwrap();
    let config = world.config(
        "plugged",
        "fedsa",
        "lora",
        "[federation]\nrounds = 1\n[strategy]\naggregator = \"krum\"\n",
    );
    let out = Command::new(fedsa_bin())
        .args(["run".as_ref(), config.as_os_str()])
        .env("FEDSA_PLUGIN_PATH", &folder)
        .output()
        .unwrap();
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains("unknown aggregator `krum`") && e.contains("skipped") && e.contains("broken.so"),
        "{e}"
    );
    let ok = world.config("plugged-ok", "fedsa", "lora", "[federation]\nrounds = 1\n");
    let out = Command::new(fedsa_bin())
        .args(["run".as_ref(), ok.as_os_str()])
        .env("FEDSA_PLUGIN_PATH", &folder)
        .output()
        .unwrap();
    let e = stderr(&out);
    assert!(out.status.success(), "{e}");
    assert!(
        e.contains("plugin skipped:") && e.contains("broken.so"),
        "{e}"
    );
}
