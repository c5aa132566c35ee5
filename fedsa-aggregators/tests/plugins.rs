//! The example plugins, built by cargo and loaded at run time: the trimmed mean against a
//! hand-computed result and the built-in, a federation with each plugin, FedAdam's state through
//! a checkpoint and resume, and discovery through the search path.

mod common;

use std::ffi::OsString;

use common::{federation, max_diff, plugins, run, set, updates};
use fedsa_aggregators::{
    FEDSA_PLUGIN_ABI_VERSION, LoadedPlugin, PLUGIN_STATE_TENSOR, PluginKind, PluginRegistry,
    build_aggregator,
};
use fedsa_core::Federation;

fn registry() -> PluginRegistry {
    let built = plugins();
    PluginRegistry::discover_with(
        &[
            built.trimmed_mean().to_path_buf(),
            built.fedadam().to_path_buf(),
        ],
        None,
    )
    .unwrap()
}

#[test]
fn loaded_plugins_report_kind_name_and_version() {
    let reg = registry();
    let list = reg.list();
    let names: Vec<(&str, bool)> = list.iter().map(|p| (p.name.as_str(), p.builtin)).collect();
    assert_eq!(
        names,
        [
            ("fedavg", true),
            ("median", true),
            ("trimmed_mean", true),
            ("fedadam", true),
            ("trimmed_mean_plugin", false),
            ("fedadam_plugin", false),
        ]
    );
    let tm = &list[4];
    assert_eq!(tm.kind, PluginKind::Aggregator);
    assert_eq!(tm.abi_version, FEDSA_PLUGIN_ABI_VERSION);
    assert_eq!(tm.path.as_deref(), Some(plugins().trimmed_mean()));
    assert_eq!(reg.adapter_spec("trimmed_mean_plugin"), None);
}

#[test]
fn plugin_trimmed_mean_equals_hand_computation_and_builtin() {
    // n = 5, trim 0.2 -> drop one value per side.
    // Column 0: {1,2,3,4,100} -> mean(2,3,4) = 3. Column 1: {-5,0,1,1,2} -> 2/3.
    let values: [&[f32]; 5] = [
        &[100.0, 1.0],
        &[1.0, -5.0],
        &[3.0, 2.0],
        &[2.0, 0.0],
        &[4.0, 1.0],
    ];
    let ups = updates(&values, &[1, 50, 1, 1, 1]);
    let global = set(&[0.0, 0.0]);
    let reg = registry();
    let mut plugin = build_aggregator("trimmed_mean_plugin", "trim = 0.2\n", &reg).unwrap();
    assert_eq!(plugin.name(), "trimmed_mean_plugin");
    let out = plugin.aggregate(1, &global, &ups, &[]).unwrap().unwrap();
    let w = out.get("w").unwrap().data();
    assert_eq!(w[0], 3.0);
    assert!((w[1] - 2.0 / 3.0).abs() < 1e-7, "{}", w[1]);

    let mut builtin = build_aggregator("trimmed_mean", "trim = 0.2\n", &reg).unwrap();
    let expected = builtin.aggregate(1, &global, &ups, &[]).unwrap().unwrap();
    assert_eq!(out, expected);
}

#[test]
fn plugin_refuses_bad_options_with_the_key() {
    let e = build_aggregator("trimmed_mean_plugin", "trim = 0.9\n", &registry())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("aggregator `trimmed_mean_plugin` refused its options: strategy.aggregator_options.trim: must be in [0, 0.5), got 0.9"),
        "{e}"
    );
    assert!(e.starts_with("plugin "), "{e}");
}

/// Runs the same federation with a plugin and with the built-in of the same rule.
fn same_run(plugin: &str, builtin: &str, options: &str, rounds: usize) -> (Federation, Federation) {
    let reg = registry();
    let mut with_plugin = federation(build_aggregator(plugin, options, &reg).unwrap(), rounds);
    let mut with_builtin = federation(build_aggregator(builtin, options, &reg).unwrap(), rounds);
    let a = run(&mut with_plugin).unwrap();
    let b = run(&mut with_builtin).unwrap();
    assert_eq!(a.rounds, rounds);
    assert_eq!(a.mean_accuracy, b.mean_accuracy);
    (with_plugin, with_builtin)
}

#[test]
fn federation_with_the_trimmed_mean_plugin_matches_the_builtin() {
    let (p, b) = same_run("trimmed_mean_plugin", "trimmed_mean", "trim = 0.2\n", 4);
    assert_eq!(p.global(), b.global());
    assert_eq!(p.aggregator_name(), "trimmed_mean_plugin");
}

#[test]
fn federation_with_the_fedadam_plugin_matches_the_builtin() {
    let options = "lr = 0.05\nbeta1 = 0.8\ntau = 0.01\n";
    let (p, b) = same_run("fedadam_plugin", "fedadam", options, 4);
    assert_eq!(p.global(), b.global());
    // The fedavg result is different: the optimiser really ran.
    let mut avg = federation(build_aggregator("fedavg", "", &registry()).unwrap(), 4);
    run(&mut avg).unwrap();
    assert!(max_diff(avg.global(), p.global()) > 1e-3);
}

/// A run of `total` rounds, interrupted after `first` and resumed in a fresh federation with a
/// fresh aggregator, from the server and client checkpoints (or without the aggregator's
/// state when `keep_state` is false).
fn resumed(name: &str, first: usize, total: usize, keep_state: bool) -> Federation {
    let reg = registry();
    let mut before = federation(build_aggregator(name, "", &reg).unwrap(), total);
    for _ in 0..first {
        before.run_round().unwrap();
    }
    let mut server = before.server_state().unwrap();
    if !keep_state {
        server.aggregator = fedsa_core::ParamSet::new();
    }
    let mut after = federation(build_aggregator(name, "", &reg).unwrap(), total);
    after.restore_server_state(server).unwrap();
    for (c, client) in before.clients().iter().enumerate() {
        let state = client.save_state().unwrap();
        after.clients_mut()[c].load_state(&state).unwrap();
    }
    run(&mut after).unwrap();
    after
}

#[test]
fn fedadam_plugin_state_survives_checkpoint_and_resume() {
    let reg = registry();
    let mut agg = build_aggregator("fedadam_plugin", "", &reg).unwrap();
    assert!(
        agg.state().unwrap().is_empty(),
        "no moments before the first round"
    );
    agg.aggregate(1, &set(&[0.0]), &updates(&[&[1.0], &[3.0]], &[1, 3]), &[])
        .unwrap();
    let state = agg.state().unwrap();
    assert_eq!(state.names().collect::<Vec<_>>(), [PLUGIN_STATE_TENSOR]);

    let mut whole = federation(build_aggregator("fedadam_plugin", "", &reg).unwrap(), 4);
    run(&mut whole).unwrap();
    let resumed_with_state = resumed("fedadam_plugin", 2, 4, true);
    assert_eq!(resumed_with_state.global(), whole.global());
    // Without the moments the resumed run differs: the state is what makes it exact.
    let resumed_without = resumed("fedadam_plugin", 2, 4, false);
    assert!(max_diff(resumed_without.global(), whole.global()) > 1e-4);
}

#[test]
fn damaged_plugin_state_is_refused() {
    let reg = registry();
    let mut agg = build_aggregator("fedadam_plugin", "", &reg).unwrap();
    let mut bad = fedsa_core::ParamSet::new();
    let not_ours: Vec<f32> = (1..=8u8).map(f32::from).collect();
    bad.insert(PLUGIN_STATE_TENSOR, vec![8], not_ours).unwrap();
    let e = agg.load_state(&bad).unwrap_err().to_string();
    assert!(
        e.starts_with("aggregator `fedadam_plugin`: restoring its state: "),
        "{e}"
    );
    assert!(e.contains("does not start with `FSA1`"), "{e}");
    bad.insert(PLUGIN_STATE_TENSOR, vec![1], vec![0.5]).unwrap();
    let e = agg.load_state(&bad).unwrap_err().to_string();
    assert!(e.contains("not a byte"), "{e}");
}

#[test]
fn search_path_finds_plugins_and_loading_twice_is_harmless() {
    let built = plugins();
    let folder = tempfile::tempdir().unwrap();
    for lib in [built.trimmed_mean(), built.fedadam()] {
        std::fs::copy(lib, folder.path().join(lib.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        folder.path().join("notes.txt"),
        "ignored: not a library name",
    )
    .unwrap();
    let mut search = OsString::from("/nonexistent-fedsa-folder");
    search.push(if cfg!(windows) { ";" } else { ":" });
    search.push(folder.path());
    let reg = PluginRegistry::discover_with(&[], Some(&search)).unwrap();
    let mut names = reg.names(PluginKind::Aggregator);
    names.sort_unstable();
    assert_eq!(names, ["fedadam_plugin", "trimmed_mean_plugin"]);
    assert_eq!(reg.skipped().len(), 1, "{:?}", reg.skipped());
    assert!(reg.skipped()[0].reason.contains("could not be read"));

    // The same file from the config and the search path loads once; another file with the same
    // plugin name is refused with both paths.
    let copy = folder
        .path()
        .join(built.trimmed_mean().file_name().unwrap());
    let mut reg =
        PluginRegistry::discover_with(std::slice::from_ref(&copy), Some(folder.path().as_os_str()))
            .unwrap();
    assert_eq!(reg.plugins().len(), 2);
    assert!(reg.skipped().is_empty(), "{:?}", reg.skipped());
    let e = reg.load(built.trimmed_mean()).err().unwrap().to_string();
    assert!(
        e.contains("the name `trimmed_mean_plugin` is already taken by"),
        "{e}"
    );
    assert!(reg.load(&copy).is_ok());
}

#[test]
fn an_aggregator_plugin_is_not_an_adapter() {
    let p = LoadedPlugin::load(plugins().trimmed_mean()).unwrap();
    assert_eq!(p.adapter_spec(), None);
    assert_eq!(p.kind(), PluginKind::Aggregator);
}

#[test]
fn an_adapter_plugin_hands_over_its_spec_text() {
    let built = plugins();
    let reg =
        PluginRegistry::discover_with(&[built.library("fedsa_test_adapter").to_path_buf()], None)
            .unwrap();
    let info = reg.list().pop().unwrap();
    assert_eq!(
        (info.kind, info.name.as_str(), info.builtin),
        (PluginKind::Adapter, "test_adapter", false)
    );
    assert_eq!(
        reg.adapter_spec("test_adapter").as_deref(),
        Some("# test adapter\nname = \"test_adapter\"\nrank_multiplier = 2\n")
    );
    let e = build_aggregator("test_adapter", "", &reg)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("`test_adapter` is an adapter plugin"), "{e}");
}
