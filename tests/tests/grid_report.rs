//! `experiments/grid_report.py`: the tables of docs/RESULTS.md's comparison grid are what the
//! committed results give (the doc is regenerated, never typed), and their statistics are right
//! on hand-computed cells; `experiments/grid_plots.sh` draws its plots from the same runs.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn report(args: &[&str], results: Option<&Path>) -> (bool, String, String) {
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("experiments/grid_report.py"))
        .args(args);
    if let Some(r) = results {
        cmd.env("GRID_RESULTS", r);
    }
    let out = cmd.output().expect("python3 runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn results_doc_is_what_the_committed_grid_gives() {
    let (ok, stdout, stderr) = report(&["--check"], None);
    assert!(ok, "{stdout}{stderr}");
}

/// One finished cell: a summary whose best and last unweighted accuracy is `acc`, and no
/// round records beyond what the report reads.
fn cell(dir: &Path, run: &str, acc: f64) {
    let d = dir.join(run);
    std::fs::create_dir_all(&d).unwrap();
    let m = |v: f64| format!(r#"{{"last": {v}, "best": {v}, "best_round": 8}}"#);
    let summary = format!(
        r#"{{"rounds": 8, "clients": [{{"loss": 0.5, "accuracy": {acc}, "macro_f1": {acc}, "num_examples": 10}}],
        "mean_accuracy": {acc}, "mean_f1": {acc},
        "means": {{"last_round": 8, "accuracy": {a}, "macro_f1": {a}, "weighted_accuracy": {a}, "weighted_f1": {a}}},
        "total_bytes_up": 8388608, "total_bytes_down": 8388608, "failures": 0, "seconds": 100.0}}"#,
        a = m(acc)
    );
    std::fs::write(d.join("summary.json"), summary).unwrap();
    std::fs::write(d.join("metrics.jsonl"), "").unwrap();
}

#[test]
fn means_spreads_and_verdicts_are_computed_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    // FedSA-LoRA 0.70, 0.72, 0.74: mean 72.00, sample sd 2.00. FedIT 0.60, 0.61, 0.65: mean
    // 62.00, sd sqrt(((-2)^2 + (-1)^2 + 3^2) / 2) = sqrt(7) = 2.65. The ranges [70, 74] and
    // [60, 65] do not overlap: above, beyond the spread. FFA-LoRA 0.69, 0.75, 0.71 overlaps.
    for (s, (a, b, c)) in [(0.70, 0.60, 0.69), (0.72, 0.61, 0.75), (0.74, 0.65, 0.71)]
        .into_iter()
        .enumerate()
    {
        let seed = s + 1;
        cell(dir.path(), &format!("fedsa-lora-dir0.5-c3-s{seed}"), a);
        cell(dir.path(), &format!("fedit-lora-dir0.5-c3-s{seed}"), b);
        cell(dir.path(), &format!("ffa-lora-dir0.5-c3-s{seed}"), c);
    }
    let (ok, out, err) = report(&["--print"], Some(dir.path()));
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("| FedSA-LoRA | 72.00 ± 2.00 / 72.00 ± 2.00 (n=3) |"),
        "{out}"
    );
    assert!(
        out.contains("| FedIT (LoRA) | 62.00 ± 2.65 / 62.00 ± 2.65 (n=3) |"),
        "{out}"
    );
    assert!(
        out.contains("| FedSA-LoRA vs FedIT (LoRA) | dir0.5-c3 | 72.00 ± 2.00 | 62.00 ± 2.65 | +10.00 | above, beyond the spread | +10.00, +11.00, +9.00 | above in every seed |"),
        "{out}"
    );
    assert!(
        out.contains("| FedSA-LoRA vs FFA-LoRA | dir0.5-c3 | 72.00 ± 2.00 | 71.67 ± 3.06 | +0.33 | inside the spread | +1.00, -3.00, +3.00 | inside the paired spread |"),
        "{out}"
    );
    // 8 MiB up + 8 MiB down over 8 rounds: 2 MiB a round.
    assert!(out.contains("| FedSA-LoRA | 3 | 72.00 ± 2.00 |"), "{out}");
    assert!(out.contains(" | 2.00 | 100 |"), "{out}");
    assert!(out.contains("9 of 207 cells"), "{out}");
}

#[test]
fn the_generation_table_is_computed_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    // Exact match 0.10, 0.20, 0.30: mean 20.00, sample sd 10.00; token accuracy 0.80 and 0.90
    // on the two clients of every run: 85.00, sd 0.
    for (s, em) in [0.10, 0.20, 0.30].into_iter().enumerate() {
        let d = dir
            .path()
            .join(format!("fedsa-lora-gen-dir0.5-c3-s{}", s + 1));
        std::fs::create_dir_all(&d).unwrap();
        let m = format!(r#"{{"last": {em}, "best": {em}, "best_round": 3}}"#);
        let client = |tok: f64| {
            format!(
                r#"{{"loss": 0.5, "accuracy": {em}, "macro_f1": {em}, "num_examples": 10, "extra": {{"exact_match": {em}, "token_accuracy": {tok}}}}}"#
            )
        };
        let summary = format!(
            r#"{{"rounds": 3, "clients": [{}, {}], "mean_accuracy": {em}, "mean_f1": {em},
            "means": {{"last_round": 3, "accuracy": {m}, "macro_f1": {m}, "weighted_accuracy": {m}, "weighted_f1": {m}}},
            "total_bytes_up": 3145728, "total_bytes_down": 3145728, "failures": 0, "seconds": 300.0}}"#,
            client(0.8),
            client(0.9)
        );
        std::fs::write(d.join("summary.json"), summary).unwrap();
        std::fs::write(d.join("metrics.jsonl"), "").unwrap();
    }
    let (ok, out, err) = report(&["--print"], Some(dir.path()));
    assert!(ok, "{out}{err}");
    // 3 MiB up + 3 MiB down over 3 rounds: 2 MiB a round.
    assert!(
        out.contains("| FedSA-LoRA | 3 | 20.00 ± 10.00 | 20.00 ± 10.00 | 20.00 ± 10.00 | 20.00 ± 10.00 | 85.00 ± 0.00 | 2.00 | 300 |"),
        "{out}"
    );
    assert!(out.contains("3 of 207 cells"), "{out}");
}

#[test]
fn a_method_under_noise_pairs_with_its_own_run_without_it() {
    let dir = tempfile::tempdir().unwrap();
    // Without noise 0.80, 0.82, 0.84: mean 82.00, sd 2.00. With noise multiplier 0.5: 0.70,
    // 0.71, 0.75: mean 72.00, sd sqrt(7) = 2.65. The ranges [70, 75] and [80, 84] do not
    // overlap, and seed by seed the noise costs 10, 11 and 9 points.
    for (s, (clear, noisy)) in [(0.80, 0.70), (0.82, 0.71), (0.84, 0.75)]
        .into_iter()
        .enumerate()
    {
        let seed = s + 1;
        cell(dir.path(), &format!("fedsa-lora-dir0.5-c10-s{seed}"), clear);
        cell(
            dir.path(),
            &format!("fedsa-lora-dir0.5-c10-dp0.5-s{seed}"),
            noisy,
        );
    }
    let (ok, out, err) = report(&["--print"], Some(dir.path()));
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("| FedSA-LoRA vs itself | dir0.5-c10-dp0.5 vs dir0.5-c10 | 72.00 ± 2.65 | 82.00 ± 2.00 | -10.00 | below, beyond the spread | -10.00, -11.00, -9.00 | below in every seed |"),
        "{out}"
    );
    // Nothing ran at the other noise level, and no baseline ran under noise: no such rows.
    assert!(!out.contains("dir0.5-c10-dp1 vs"), "{out}");
    assert!(
        !out.contains("FedSA-LoRA vs FedIT (LoRA) | dir0.5-c10-dp0.5"),
        "{out}"
    );
}

#[test]
fn the_plots_are_drawn_from_the_committed_runs() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(root().join("experiments/grid_plots.sh"))
        .env("FEDSA", fedsa_tests::fixtures::fedsa_bin())
        .env("GRID_PLOTS_OUT", out.path())
        .output()
        .expect("bash runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for name in [
        "dir0.5-c3",
        "dir0.1-c3",
        "iid-c3",
        "key-c3",
        "dir0.5-c10",
        "newer-dir0.5-c3",
        "dp1",
        "generation",
    ] {
        let png = std::fs::read(out.path().join(format!("grid-compare-{name}.png")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name} is not a PNG");
        // The plots drawn from these runs are 114 to 158 KB; the bound catches an empty or a
        // truncated file.
        assert!(png.len() > 30_000, "{name}: {} bytes", png.len());
    }
}

#[test]
fn the_plots_without_a_binary_are_a_clear_error() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(root().join("experiments/grid_plots.sh"))
        .env("FEDSA", out.path().join("no-such-fedsa"))
        .env("GRID_PLOTS_OUT", out.path())
        .output()
        .expect("bash runs");
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("no fedsa binary at") && err.contains("no-such-fedsa"),
        "{err}"
    );
}
