//! A federation across nodes gives what the one-process run gives: the engine's loop around
//! remote clients, each node rebuilding its client from the config for every message and
//! keeping its private state in its own folder, over an in-process transport (the Flower
//! transport is tested against a real Flower in `fedsa-flower-py/tests`).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use fedsa_core::{Config, ConfigSource, Event, ParamSet};
use fedsa_flower::loopback::Loopback;
use fedsa_flower::wire::Envelope;
use fedsa_flower::{Link, NodeSettings, ServeOptions, serve};
use fedsa_tests::fixtures::{TinyWorld, metrics_without_times};

fn quiet() -> Box<dyn fedsa_core::EventSink> {
    Box::new(|_: Event| {})
}

fn nodes(root: &Path, n: usize) -> Vec<NodeSettings> {
    (0..n)
        .map(|k| {
            let state_dir = root.join(format!("node-{k}"));
            std::fs::create_dir_all(&state_dir).unwrap();
            NodeSettings {
                client: k,
                state_dir,
                data_file: None,
                base_dir: None,
            }
        })
        .collect()
}

fn options(resume: bool) -> ServeOptions {
    ServeOptions {
        run: fedsa_engine::RunOptions {
            resume,
            source: ConfigSource::default(),
        },
        connect_timeout: Duration::from_secs(5),
    }
}

fn in_process(config: &Config) -> PathBuf {
    let stop = AtomicBool::new(false);
    fedsa_engine::execute(config, &fedsa_engine::RunOptions::default(), quiet(), &stop).unwrap();
    config.output_dir.join(&config.name)
}

fn remote(config: &Config, link: Box<dyn Link>) -> anyhow::Result<PathBuf> {
    let stop = AtomicBool::new(false);
    serve(config, &options(false), link, quiet(), &stop)?;
    Ok(config.output_dir.join(&config.name))
}

fn load(world: &TinyWorld, name: &str, strategy: &str, out: &str) -> Config {
    let extra =
        format!("output_dir = \"{out}\"\n[federation]\nrounds = 3\nclients_per_round = 2\n");
    let path = world.config(name, strategy, "lora", &extra);
    let mut config = Config::load(&path).unwrap();
    config.output_dir = world.dir.path().join(out);
    config
}

#[test]
fn nodes_give_the_one_process_metrics_and_bytes_for_fedsa_fedit_and_ffa() {
    let world = TinyWorld::new(160);
    for strategy in ["fedsa", "fedit", "ffa"] {
        let local = in_process(&load(&world, strategy, strategy, "local"));
        let config = load(&world, strategy, strategy, "remote");
        let mut link = Loopback::new();
        for node in nodes(&world.dir.path().join(format!("state-{strategy}")), 3) {
            link.add(node);
        }
        let run = remote(&config, Box::new(link)).unwrap();
        let ours = metrics_without_times(&run.join("metrics.jsonl"));
        assert_eq!(
            ours.len(),
            3 * 4,
            "{strategy}: 3 rounds of 3 client lines and a mean"
        );
        assert_eq!(
            ours,
            metrics_without_times(&local.join("metrics.jsonl")),
            "{strategy}"
        );
        assert!(run.join("summary.json").is_file());
        // The clients' factors stayed on the nodes: the server cannot analyse them, and says so.
        let e = fedsa_engine::analyze::analyze_run(&run, None, fedsa_engine::analyze::Mode::Auto)
            .unwrap_err();
        assert!(
            format!("{e:#}").contains("trained on a remote node"),
            "{e:#}"
        );
    }
}

/// Loses client 1's node when it is sent its second training round, and brings the node back
/// at once under a new id with the same state folder, as a restarted SuperNode.
struct Flaky {
    inner: Loopback,
    settings: NodeSettings,
    node: u64,
    trains_to_go: usize,
}

impl Link for Flaky {
    fn node_ids(&mut self) -> anyhow::Result<Vec<u64>> {
        self.inner.node_ids()
    }

    fn push(&mut self, node: u64, message: Envelope) -> anyhow::Result<u64> {
        if node == self.node
            && self.trains_to_go > 0
            && message.header.contains(r#""kind":"train""#)
        {
            self.trains_to_go -= 1;
            if self.trains_to_go == 0 {
                self.inner.remove(node);
                self.node = self.inner.add(self.settings.clone());
            }
        }
        self.inner.push(node, message)
    }

    fn pull(&mut self, ticket: u64) -> anyhow::Result<Envelope> {
        self.inner.pull(ticket)
    }
}

#[test]
fn a_lost_node_fails_its_round_and_rejoins_with_its_own_state() {
    let world = TinyWorld::new(160);
    let extra = "[federation]\nrounds = 4\nclients_per_round = 3\n";
    let mut config = Config::load(&world.config("flaky", "fedsa", "lora", extra)).unwrap();
    config.output_dir = world.dir.path().join("remote");
    let settings = nodes(&world.dir.path().join("state"), 3);
    let mut inner = Loopback::new();
    let ids: Vec<u64> = settings.iter().map(|s| inner.add(s.clone())).collect();
    let state_1 = settings[1].state_dir.clone();
    let link = Flaky {
        inner,
        settings: settings[1].clone(),
        node: ids[1],
        trains_to_go: 2,
    };
    let run = remote(&config, Box::new(link)).unwrap();
    let rounds: Vec<serde_json::Value> = metrics_without_times(&run.join("metrics.jsonl"))
        .into_iter()
        .filter(|l| l.get("client").is_none())
        .collect();
    let failed = |r: usize| rounds[r - 1]["failed"].as_array().unwrap().clone();
    assert!(failed(1).is_empty(), "{:?}", rounds[0]);
    assert_eq!(failed(2), vec![serde_json::json!(1)], "{:?}", rounds[1]);
    assert!(failed(3).is_empty() && failed(4).is_empty(), "{rounds:?}");
    // Back in round 3 with the state it had saved after round 1: its optimizer has taken the
    // steps of rounds 1, 3 and 4 (4 local steps each), not only those since it came back.
    let saved = StateFiles(&state_1);
    assert_eq!(
        saved.rounds(),
        vec![3, 4],
        "the latest and the last checkpoints' (every round)"
    );
    assert_eq!(saved.optimizer_step(4), 3 * 4);
    assert!(saved.b_norm(4) > 0.0);
}

struct StateFiles<'a>(&'a Path);

impl StateFiles<'_> {
    fn rounds(&self) -> Vec<usize> {
        fedsa_flower::StateDir::open(self.0)
            .unwrap()
            .rounds()
            .unwrap()
    }

    fn load(&self, round: usize) -> ParamSet {
        fedsa_core::io::load_params(&self.0.join(format!("round-{round}.safetensors"))).unwrap()
    }

    fn optimizer_step(&self, round: usize) -> u64 {
        fedsa_tests::fixtures::optimizer_step(&self.load(round), "client/")
    }

    fn b_norm(&self, round: usize) -> f64 {
        self.load(round)
            .iter()
            .filter(|(n, _)| n.starts_with("client/encoder.") && n.ends_with("lora_B.weight"))
            .flat_map(|(_, t)| t.data().iter().map(|v| f64::from(*v).powi(2)))
            .sum()
    }
}

#[test]
fn a_node_with_another_model_is_refused_by_name() {
    let world = TinyWorld::new(160);
    let mut config = Config::load(&world.config("odd", "fedsa", "lora", "")).unwrap();
    config.output_dir = world.dir.path().join("remote");
    let mut link = Loopback::new();
    let mut settings = nodes(&world.dir.path().join("state"), 3);
    // Client 2's node finds a model of another shape under the config's model path.
    let odd_root = world.dir.path().join("odd-node");
    let model_rel = config.model.path.strip_prefix("/").unwrap().to_path_buf();
    let odd_model = odd_root.join(&model_rel);
    std::fs::create_dir_all(odd_model.parent().unwrap()).unwrap();
    copy_dir(&config.model.path, &odd_model);
    // One encoder layer fewer: its adapted modules are not client 0's.
    let file = odd_model.join("config.json");
    let mut model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let layers = model["num_hidden_layers"].as_u64().unwrap();
    model["num_hidden_layers"] = serde_json::json!(layers - 1);
    std::fs::write(&file, model.to_string()).unwrap();
    let corpus_rel = config.data.path.strip_prefix("/").unwrap().to_path_buf();
    std::fs::create_dir_all(odd_root.join(&corpus_rel).parent().unwrap()).unwrap();
    std::fs::copy(&config.data.path, odd_root.join(&corpus_rel)).unwrap();
    let mut relative = config.clone();
    relative.model.path = model_rel;
    relative.data.path = corpus_rel;
    settings[2].base_dir = Some(odd_root);
    for s in &mut settings[..2] {
        s.base_dir = Some(PathBuf::from("/"));
    }
    let ids: Vec<u64> = settings.into_iter().map(|s| link.add(s)).collect();
    let e = format!("{:#}", remote(&relative, Box::new(link)).unwrap_err());
    assert!(
        e.contains(&format!("node {} (client 2) is refused", ids[2])) && e.contains("lacks"),
        "{e}"
    );
    assert!(
        !relative.output_dir.join("odd").exists(),
        "a refused run writes nothing"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Dies (as a killed server) when it would pull the first reply of round 3's training, after
/// every node has trained round 3 and saved its state.
struct DiesInRound3(Loopback);

impl Link for DiesInRound3 {
    fn node_ids(&mut self) -> anyhow::Result<Vec<u64>> {
        self.0.node_ids()
    }

    fn push(&mut self, node: u64, message: Envelope) -> anyhow::Result<u64> {
        let round_3 = message.header.contains(r#""round":3"#) && message.header.contains("train");
        let ticket = self.0.push(node, message)?;
        Ok(if round_3 { ticket | DOOMED } else { ticket })
    }

    fn pull(&mut self, ticket: u64) -> anyhow::Result<Envelope> {
        if ticket & DOOMED != 0 {
            // Let the node finish (and save) round 3 first.
            let _ = self.0.pull(ticket & !DOOMED);
            std::panic::panic_any("the server was killed");
        }
        self.0.pull(ticket)
    }
}

const DOOMED: u64 = 1 << 62;

#[test]
fn a_restarted_server_resumes_from_its_checkpoint_with_the_nodes_rolled_back() {
    let world = TinyWorld::new(160);
    let reference = in_process(&load(&world, "resumed", "fedsa", "local"));
    let config = load(&world, "resumed", "fedsa", "remote");
    let settings = nodes(&world.dir.path().join("state"), 3);
    let mut link = Loopback::new();
    for s in &settings {
        link.add(s.clone());
    }
    let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        remote(&config, Box::new(DiesInRound3(link)))
    }));
    assert!(killed.is_err(), "the server should have died in round 3");
    // Some node is ahead of the server's last checkpoint (round 2).
    let ahead = settings
        .iter()
        .any(|s| StateFiles(&s.state_dir).rounds().contains(&3));
    assert!(ahead, "no node trained round 3 before the server died");

    let mut link = Loopback::new();
    for s in &settings {
        link.add(s.clone());
    }
    let stop = AtomicBool::new(false);
    serve(&config, &options(true), Box::new(link), quiet(), &stop).unwrap();
    let run = config.output_dir.join(&config.name);
    assert_eq!(
        metrics_without_times(&run.join("metrics.jsonl")),
        metrics_without_times(&reference.join("metrics.jsonl"))
    );
}

/// Every built-in strategy, the released code's shared-model mode, clients of different ranks
/// and client-level DP: the same metrics across nodes as in one process.
#[test]
fn every_strategy_gives_the_one_process_metrics_across_nodes() {
    let world = TinyWorld::new(160);
    let ranks = "[clients]\nrank = [2, 4, 8]\n";
    let mut cases: Vec<(String, String)> = fedsa_core::BUILTINS
        .iter()
        .map(|b| {
            let extra = if ["flora", "flexlora", "hetlora"].contains(&b.name) {
                ranks
            } else {
                ""
            };
            (b.name.to_string(), extra.to_string())
        })
        .collect();
    cases.push((
        "fedsa".into(),
        "[strategy]\nname = \"fedsa\"\nshare_local_model = true\n".into(),
    ));
    cases.push((
        "fedsa".into(),
        "[privacy]\nclip_norm = 0.5\nnoise_multiplier = 1.0\ndelta = 1e-5\n".into(),
    ));
    for (i, (strategy, extra)) in cases.iter().enumerate() {
        let name = format!("case-{i}-{strategy}");
        let base = format!("[federation]\nrounds = 3\nclients_per_round = 2\n{extra}");
        let local_toml = format!("output_dir = \"local\"\n{base}");
        let path = world.config(&name, strategy, "lora", &local_toml);
        let mut config = Config::load(&path).unwrap();
        config.output_dir = world.dir.path().join("local");
        let local = in_process(&config);
        config.output_dir = world.dir.path().join("remote");
        let mut link = Loopback::new();
        for node in nodes(&world.dir.path().join(format!("state-{i}")), 3) {
            link.add(node);
        }
        let run = remote(&config, Box::new(link)).unwrap();
        assert_eq!(
            metrics_without_times(&run.join("metrics.jsonl")),
            metrics_without_times(&local.join("metrics.jsonl")),
            "{name}: {extra}"
        );
    }
}

#[test]
fn a_node_trains_on_its_own_data_file_and_a_missing_state_folder_is_its_failure() {
    let world = TinyWorld::new(160);
    let own = fedsa_tests::fixtures::write_tiny_corpus(&world.dir.path().join("own.csv"), 40, 11);
    let extra = "[federation]\nrounds = 2\nclients_per_round = 3\n";
    let mut config = Config::load(&world.config("own", "fedsa", "lora", extra)).unwrap();
    config.output_dir = world.dir.path().join("remote");
    let mut settings = nodes(&world.dir.path().join("state"), 3);
    settings[2].data_file = Some(own);
    settings[1].state_dir = world.dir.path().join("no-such-folder");
    let mut link = Loopback::new();
    for s in settings {
        link.add(s);
    }
    let run = remote(&config, Box::new(link)).unwrap();
    // Client 2's split is its own 40 examples, a quarter held out.
    let partition: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("partition.json")).unwrap())
            .unwrap();
    let c2 = &partition["clients"][2];
    assert_eq!(
        (c2["train"].as_u64(), c2["test"].as_u64()),
        (Some(30), Some(10)),
        "{c2}"
    );
    // Client 1's node has no state folder: each of its rounds fails, saying where.
    let lines = metrics_without_times(&run.join("metrics.jsonl"));
    let failures: Vec<String> = lines
        .iter()
        .filter(|l| l["client"] == 1)
        .filter_map(|l| l["failure"].as_str().map(str::to_string))
        .collect();
    assert_eq!(failures.len(), 2, "{lines:?}");
    assert!(
        failures[0].contains("no-such-folder") && failures[0].contains("state-dir"),
        "{}",
        failures[0]
    );
    assert!(
        lines
            .iter()
            .any(|l| l["client"] == 2 && !l["train"].is_null())
    );
}
