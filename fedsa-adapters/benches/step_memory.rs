//! Peak memory of the `train_step` bench's setup: a MiniLM-shaped encoder (random weights: 6
//! layers, hidden 384, 12 heads, intermediate 1536, vocabulary 30522), LoRA r = 8 on
//! query/value, 2 labels, training a few AdamW steps on one batch shape. Prints the resident set
//! after the client is built and the process peak (`VmRSS` / `VmHWM` from `/proc/self/status`,
//! Linux), in KiB, as `SIZE build_kib=N peak_kib=N`.
//!
//! Run: `cargo bench -p fedsa-adapters --bench step_memory -- 16x64` (one size per process, so
//! peaks do not mix; `benches/peer/run.sh` calls it once per size). With no size it runs each of
//! 16x32, 16x64 and 32x64 in a child process.

use fedsa_core::ClientTrainer;

mod common;
use common::trainer;

/// Steps trained before the peak is read (the first one allocates the optimizer moments).
const STEPS: usize = 5;
const SIZES: [&str; 3] = ["16x32", "16x64", "32x64"];

/// A `/proc/self/status` field (`VmRSS`, `VmHWM`) in KiB.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Parses `BxS` (e.g. `16x64`).
fn parse_size(s: &str) -> Option<(usize, usize)> {
    let (b, q) = s.split_once('x')?;
    Some((b.parse().ok()?, q.parse().ok()?))
}

fn main() {
    // `cargo bench` passes `--bench`; the only other argument is an optional size.
    let size = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    if status_kib("VmHWM").is_none() {
        println!("step_memory: /proc/self/status is not available on this system; skipped");
        return;
    }
    if let Some(size) = size {
        let (batch, seq) = parse_size(&size).expect("size as BxS, e.g. 16x64");
        let mut t = trainer(batch, seq);
        let build = status_kib("VmRSS").unwrap_or(0);
        for round in 1..=STEPS {
            std::hint::black_box(t.train(round).expect("train"));
        }
        let peak = status_kib("VmHWM").unwrap_or(0);
        println!("{size} build_kib={build} peak_kib={peak}");
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    for size in SIZES {
        let out = std::process::Command::new(&exe)
            .arg(size)
            .output()
            .expect("child run");
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
}
