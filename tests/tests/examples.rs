//! Every shipped example config parses, validates, and runs the method its name promises.

use std::path::Path;

use fedsa_core::Config;

#[test]
fn every_example_is_valid_and_names_its_method() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let expected = [
        ("quickstart", "fedsa", "lora"),
        ("fedsa-lora", "fedsa", "lora"),
        ("fedit-lora", "fedit", "lora"),
        ("ffa-lora", "ffa", "lora"),
        ("local-lora", "local", "lora"),
        ("rslora", "fedit", "rslora"),
        ("fedsa-rslora", "fedsa", "rslora"),
        ("vera", "fedit", "vera"),
        ("fedsa-vera", "fedsa", "vera"),
        ("gen-fedit-lora", "fedit", "lora"),
        ("gen-ffa-lora", "ffa", "lora"),
        ("gen-fedsa-lora", "fedsa", "lora"),
        ("fedex-lora", "fedex", "lora"),
        ("rolora", "rolora", "lora"),
        ("fedsvd", "fedsvd", "lora"),
        ("feddpa", "feddpa", "lora"),
        ("fedsa-shared-model", "fedsa", "lora"),
        ("dp-fedsa", "fedsa", "lora"),
        ("flora", "flora", "lora"),
        ("flexlora", "flexlora", "lora"),
        ("hetlora", "hetlora", "lora"),
    ];
    for (name, strategy, adapter) in expected {
        let path = dir.join(format!("{name}.toml"));
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.name, name);
        assert_eq!(
            config.task.kind.is_generation(),
            name.starts_with("gen-"),
            "{name}"
        );
        assert_eq!(config.strategy.name, strategy, "{name}");
        assert_eq!(config.adapter.kind, adapter, "{name}");
        // Only the DP example asks for differential privacy.
        assert_eq!(config.privacy.is_some(), name.starts_with("dp-"), "{name}");
        // The quickstart is the paper's non-IID setting.
        assert_eq!(config.partition.alpha, 0.5, "{name}");
        assert_eq!(config.federation.num_clients, 3, "{name}");
        // The methods for clients of different ranks run on ranks 4, 8 and 16.
        let ranks = if ["flora", "flexlora", "hetlora"].contains(&name) {
            vec![4, 8, 16]
        } else {
            vec![config.adapter.rank; 3]
        };
        assert_eq!(config.client_ranks(), ranks, "{name}");
    }
}

/// `experiments/small_grid.sh` in its dry mode writes and validates (partition included) every
/// config of its full grid and of the small one docs/RESULTS.md reports, without training: a method
/// row, a heterogeneity level or a client count that cannot run fails here, not hours into a
/// grid.
#[test]
fn experiment_grids_write_valid_configs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let assets = root.join("assets");
    if !assets.join("all-MiniLM-L6-v2/model.safetensors").exists()
        || !assets
            .join("rotten_tomatoes/rotten_tomatoes_corpus_full.csv")
            .exists()
    {
        println!("skipped: the bundled model or corpus is absent (scripts/fetch-assets)");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    for (subset, runs) in [("full", 54), ("small", 36)] {
        let output = std::process::Command::new("bash")
            .arg(root.join("experiments/small_grid.sh"))
            .env("EXPERIMENTS_DRY", "1")
            .env("EXPERIMENTS_SUBSET", subset)
            .env("EXPERIMENTS_OUT", out.path())
            .env("FEDSA", fedsa_tests::fixtures::fedsa_bin())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{subset}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            stdout.matches(": config ok").count(),
            runs,
            "{subset}: {stdout}"
        );
        let dir = if subset == "full" {
            out.path().join("configs")
        } else {
            out.path().join(subset).join("configs")
        };
        // The ablation row is FedSA's roles with the head shared.
        let ablation = Config::load(&dir.join("fedsa-lora-shared-head-iid-c3.toml")).unwrap();
        let strategy = ablation.strategy("ablation").unwrap();
        assert_eq!(strategy.name, "custom");
        let fedsa = fedsa_core::Strategy::fedsa();
        assert_eq!((strategy.a, strategy.b), (fedsa.a, fedsa.b));
        assert!(strategy.shares(fedsa_core::Role::Head) && !fedsa.shares(fedsa_core::Role::Head));
    }
}

/// The comparison grid (`experiments/run.sh`, cells in `experiments/grid.py`) in its dry mode
/// writes and checks every cell's config: each method at each heterogeneity level and seed, the
/// 10-client setting, the heterogeneous ranks and the DP cells. The configs carry what their
/// cell names say.
#[test]
fn comparison_grid_writes_valid_configs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if !root
        .join("assets/all-MiniLM-L6-v2/model.safetensors")
        .exists()
        || !root
            .join("assets/rotten_tomatoes/rotten_tomatoes_corpus_full.csv")
            .exists()
    {
        println!("skipped: the bundled model or corpus is absent (scripts/fetch-assets)");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let output = std::process::Command::new("bash")
        .arg(root.join("experiments/run.sh"))
        .env("EXPERIMENTS_DRY", "1")
        .env("GRID_OUT", out.path())
        .env("FEDSA", fedsa_tests::fixtures::fedsa_bin())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // 13 methods x 4 levels x 3 seeds, the paper's 4 rows with 10 clients, 4 rows on
    // differing ranks, 3 methods under DP at 2 noise levels, and 3 generation methods, each
    // over 3 seeds. The generation cells' partitions are checked only where their model is.
    let generation = root
        .join("assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
        .exists();
    let (checked, written) = if generation { (9, 0) } else { (0, 9) };
    assert_eq!(
        stdout.matches(": config ok").count(),
        156 + 12 + 12 + 18 + checked,
        "{stdout}"
    );
    assert_eq!(
        stdout.matches(": config written, not checked").count(),
        written,
        "{stdout}"
    );
    let load =
        |run: &str| Config::load(&out.path().join("configs").join(format!("{run}.toml"))).unwrap();
    let generated = load("ffa-lora-gen-dir0.5-c3-s3");
    assert_eq!(generated.seed, 3);
    assert!(generated.task.kind.is_generation());
    assert_eq!(generated.strategy("grid").unwrap().name, "ffa");
    let seeds: Vec<u64> = (1..=3)
        .map(|s| load(&format!("fedsa-lora-dir0.5-c3-s{s}")).seed)
        .collect();
    assert_eq!(seeds, [1, 2, 3]);
    let released = load("fedsa-lora-released-key-c3-s2");
    assert!(released.strategy("grid").unwrap().shared_model);
    assert_eq!(released.partition.key.as_deref(), Some("movie_name"));
    let ten = load("ffa-lora-dir0.5-c10-s1");
    assert_eq!(
        (ten.federation.num_clients, ten.federation.clients_per_round),
        (10, 3)
    );
    let ranks = load("hetlora-dir0.5-c3-r4-8-16-s3");
    assert_eq!(ranks.client_ranks(), [4, 8, 16]);
    let dp = load("fedsa-lora-dir0.5-c10-dp0.5-s1");
    let privacy = dp.privacy.as_ref().unwrap();
    assert_eq!((privacy.clip_norm, privacy.noise_multiplier), (0.5, 0.5));
    let vera = load("fedsa-vera-iid-c3-s1");
    assert_eq!(
        (vera.adapter.kind.as_str(), vera.adapter.rank),
        ("vera", 256)
    );
}
