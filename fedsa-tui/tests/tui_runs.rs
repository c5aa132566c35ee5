//! Reading run folders for the Compare screen: `metrics.jsonl` lines, the strategy from
//! `config.toml`, and finding the runs in an output folder.

mod tui_common;

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use fedsa_engine::runs::{find_runs, load_run, parse_metrics};
use tui_common::{client_records, round_record, scripted_sample};

/// `metrics.jsonl` text for rounds `1..=rounds` of the scripted run.
fn metrics_text(rounds: usize) -> String {
    let mut out = String::new();
    for round in 1..=rounds {
        let clients = client_records(round, 4, &scripted_sample(round), &[]);
        for c in &clients {
            let mut v = serde_json::to_value(c).unwrap();
            v["kind"] = "client".into();
            writeln!(out, "{v}").unwrap();
        }
        let mut v = serde_json::to_value(round_record(round, &clients)).unwrap();
        v["kind"] = "round".into();
        writeln!(out, "{v}").unwrap();
    }
    out
}

fn write_run(dir: &Path, strategy: &str, rounds: usize) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("metrics.jsonl"), metrics_text(rounds)).unwrap();
    let mut config = tui_common::config();
    config.strategy.name = strategy.into();
    fs::write(dir.join("config.toml"), config.to_toml_string().unwrap()).unwrap();
}

#[test]
fn parses_rounds_and_clients_and_skips_unknown_kinds() {
    let text = format!("{}\n{{\"kind\":\"note\",\"x\":1}}\n", metrics_text(3));
    let (rounds, clients) = parse_metrics(&text, "m.jsonl").unwrap();
    assert_eq!(
        rounds.iter().map(|r| r.round).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(clients.len(), 12);
}

#[test]
fn a_repeated_round_keeps_its_last_line() {
    let mut text = metrics_text(2);
    let clients = client_records(2, 4, &[0, 1], &[]);
    let mut again = round_record(2, &clients);
    again.mean_accuracy = Some(0.99);
    let mut v = serde_json::to_value(again).unwrap();
    v["kind"] = "round".into();
    writeln!(text, "{v}").unwrap();
    let (rounds, _) = parse_metrics(&text, "m.jsonl").unwrap();
    assert_eq!(rounds.len(), 2);
    assert_eq!(rounds[1].mean_accuracy, Some(0.99));
}

#[test]
fn bad_lines_are_named() {
    let text = format!("{}not json\n", metrics_text(1));
    let e = format!("{:#}", parse_metrics(&text, "m.jsonl").unwrap_err());
    assert!(e.contains("m.jsonl:6"), "{e}");
    let e = format!(
        "{:#}",
        parse_metrics("{\"round\":1}\n", "m.jsonl").unwrap_err()
    );
    assert!(e.contains("m.jsonl:1") && e.contains("kind"), "{e}");
    let e = format!(
        "{:#}",
        parse_metrics("{\"kind\":\"round\",\"round\":\"one\"}\n", "m.jsonl").unwrap_err()
    );
    assert!(e.contains("not a round record"), "{e}");
}

#[test]
fn loads_a_run_folder_with_its_strategy() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("fedit-run");
    write_run(&run_dir, "fedit", 4);
    let run = load_run(&run_dir).unwrap();
    assert_eq!(run.name, "fedit-run");
    assert_eq!(run.strategy.as_deref(), Some("fedit"));
    assert_eq!(run.rounds.len(), 4);
    assert_eq!(run.final_accuracy(), run.rounds[3].mean_accuracy);
    assert_eq!(run.best_accuracy(), run.final_accuracy(), "accuracy rises");
    // Without config.toml the strategy is unknown, not an error.
    fs::remove_file(run_dir.join("config.toml")).unwrap();
    assert_eq!(load_run(&run_dir).unwrap().strategy, None);
    // Without metrics.jsonl it is not a run.
    let e = format!("{:#}", load_run(dir.path()).unwrap_err());
    assert!(e.contains("metrics.jsonl"), "{e}");
}

#[test]
fn finds_the_run_folders_of_an_output_folder() {
    let dir = tempfile::tempdir().unwrap();
    write_run(&dir.path().join("b-fedsa"), "fedsa", 2);
    write_run(&dir.path().join("a-ffa"), "ffa", 2);
    fs::create_dir_all(dir.path().join("not-a-run")).unwrap();
    let names: Vec<String> = find_runs(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["a-ffa", "b-fedsa"]);
    assert!(find_runs(&dir.path().join("missing")).is_empty());
}
