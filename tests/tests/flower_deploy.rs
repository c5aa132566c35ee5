//! fedsa on a real Flower 1.42.0 deployment on loopback, through `fedsa flower`: a SuperLink,
//! one SuperNode per client, the fedsa app. Needs the environment `scripts/flower-setup`
//! makes (`.venv-flower`, or `$FEDSA_FLOWER_VENV`); without it these tests say so and pass,
//! unless `FEDSA_FLOWER_REQUIRED=1` (as in CI), where a missing environment fails them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use fedsa_core::{Config, Event};
use fedsa_tests::fixtures::{TinyWorld, fedsa_bin, metrics_without_times};

/// Each test here starts a SuperLink and several SuperNodes, each a Python process that starts
/// more; two tests at once on a two-core machine starve each other past their deadlines, so
/// they take turns.
static TURN: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The last lines of every log a `fedsa flower` run wrote under `work/logs`, for a failure to
/// show what the SuperLink and SuperNodes were doing.
fn log_tails(work: &Path) -> String {
    let Ok(dir) = std::fs::read_dir(work.join("logs")) else {
        return format!("no logs under {}", work.display());
    };
    let mut paths: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut out = String::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(30)..];
        let _ = write!(out, "\n== {}\n{}\n", path.display(), tail.join("\n"));
    }
    out
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn venv() -> Option<PathBuf> {
    let venv = std::env::var_os("FEDSA_FLOWER_VENV")
        .map_or_else(|| repo().join(".venv-flower"), PathBuf::from);
    if venv.join("bin/flwr").is_file() {
        return Some(venv);
    }
    assert!(
        std::env::var("FEDSA_FLOWER_REQUIRED").as_deref() != Ok("1"),
        "no Flower environment at {}: run scripts/flower-setup",
        venv.display()
    );
    eprintln!(
        "skipped: no Flower environment at {} (scripts/flower-setup makes it)",
        venv.display()
    );
    None
}

fn flower(venv: &Path, dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(fedsa_bin())
        .arg("flower")
        .arg("--venv")
        .arg(venv)
        .arg("--app")
        .arg(repo().join("flower-app"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running fedsa flower")
}

fn in_process(config: &Path, out: &Path) -> PathBuf {
    let mut config = Config::load(config).unwrap();
    config.output_dir = out.to_path_buf();
    let stop = AtomicBool::new(false);
    let quiet = Box::new(|_: Event| {});
    fedsa_engine::execute(&config, &fedsa_engine::RunOptions::default(), quiet, &stop).unwrap();
    out.join(&config.name)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_flower_run_gives_the_one_process_metrics_for_fedsa_fedit_and_ffa() {
    let _turn = turn();
    let Some(venv) = venv() else { return };
    let world = TinyWorld::new(160);
    let extra = "[federation]\nrounds = 2\nclients_per_round = 2\n";
    for strategy in ["fedsa", "fedit", "ffa"] {
        let config = world.config(strategy, strategy, "lora", extra);
        let local = in_process(&config, &world.dir.path().join("local"));
        let out = flower(&venv, world.dir.path(), &[config.to_str().unwrap()]);
        let log = text(&out);
        assert!(out.status.success(), "{strategy}: {log}");
        assert!(log.contains("round 2/2: mean acc"), "{log}");
        let run = world.runs().join(strategy);
        let ours = metrics_without_times(&run.join("metrics.jsonl"));
        assert_eq!(ours.len(), 2 * 4, "{strategy}");
        assert_eq!(
            ours,
            metrics_without_times(&local.join("metrics.jsonl")),
            "{strategy}"
        );
        assert!(run.join("summary.json").is_file());
        assert!(run.join("checkpoints/LATEST").is_file());
    }
    // The run folders are ordinary ones: `fedsa compare` reads them.
    let runs: Vec<PathBuf> = ["fedsa", "fedit", "ffa"]
        .iter()
        .map(|s| world.runs().join(s))
        .collect();
    let png = world.dir.path().join("compare.png");
    let out = Command::new(fedsa_bin())
        .arg("compare")
        .args(&runs)
        .arg("--png")
        .arg(&png)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(png.is_file());
    assert_no_flower_processes_left(&world);
}

#[test]
fn ctrl_c_stops_every_process_fedsa_flower_started() {
    let _turn = turn();
    let Some(venv) = venv() else { return };
    let world = TinyWorld::new(160);
    let config = world.config("stopped", "fedsa", "lora", "[federation]\nrounds = 50\n");
    let mut child = Command::new(fedsa_bin())
        .arg("flower")
        .arg("--venv")
        .arg(&venv)
        .arg("--app")
        .arg(repo().join("flower-app"))
        .arg(&config)
        .current_dir(world.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Once a round has been recorded, the run is in full swing: interrupt it.
    let metrics = world.runs().join("stopped/metrics.jsonl");
    let started = Instant::now();
    while !metrics.is_file() {
        assert!(
            started.elapsed() < Duration::from_mins(10),
            "no round was recorded{}",
            log_tails(&world.runs().join(".flower/stopped"))
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert!(!status.success(), "an interrupted run must not exit 0");
    assert_no_flower_processes_left(&world);
}

#[test]
fn with_tls_and_node_auth_a_stranger_is_refused_and_a_killed_node_rejoins_with_its_state() {
    let _turn = turn();
    let Some(venv) = venv() else { return };
    let world = TinyWorld::new(160);
    let extra = "[federation]\nrounds = 5\nclients_per_round = 3\n";
    let config = world.config("secure", "fedsa", "lora", extra);
    let work = world.runs().join(".flower/secure");
    let state_1 = work.join("nodes/node-1");
    let dir = world.dir.path().to_path_buf();
    let venv_run = venv.clone();
    let config_arg = config.to_str().unwrap().to_string();
    let run = std::thread::spawn(move || {
        flower(
            &venv_run,
            &dir,
            &[
                "--secure",
                "--unregistered-node",
                "--restart-nodes",
                "20",
                "--reply-timeout",
                "15",
                &config_arg,
            ],
        )
    });
    // SIGKILL client 1's SuperNode (its whole process group) once it has saved a round.
    let started = Instant::now();
    let killed = loop {
        if run.is_finished() {
            let out = run.join().unwrap();
            panic!(
                "the run ended before node 1 saved a state: {}{}",
                text(&out),
                log_tails(&work)
            );
        }
        assert!(
            started.elapsed() < Duration::from_mins(10),
            "node 1 never saved a state{}",
            log_tails(&work)
        );
        let saved = std::fs::read_dir(&state_1).is_ok_and(|d| d.count() > 0);
        if saved && let Some(pid) = node_pid(&work, 1) {
            let status = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status()
                .unwrap();
            assert!(status.success());
            break pid;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = run.join().unwrap();
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!("(was pid {killed}) started again")),
        "{log}"
    );

    let lines = metrics_without_times(&world.runs().join("secure/metrics.jsonl"));
    let rounds: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l.get("client").is_none()).collect();
    assert_eq!(rounds.len(), 5, "{log}");
    let failed_1 = |r: &serde_json::Value| {
        r["failed"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(1))
    };
    assert!(
        rounds.iter().any(|r| failed_1(r)),
        "client 1's loss was not recorded: {log}"
    );
    assert!(
        !failed_1(rounds[4]),
        "client 1 did not rejoin by the last round: {log}"
    );
    // Its own state survived: the optimizer counted every round it trained (4 steps each),
    // across the kill.
    let trained = lines
        .iter()
        .filter(|l| l["client"] == 1 && !l["train"].is_null())
        .count() as u64;
    let state = latest_state(&state_1);
    assert_eq!(
        fedsa_tests::fixtures::optimizer_step(&state, "client/"),
        trained * 4,
        "{log}"
    );
    // The stranger's key is not registered: the SuperLink refused it, and it took no part.
    let stranger = std::fs::read_to_string(work.join("logs/node-unregistered.log")).unwrap();
    assert!(
        stranger.contains("Failed to activate SuperNode"),
        "{stranger}"
    );
    assert_no_flower_processes_left(&world);
}

fn node_pid(work: &Path, client: u64) -> Option<u64> {
    let text = std::fs::read_to_string(work.join("nodes.json")).ok()?;
    let nodes: serde_json::Value = serde_json::from_str(&text).ok()?;
    nodes.as_array()?.iter().find(|n| n["client"] == client)?["pid"].as_u64()
}

fn latest_state(dir: &Path) -> fedsa_core::ParamSet {
    let rounds = fedsa_flower::StateDir::open(dir).unwrap().rounds().unwrap();
    let last = rounds.last().expect("a saved state");
    fedsa_core::io::load_params(&dir.join(format!("round-{last}.safetensors"))).unwrap()
}

/// Nothing `fedsa flower` started for this test is still running: no process is left in the
/// process group of the SuperLink or of any SuperNode (each started its own group, which also
/// holds what it started), and none names the test's folder.
fn assert_no_flower_processes_left(world: &TinyWorld) {
    let work = std::fs::read_dir(world.runs().join(".flower"))
        .unwrap()
        .map(|e| e.unwrap().path());
    let mut groups = Vec::new();
    for dir in work {
        let link = std::fs::read_to_string(dir.join("superlink.pid")).unwrap();
        groups.push(link.trim().parse::<u64>().unwrap());
        for client in 0..3 {
            groups.extend(node_pid(&dir, client));
        }
    }
    assert!(groups.len() >= 4, "{groups:?}");
    for group in groups {
        let out = Command::new("pgrep")
            .args(["-g", &group.to_string()])
            .output()
            .unwrap();
        let left = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(left.is_empty(), "process group {group} still has {left}");
    }
    let out = Command::new("pgrep")
        .args(["-f", &world.dir.path().display().to_string()])
        .output()
        .unwrap();
    let left = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(left.is_empty(), "still running: {left}");
}
