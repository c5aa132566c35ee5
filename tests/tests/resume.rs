//! Kill-and-resume: a run killed by SIGKILL after round k and resumed with `--resume` produces
//! exactly the metrics of a run that was never interrupted.

use fedsa_tests::fixtures::{
    TinyWorld, fedsa_ok, metrics_without_times, run_and_kill_after_checkpoint,
};

#[cfg(unix)]
#[test]
fn killed_run_resumes_to_identical_metrics() {
    let world = TinyWorld::new(200);
    let extra = "[federation]\nrounds = 8\nclients_per_round = 2\n[training]\nlocal_steps = 6\n";
    // Same name in two output folders: the configs differ only in output_dir.
    let config = world.config("resumable", "fedsa", "lora", extra);
    let reference_out = world.dir.path().join("reference");
    fedsa_ok([
        "run".as_ref(),
        "--output-dir".as_ref(),
        reference_out.as_os_str(),
        config.as_os_str(),
    ]);

    let run_dir = world.runs().join("resumable");
    let killed_at = run_and_kill_after_checkpoint(&config, &run_dir, 2);
    assert!(killed_at < 8, "killed after the run finished");
    assert!(!run_dir.join("summary.json").exists());

    fedsa_ok(["run".as_ref(), "--resume".as_ref(), config.as_os_str()]);
    assert_eq!(
        metrics_without_times(&run_dir.join("metrics.jsonl")),
        metrics_without_times(&reference_out.join("resumable/metrics.jsonl"))
    );
}
