//! Libraries and plugins the host must refuse, each with a precise error and no crash: a
//! missing file, a folder, a text file named like a library, a library without the symbol, a
//! wrong ABI version, a short table (for version 2: one of the version-1 size), and a plugin
//! whose aggregate panics or fails mid-run.

mod common;

use common::{federation_with, plugins, run, set, updates};
use fedsa_aggregators::{LoadedPlugin, PluginRegistry, build_aggregator};
use fedsa_core::{Error, Event, Federation};
use fedsa_plugin_api::{DESCRIPTOR_SIZE, DESCRIPTOR_SIZE_V1};

fn load_error(path: &std::path::Path) -> String {
    let e = LoadedPlugin::load(path).expect_err("refused");
    assert!(
        matches!(&e, Error::Plugin { path: p, .. } if p == path),
        "not a plugin error naming the path: {e:?}"
    );
    e.to_string()
}

#[test]
fn a_missing_file_or_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_error(&dir.path().join("absent.so"));
    assert!(e.ends_with("absent.so: no such file"), "{e}");
    let e = load_error(dir.path());
    assert!(e.contains("not a file"), "{e}");
}

#[test]
fn a_text_file_named_like_a_library() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("x.so");
    std::fs::write(&fake, "this is not a shared library\n").unwrap();
    let e = load_error(&fake);
    assert!(e.contains("x.so: not a loadable library"), "{e}");
}

#[test]
fn a_library_without_the_symbol() {
    let e = load_error(plugins().library("fedsa_test_no_symbol"));
    assert!(
        e.contains("no `fedsa_plugin_v1` symbol, so not a fedsa plugin of ABI versions 1 to 2"),
        "{e}"
    );
}

#[test]
fn a_wrong_abi_version() {
    let e = load_error(plugins().library("fedsa_test_wrong_abi"));
    assert!(
        e.contains("built for plugin ABI version 3, this fedsa loads versions 1 to 2 (the plugin is newer than this fedsa: update fedsa)"),
        "{e}"
    );
}

#[test]
fn a_table_shorter_than_this_abi() {
    let e = load_error(plugins().library("fedsa_test_short_table"));
    assert!(
        e.contains("its plugin table is 8 bytes, ABI version 2 needs at least"),
        "{e}"
    );
}

#[test]
fn a_version_two_table_of_the_version_one_size() {
    let path = plugins().library("fedsa_test_v2_short_table");
    let e = load_error(path);
    assert!(
        e.contains(&format!(
            "its plugin table is {DESCRIPTOR_SIZE_V1} bytes, ABI version 2 needs at least {DESCRIPTOR_SIZE}: rebuild it against this fedsa-plugin-api"
        )),
        "{e}"
    );
    assert!(
        e.contains(&path.display().to_string()),
        "names the file: {e}"
    );
}

#[test]
fn config_paths_must_load_but_search_folders_skip_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("x.so");
    std::fs::write(&fake, "not a library").unwrap();
    let e = PluginRegistry::discover_with(std::slice::from_ref(&fake), None)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("not a loadable library"), "{e}");

    let wrong = plugins().library("fedsa_test_wrong_abi");
    std::fs::copy(wrong, dir.path().join("wrong.so")).unwrap();
    let reg = PluginRegistry::discover_with(&[], Some(dir.path().as_os_str())).unwrap();
    assert!(reg.plugins().is_empty());
    let reasons: Vec<&str> = reg.skipped().iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("ABI version 3")),
        "{reasons:?}"
    );
}

#[test]
fn an_adapter_whose_spec_panics_is_refused_at_load() {
    let e = load_error(plugins().library("fedsa_test_adapter_panics"));
    assert!(
        e.contains("adapter `test_adapter_panics` could not produce its spec: panicked: spec generator exploded"),
        "{e}"
    );
}

/// A federation around the faulty plugin, with its events.
fn faulty(options: &str, rounds: usize) -> (Federation, std::sync::mpsc::Receiver<Event>) {
    let reg = PluginRegistry::discover_with(&[plugins().faulty().to_path_buf()], None).unwrap();
    let agg = build_aggregator("test_faulty", options, &reg).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    (federation_with(agg, rounds, Box::new(tx)), rx)
}

#[test]
fn a_panicking_aggregate_fails_the_run_with_a_report_not_an_abort() {
    let (mut fed, events) = faulty("mode = \"panic\"\nfrom_round = 2\n", 3);
    let e = run(&mut fed).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Plugin { .. }), "{e:?}");
    assert!(
        text.contains("aggregator `test_faulty` panicked: index out of bounds"),
        "{text}"
    );
    assert!(
        text.contains("(round 2, tensor `classifier.weight`)"),
        "{text}"
    );
    assert_eq!(
        fed.completed_rounds(),
        1,
        "round 1 succeeded, round 2 failed"
    );
    let failed: Vec<String> = events
        .try_iter()
        .filter_map(|ev| match ev {
            Event::RunFailed { error } => Some(error),
            _ => None,
        })
        .collect();
    assert_eq!(failed, [text]);

    // The instance is poisoned: a further call is refused cleanly, still without a crash.
    let again = fed.run_round().unwrap_err().to_string();
    assert!(again.contains("an earlier call panicked"), "{again}");
}

#[test]
fn a_plugin_error_is_an_aggregation_error() {
    let (mut fed, _events) = faulty("mode = \"error\"\n", 2);
    let e = run(&mut fed).unwrap_err();
    assert_eq!(
        e.to_string(),
        "aggregator `test_faulty`: round 1, tensor `classifier.weight`: test_faulty refuses `classifier.weight` in round 1"
    );
    assert!(matches!(e, Error::Aggregation { .. }));
}

#[test]
fn a_panic_on_a_direct_call_is_also_caught() {
    let reg = PluginRegistry::discover_with(&[plugins().faulty().to_path_buf()], None).unwrap();
    let mut agg = build_aggregator("test_faulty", "", &reg).unwrap();
    let e = agg
        .aggregate(1, &set(&[0.0]), &updates(&[&[1.0]], &[1]), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("panicked"), "{e}");
    // A shape mismatch is caught by the host before the plugin is called.
    let mut fresh = build_aggregator("test_faulty", "from_round = 9", &reg).unwrap();
    let e = fresh
        .aggregate(1, &set(&[0.0, 0.0]), &updates(&[&[1.0]], &[1]), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("client 0 sent shape [1], expected [2]"), "{e}");
}
