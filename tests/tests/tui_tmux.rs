//! The real `fedsa` binary's TUI in a real terminal (tmux): open it on a tiny config, launch the
//! run, see the rounds complete on screen, quit; the run folder equals what `fedsa run` writes.

use std::process::Command;
use std::time::{Duration, Instant};

use fedsa_tests::fixtures::{TinyWorld, fedsa_bin, fedsa_ok, metrics_without_times};

/// A tmux session that is killed when the test ends, whatever happens.
struct Session(String);

impl Session {
    fn tmux(args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(args)
            .output()
            .expect("running tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&Self::tmux(&["capture-pane", "-p", "-t", &self.0]).stdout)
            .into_owned()
    }

    fn keys(&self, keys: &str) {
        assert!(
            Self::tmux(&["send-keys", "-t", &self.0, keys])
                .status
                .success()
        );
    }

    fn alive(&self) -> bool {
        Self::tmux(&["has-session", "-t", &self.0]).status.success()
    }

    /// Waits until the screen contains `text`; returns the screen.
    fn wait_for(&self, text: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                start.elapsed() < limit,
                "`{text}` did not appear within {limit:?}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .output();
    }
}

#[test]
fn tui_launches_a_run_shows_its_rounds_and_writes_the_same_run_folder() {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "tmux is required in CI (.ci/run installs it)"
        );
        eprintln!("tmux is not installed: skipping the terminal test");
        return;
    }
    let world = TinyWorld::new(160);
    let config = world.config("tui-run", "fedsa", "lora", "[federation]\nrounds = 2\n");
    let session = Session(format!("fedsa-test-{}", std::process::id()));
    let command = format!("{} tui {}", fedsa_bin().display(), config.display());
    let started = Session::tmux(&[
        "new-session",
        "-d",
        "-s",
        &session.0,
        "-x",
        "100",
        "-y",
        "30",
        &command,
    ]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );

    session.wait_for("Setup", Duration::from_secs(30));
    session.keys("r");
    let screen = session.wait_for("finished 2/2 rounds", Duration::from_mins(3));
    assert!(screen.contains("Train"), "{screen}");
    session.keys("q");
    let deadline = Instant::now() + Duration::from_secs(20);
    while session.alive() {
        assert!(
            Instant::now() < deadline,
            "the TUI did not quit:\n{}",
            session.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let tui_dir = world.runs().join("tui-run");
    let headless_out = world.dir.path().join("headless");
    fedsa_ok([
        "run".as_ref(),
        "--output-dir".as_ref(),
        headless_out.as_os_str(),
        config.as_os_str(),
    ]);
    let headless_dir = headless_out.join("tui-run");
    for f in [
        "config.toml",
        "labels.json",
        "partition.json",
        "metrics.jsonl",
        "metrics.csv",
        "summary.json",
        "init.safetensors",
        "checkpoints/LATEST",
        "checkpoints/round-2/global.safetensors",
    ] {
        assert!(tui_dir.join(f).is_file(), "the TUI's run lacks {f}");
        assert!(headless_dir.join(f).is_file(), "the headless run lacks {f}");
    }
    assert_eq!(
        metrics_without_times(&tui_dir.join("metrics.jsonl")),
        metrics_without_times(&headless_dir.join("metrics.jsonl"))
    );
    assert_eq!(
        std::fs::read(tui_dir.join("partition.json")).unwrap(),
        std::fs::read(headless_dir.join("partition.json")).unwrap()
    );
}
