//! Kill-and-resume: a run killed by SIGKILL after round k and resumed with `--resume` produces
//! exactly the metrics of a run that was never interrupted.

use std::process::Command;
use std::time::{Duration, Instant};

use fedsa_tests::fixtures::{TinyWorld, fedsa_bin, fedsa_ok, metrics_without_times};

fn latest_round(dir: &std::path::Path) -> usize {
    std::fs::read_to_string(dir.join("checkpoints/LATEST"))
        .ok()
        .and_then(|t| t.trim().strip_prefix("round-").and_then(|r| r.parse().ok()))
        .unwrap_or(0)
}

#[cfg(unix)]
#[test]
fn killed_run_resumes_to_identical_metrics() {
    use std::os::unix::process::ExitStatusExt;

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
    let mut child = Command::new(fedsa_bin())
        .arg("run")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_mins(2);
    while latest_round(&run_dir) < 2 {
        assert!(Instant::now() < deadline, "no checkpoint appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "the child must die by SIGKILL");
    let killed_at = latest_round(&run_dir);
    assert!(killed_at < 8, "killed after the run finished");
    assert!(!run_dir.join("summary.json").exists());

    fedsa_ok(["run".as_ref(), "--resume".as_ref(), config.as_os_str()]);
    assert_eq!(
        metrics_without_times(&run_dir.join("metrics.jsonl")),
        metrics_without_times(&reference_out.join("resumable/metrics.jsonl"))
    );
}
