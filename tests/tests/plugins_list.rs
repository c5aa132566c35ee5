//! `fedsa plugins list` and a run's start say which plan each adapter's program compiled to.

use fedsa_tests::fixtures::{TinyWorld, fedsa_ok};

#[test]
fn plugins_list_shows_each_adapters_plan() {
    let out = fedsa_ok(["plugins", "list"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let plan_of = |name: &str| -> String {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no `{name}` line in:\n{stdout}"));
        line.split_whitespace()
            .skip(4)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(plan_of("lora"), "fused low-rank");
    assert_eq!(plan_of("rslora"), "fused low-rank");
    assert!(plan_of("vera").starts_with("op list ("), "{stdout}");
    assert_eq!(plan_of("fedavg"), "-");
}

#[test]
fn a_run_says_which_plan_its_adapter_got() {
    let world = TinyWorld::new(80);
    for (adapter, plan) in [("lora", "fused low-rank"), ("vera", "op list")] {
        let config = world.config(adapter, "fedsa", adapter, "[federation]\nrounds = 1\n");
        let out = fedsa_ok(["run".as_ref(), config.as_os_str()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("adapter {adapter}: {plan}")),
            "{stderr}"
        );
    }
}
