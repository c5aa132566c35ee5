//! `fedsa analyze` and `fedsa compare` through the real binary on tiny FedIT and local runs:
//! the JSON covers every adapted module of both layers with A and B figures in range, the PNGs
//! are written, compare's figures (the client means too, unweighted and example-weighted) are
//! the runs' own, even for a run written before the weighted means, and bad input fails with
//! a named error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fedsa_tests::fixtures::{LAYERS, TinyWorld, fedsa_bin};
use serde_json::Value;

/// Runs `fedsa ARGS`.
fn fedsa(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(fedsa_bin()).args(args).output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "fedsa failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn err(out: &Output) -> String {
    assert!(!out.status.success(), "fedsa should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a tiny federation of `strategy` with LoRA and returns its folder.
fn tiny_run(world: &TinyWorld, name: &str, strategy: &str) -> PathBuf {
    let config = world.config(name, strategy, "lora", "");
    ok(&fedsa(&["run".as_ref(), config.as_os_str()]));
    world.runs().join(name)
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(bytes.len() > 2000, "{} is too small", path.display());
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
}

fn in_range(v: &Value, lo: f64, hi: f64) -> f64 {
    let x = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!(x >= lo - 1e-9 && x <= hi + 1e-9, "{x} outside [{lo}, {hi}]");
    x
}

/// Checks an analysis report: both layers' query and value modules, A and B with measures in
/// range; returns the mean A and B cosines.
fn check_report(report: &Value, strategy: &str, measured: &str) -> (f64, f64) {
    assert_eq!(report["strategy"], strategy);
    assert_eq!(report["measured"], measured);
    assert_eq!(report["num_clients"], 3);
    assert_eq!(report["round"], 3);
    let modules = report["modules"].as_array().unwrap();
    let mut seen: Vec<(u64, String)> = modules
        .iter()
        .map(|m| {
            for side in ["a", "b"] {
                in_range(&m[side]["cosine"], -1.0, 1.0);
                in_range(&m[side]["subspace"], 0.0, 1.0);
            }
            (
                m["layer"].as_u64().unwrap(),
                m["short"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    let mut expected = Vec::new();
    for layer in 0..LAYERS as u64 {
        for m in ["query", "value"] {
            expected.push((layer, m.to_string()));
        }
    }
    assert_eq!(seen, expected);
    // One A and one B tensor per module.
    assert_eq!(
        report["tensors"].as_array().unwrap().len(),
        2 * expected.len()
    );
    (
        in_range(&report["mean_a"]["cosine"], -1.0, 1.0),
        in_range(&report["mean_b"]["cosine"], -1.0, 1.0),
    )
}

#[test]
fn analyze_measures_veras_d_as_a_and_b_as_b() {
    let world = TinyWorld::new(200);
    let config = world.config("vera-local", "local", "vera", "");
    ok(&fedsa(&["run".as_ref(), config.as_os_str()]));
    let run = world.runs().join("vera-local");
    let report: Value = serde_json::from_str(&ok(&fedsa(&[
        "analyze".as_ref(),
        run.as_os_str(),
        "--json".as_ref(),
    ])))
    .unwrap();
    check_report(&report, "local", "checkpoint");
    let tensors: Vec<(&str, &str)> = report["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["tensor"].as_str().unwrap(), t["role"].as_str().unwrap()))
        .collect();
    assert!(tensors.contains(&("vera_lambda_d", "a")), "{tensors:?}");
    assert!(tensors.contains(&("vera_lambda_b", "b")), "{tensors:?}");
    assert_png(&run.join("ab-similarity.png"));
}

#[test]
fn analyze_and_compare_fedit_and_local_runs() {
    let world = TinyWorld::new(240);
    let fedit = tiny_run(&world, "fedit", "fedit");
    let local = tiny_run(&world, "local", "local");
    let out_dir = world.dir.path().join("out");

    // Local: both factors trained on each client from the common init; the checkpoint is the
    // measurement. Its default heatmap goes into the run folder.
    let report: Value = serde_json::from_str(&ok(&fedsa(&[
        "analyze".as_ref(),
        local.as_os_str(),
        "--json".as_ref(),
    ])))
    .unwrap();
    check_report(&report, "local", "checkpoint");
    assert_png(&local.join("ab-similarity.png"));

    // FedIT: the checkpoint holds the aggregate, so `auto` trains one local round from it.
    let png = out_dir.join("fedit-ab.png");
    let report: Value = serde_json::from_str(&ok(&fedsa(&[
        "analyze".as_ref(),
        fedit.as_os_str(),
        "--json".as_ref(),
        "--png".as_ref(),
        png.as_os_str(),
    ])))
    .unwrap();
    check_report(&report, "fedit", "local_round");
    assert!(report["notes"].as_array().unwrap().is_empty());
    assert_png(&png);
    // Measured on the checkpoint instead, FedIT's clients are identical: similarity 1 and a note.
    let report: Value = serde_json::from_str(&ok(&fedsa(&[
        "analyze".as_ref(),
        fedit.as_os_str(),
        "--json".as_ref(),
        "--from".as_ref(),
        "checkpoint".as_ref(),
        "--png".as_ref(),
        out_dir.join("fedit-checkpoint.png").as_os_str(),
    ])))
    .unwrap();
    let (a, b) = check_report(&report, "fedit", "checkpoint");
    assert!((a - 1.0).abs() < 1e-6 && (b - 1.0).abs() < 1e-6, "{a} {b}");
    assert!(!report["notes"].as_array().unwrap().is_empty());

    // The table names every module and the means.
    let table = ok(&fedsa(&[
        "analyze".as_ref(),
        local.as_os_str(),
        "--png".as_ref(),
        out_dir.join("t.png").as_os_str(),
    ]));
    for needle in ["A cosine", "B subspace", "query", "value", "mean"] {
        assert!(table.contains(needle), "{needle} missing from:\n{table}");
    }

    // Compare: every figure is the run's own.
    let png = out_dir.join("compare.png");
    let figures: Value = serde_json::from_str(&ok(&fedsa(&[
        "compare".as_ref(),
        fedit.as_os_str(),
        local.as_os_str(),
        "--json".as_ref(),
        "--png".as_ref(),
        png.as_os_str(),
    ])))
    .unwrap();
    assert_png(&png);
    let figures = figures.as_array().unwrap();
    assert_eq!(figures.len(), 2);
    for (fig, dir) in figures.iter().zip([&fedit, &local]) {
        check_figures(fig, dir);
    }
    assert_eq!(figures[0]["strategy"], "fedit");
    assert_eq!(figures[1]["strategy"], "local");
    assert_eq!(figures[1]["bytes_up"], 0, "local sends nothing");
    let table = ok(&fedsa(&[
        "compare".as_ref(),
        fedit.as_os_str(),
        local.as_os_str(),
        "--png".as_ref(),
        png.as_os_str(),
    ]));
    assert!(
        table.contains("fedit") && table.contains("client 2"),
        "{table}"
    );
    assert!(
        table.contains("client means %") && table.contains("macro-F1"),
        "{table}"
    );

    check_errors(&world, &fedit, &local);
}

/// A run's compare figures against its `summary.json` and `metrics.jsonl`.
fn check_figures(fig: &Value, dir: &Path) {
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(fig["final_accuracy"], summary["mean_accuracy"]);
    assert_eq!(fig["final_f1"], summary["mean_f1"]);
    assert_eq!(fig["best_accuracy"], summary["best_mean_accuracy"]);
    assert_eq!(fig["bytes_up"], summary["total_bytes_up"]);
    assert_eq!(fig["bytes_down"], summary["total_bytes_down"]);
    assert_eq!(fig["seconds"], summary["seconds"]);
    assert_eq!(fig["complete"], true);
    // The client means are the summary's, and what the rounds say.
    let means = &fig["means"];
    assert_eq!(*means, summary["means"]);
    assert_eq!(means["accuracy"]["last"], summary["mean_accuracy"]);
    assert_eq!(means["accuracy"]["best"], summary["best_mean_accuracy"]);
    assert_eq!(means["macro_f1"]["best"], fig["best_f1"]);
    let clients = fig["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 3);
    for (k, c) in clients.iter().enumerate() {
        assert_eq!(c["accuracy"], summary["clients"][k]["accuracy"]);
        assert_eq!(c["macro_f1"], summary["clients"][k]["macro_f1"]);
    }
    let rounds: Vec<Value> = std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["kind"] == "round")
        .collect();
    assert_eq!(fig["rounds"], rounds.len());
    let curve = fig["curve"].as_array().unwrap();
    for (p, r) in curve.iter().zip(&rounds) {
        assert_eq!(p["round"], r["round"]);
        assert_eq!(p["mean_accuracy"], r["mean_accuracy"]);
        assert_eq!(p["mean_f1"], r["mean_f1"]);
    }
    let best_f1 = rounds
        .iter()
        .filter_map(|r| r["mean_f1"].as_f64())
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(fig["best_f1"].as_f64().unwrap(), best_f1);
    let last = rounds
        .iter()
        .rev()
        .find(|r| !r["mean_accuracy"].is_null())
        .unwrap();
    assert_eq!(means["last_round"], last["round"]);
    assert_eq!(
        means["weighted_accuracy"]["last"],
        last["weighted_accuracy"]
    );
    assert_eq!(means["weighted_f1"]["last"], last["weighted_f1"]);
    let best_weighted = rounds
        .iter()
        .filter_map(|r| r["weighted_accuracy"].as_f64())
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(
        means["weighted_accuracy"]["best"].as_f64(),
        Some(best_weighted)
    );
    let best_round = &means["weighted_accuracy"]["best_round"];
    let at_best = rounds.iter().find(|r| r["round"] == *best_round).unwrap();
    assert_eq!(at_best["weighted_accuracy"].as_f64(), Some(best_weighted));
}

/// Bad input fails with an error that names the problem and the path; nothing panics.
fn check_errors(world: &TinyWorld, fedit: &Path, local: &Path) {
    let png = world.dir.path().join("out/err.png");
    let png = png.as_os_str();
    // A folder that is not a run.
    let not_run = world.dir.path().join("tiny-bert");
    for cmd in ["analyze", "compare"] {
        let e = err(&fedsa(&[
            cmd.as_ref(),
            not_run.as_os_str(),
            "--png".as_ref(),
            png,
        ]));
        assert!(
            e.contains("not a fedsa run folder") && e.contains("tiny-bert"),
            "{e}"
        );
        assert!(!e.contains("panicked"), "{e}");
    }
    // A run without a checkpoint.
    let copy = world.dir.path().join("no-ckpt");
    copy_run(local, &copy);
    std::fs::remove_dir_all(copy.join("checkpoints")).unwrap();
    let e = err(&fedsa(&[
        "analyze".as_ref(),
        copy.as_os_str(),
        "--png".as_ref(),
        png,
    ]));
    assert!(e.contains("no complete checkpoint"), "{e}");
    // A checkpoint round that is not kept.
    let e = err(&fedsa(&[
        "analyze".as_ref(),
        local.as_os_str(),
        "--round".as_ref(),
        "99".as_ref(),
        "--png".as_ref(),
        png,
    ]));
    assert!(e.contains("--round 99"), "{e}");
    // A run without its init.
    let copy = world.dir.path().join("no-init");
    copy_run(local, &copy);
    std::fs::remove_file(copy.join("init.safetensors")).unwrap();
    let e = err(&fedsa(&[
        "analyze".as_ref(),
        copy.as_os_str(),
        "--png".as_ref(),
        png,
    ]));
    assert!(e.contains("init.safetensors"), "{e}");
    // A damaged summary is named.
    let copy = world.dir.path().join("bad-summary");
    copy_run(fedit, &copy);
    std::fs::write(copy.join("summary.json"), "{").unwrap();
    let e = err(&fedsa(&[
        "compare".as_ref(),
        copy.as_os_str(),
        "--png".as_ref(),
        png,
    ]));
    assert!(e.contains("summary.json"), "{e}");
    // A run without a summary (stopped, or still running) is compared on its metrics.
    let copy = world.dir.path().join("unfinished");
    copy_run(fedit, &copy);
    std::fs::remove_file(copy.join("summary.json")).unwrap();
    let figures: Value = serde_json::from_str(&ok(&fedsa(&[
        "compare".as_ref(),
        copy.as_os_str(),
        "--json".as_ref(),
        "--png".as_ref(),
        png,
    ])))
    .unwrap();
    let fig = &figures[0];
    assert_eq!(fig["complete"], false);
    let curve = fig["curve"].as_array().unwrap();
    assert_eq!(
        fig["final_accuracy"],
        curve.last().unwrap()["mean_accuracy"]
    );
    assert!(fig["clients"][2]["accuracy"].as_f64().is_some());
    // Its client means come from the rounds, and are the finished run's.
    let finished: Value =
        serde_json::from_str(&std::fs::read_to_string(fedit.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(fig["means"], finished["means"]);
    // A run from before the weighted means: its summary and rounds lack them; compare shows
    // the plain means from its rounds and no weighted ones.
    let copy = world.dir.path().join("older");
    copy_run(fedit, &copy);
    let mut summary = finished.clone();
    summary.as_object_mut().unwrap().remove("means");
    std::fs::write(copy.join("summary.json"), summary.to_string()).unwrap();
    let metrics: Vec<String> = std::fs::read_to_string(copy.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            let line = v.as_object_mut().unwrap();
            line.remove("weighted_accuracy");
            line.remove("weighted_f1");
            v.to_string()
        })
        .collect();
    std::fs::write(copy.join("metrics.jsonl"), metrics.join("\n") + "\n").unwrap();
    let figures: Value = serde_json::from_str(&ok(&fedsa(&[
        "compare".as_ref(),
        copy.as_os_str(),
        "--json".as_ref(),
        "--png".as_ref(),
        png,
    ])))
    .unwrap();
    let means = &figures[0]["means"];
    assert_eq!(means["accuracy"], finished["means"]["accuracy"]);
    assert_eq!(means["macro_f1"], finished["means"]["macro_f1"]);
    for figure in ["weighted_accuracy", "weighted_f1"] {
        for field in ["last", "best", "best_round"] {
            assert!(means[figure][field].is_null(), "{means}");
        }
    }
    // Runs with different client counts compare side by side.
    let config = world.config(
        "two-clients",
        "local",
        "lora",
        "[federation]\nnum_clients = 2\nclients_per_round = 2\n",
    );
    ok(&fedsa(&["run".as_ref(), config.as_os_str()]));
    let two = world.runs().join("two-clients");
    let figures: Value = serde_json::from_str(&ok(&fedsa(&[
        "compare".as_ref(),
        fedit.as_os_str(),
        two.as_os_str(),
        "--json".as_ref(),
        "--png".as_ref(),
        png,
    ])))
    .unwrap();
    assert_eq!(figures[0]["clients"].as_array().unwrap().len(), 3);
    assert_eq!(figures[1]["clients"].as_array().unwrap().len(), 2);
}

/// Copies a run folder (files and sub-folders).
fn copy_run(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_run(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
