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
        // The quickstart is the paper's non-IID setting.
        assert_eq!(config.partition.alpha, 0.5, "{name}");
        assert_eq!(config.federation.num_clients, 3, "{name}");
    }
}
