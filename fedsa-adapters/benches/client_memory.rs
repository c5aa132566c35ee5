//! Peak memory of 1, 10 and 50 simulated clients sharing one frozen MiniLM-shaped base model
//! (random weights: 6 layers, hidden 384, vocabulary 30522; LoRA r = 8 on query/value). Each
//! client trains one AdamW step, so its optimizer moments exist. A client must cost its adapter,
//! head and optimizer state, not a copy of the model.
//!
//! Each count runs in a fresh child process (this binary re-invoked), so peaks do not mix.
//! Peak = `VmHWM` from `/proc/self/status` (Linux).
//!
//! Run: `cargo bench -p fedsa-adapters --bench client_memory`.

use std::sync::Arc;

use candle_core::Device;
use fedsa_adapters::{AdapterSpec, BaseModel, EncoderConfig, LocalTrainer};
use fedsa_core::config::{AdapterConfig, TrainingConfig};
use fedsa_core::{ClientTrainer, EncodedExample, SeededRng, Strategy};

const COUNTS: [usize; 3] = [1, 10, 50];

fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Builds `n` clients on one shared base, trains each for one step, returns the peak (KiB).
fn child(n: usize) -> u64 {
    let config = EncoderConfig::bert(30_522, 384, 6, 12, 1536);
    let base = BaseModel::random(&config, 0, &Device::Cpu).expect("base model");
    let adapter = AdapterConfig {
        rank: 8,
        ..AdapterConfig::default()
    };
    let training = TrainingConfig {
        local_steps: 1,
        batch_size: 8,
        ..TrainingConfig::default()
    };
    let spec = AdapterSpec::builtin("lora", &adapter).expect("spec");
    let mut rng = SeededRng::new(1);
    let mut clients = Vec::with_capacity(n);
    for k in 0..n {
        let examples: Vec<EncodedExample> = (0..8)
            .map(|i| EncodedExample {
                input_ids: (0..32).map(|_| 1000 + rng.below(20_000) as u32).collect(),
                type_ids: vec![0; 32],
                label: i % 2,
            })
            .collect();
        let mut t = LocalTrainer::new(
            k,
            Arc::clone(&base),
            &spec,
            &adapter,
            &training,
            2,
            examples.clone(),
            examples,
            0,
            1,
        )
        .expect("trainer");
        t.configure(&Strategy::fedsa()).expect("configure");
        t.train(1).expect("train");
        clients.push(t);
    }
    std::hint::black_box(&clients);
    peak_kib().unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--clients" {
            let n: usize = args
                .next()
                .and_then(|v| v.parse().ok())
                .expect("--clients N");
            println!("{}", child(n));
            return;
        }
    }
    if peak_kib().is_none() {
        println!("client_memory: /proc/self/status is not available on this system; skipped");
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    let mut rows = Vec::new();
    for n in COUNTS {
        let out = std::process::Command::new(&exe)
            .args(["--clients", &n.to_string()])
            .output()
            .expect("child run");
        let text = String::from_utf8_lossy(&out.stdout);
        let kib: u64 = text
            .trim()
            .lines()
            .last()
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        rows.push((n, kib));
    }
    println!("clients  peak RSS (MiB)  per extra client (MiB)");
    let (n0, k0) = rows[0];
    for &(n, kib) in &rows {
        let per = if n > n0 {
            format!("{:.2}", (kib as f64 - k0 as f64) / 1024.0 / (n - n0) as f64)
        } else {
            "-".into()
        };
        println!("{n:>7}  {:>14.1}  {per:>22}", kib as f64 / 1024.0);
    }
}
