//! Config errors through the real `fedsa` binary: every one names the config file (or the
//! command-line flag that set the value) and the full dotted field, prints an OS message once,
//! exits non-zero and never panics.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fedsa_tests::fixtures::{TinyWorld, fedsa_bin, tiny_config_toml, toml_path};

/// Runs `fedsa run CONFIG ARGS` and returns its stderr, checking that it failed cleanly.
fn run_fails(config: &Path, args: &[&str]) -> String {
    let out: Output = Command::new(fedsa_bin())
        .arg("run")
        .arg(config)
        .args(args)
        .output()
        .expect("running fedsa");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{} {args:?} succeeded",
        config.display()
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Asserts that `stderr` holds `config SOURCE: FIELD: `.
fn assert_names(stderr: &str, source: &str, field: &str) {
    let want = format!("config {source}: {field}: ");
    assert!(stderr.contains(&want), "`{want}` not in:\n{stderr}");
}

/// The field of the first config error in `stderr`: the text between `config SOURCE: ` and the
/// next `: `.
fn field_of<'a>(stderr: &'a str, source: &str) -> &'a str {
    let prefix = format!("config {source}: ");
    let start = stderr
        .find(&prefix)
        .unwrap_or_else(|| panic!("`{prefix}` not in:\n{stderr}"))
        + prefix.len();
    let rest = &stderr[start..];
    &rest[..rest.find(": ").unwrap_or(rest.len())]
}

/// Writes `text` as `name` in the world's folder.
fn write_config(world: &TinyWorld, name: &str, text: &str) -> PathBuf {
    let path = world.dir.path().join(name);
    std::fs::write(&path, text).expect("config");
    path
}

/// The world's complete tiny config as written text (its line layout is the fixture's).
fn tiny_text(world: &TinyWorld, name: &str) -> String {
    tiny_config_toml(
        &world.model,
        &world.corpus,
        &world.runs(),
        name,
        "fedsa",
        "lora",
    )
}

/// Problems found after parsing, by the engine and the libraries under it: each must name the
/// config file, not a section (`config data:`, `config run:`, ...), and the dotted field.
#[test]
fn checks_after_parsing_name_the_config_file_and_the_dotted_field() {
    let world = TinyWorld::new(100);
    let missing = toml_path(&world.dir.path().join("missing"));
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "glue-task",
            "[data]\nformat = \"glue\"\nglue_task = \"squad\"\n".into(),
            "data.glue_task",
        ),
        (
            "targets",
            "[adapter]\ntarget_modules = [\"nothing\"]\n".into(),
            "adapter.target_modules",
        ),
        (
            "min-examples",
            "[partition]\nmin_examples = 1000\n".into(),
            "partition.min_examples",
        ),
        (
            "aggregator",
            "[strategy]\naggregator = \"nosuch\"\n".into(),
            "strategy.aggregator",
        ),
        (
            "aggregator-option",
            "[strategy.aggregator_options]\ntirm = 0.1\n".into(),
            "strategy.aggregator_options.tirm",
        ),
        (
            "adapter-kind",
            "[adapter]\nkind = \"nosuch\"\n".into(),
            "adapter.kind",
        ),
        (
            "adapter-spec",
            format!("[adapter]\nspec = \"{missing}/spec.json\"\n"),
            "adapter.spec",
        ),
        (
            "model-path",
            format!("[model]\npath = \"{missing}/model\"\n"),
            "model.path",
        ),
        (
            "data-path",
            format!("[data]\npath = \"{missing}/data.csv\"\n"),
            "data.path",
        ),
        (
            "privacy-clip",
            "[privacy]\nclip_norm = 0.0\nnoise_multiplier = 1.0\n".into(),
            "privacy.clip_norm",
        ),
        (
            "privacy-key",
            "[privacy]\nclip_norm = 1.0\nnoise_multiplier = 1.0\nepsilon = 3.0\n".into(),
            "privacy.epsilon",
        ),
        (
            "privacy-local",
            "[privacy]\nclip_norm = 1.0\nnoise_multiplier = 1.0\n[strategy]\nname = \"local\"\n"
                .into(),
            "strategy.name",
        ),
        (
            "privacy-median",
            "[privacy]\nclip_norm = 1.0\nnoise_multiplier = 1.0\n[strategy]\naggregator = \"median\"\n"
                .into(),
            "strategy.aggregator",
        ),
    ];
    for (name, extra, field) in &cases {
        let config = world.config(name, "fedsa", "lora", extra);
        let stderr = run_fails(&config, &[]);
        assert_names(&stderr, &config.display().to_string(), field);
        assert!(
            !world.runs().join(name).exists(),
            "{name} left a run folder"
        );
    }
    // The binary is built without CUDA, so a CUDA device passes validation and is refused
    // later, by the device code.
    let config = world.config("cuda", "fedsa", "lora", "device = \"cuda:7\"\n");
    let stderr = run_fails(&config, &[]);
    assert_names(&stderr, &config.display().to_string(), "device");
}

/// A missing key is named by its full path (`model.path`, not `path`).
#[test]
fn missing_keys_are_named_by_their_dotted_path() {
    let world = TinyWorld::new(40);
    let text = tiny_text(&world, "missing");
    let model_line = format!("path = \"{}\"\n", toml_path(&world.model));
    let format_line = "format = \"rotten_tomatoes\"\n";
    let model_table = format!("[model]\n{model_line}max_length = 16\n");
    assert!(text.contains(&model_table), "the fixture's layout changed");
    for (name, text, field) in [
        ("no-model-path", text.replace(&model_line, ""), "model.path"),
        (
            "no-data-format",
            text.replace(format_line, ""),
            "data.format",
        ),
        ("no-model", text.replace(&model_table, ""), "model"),
    ] {
        let config = write_config(&world, &format!("{name}.toml"), &text);
        let stderr = run_fails(&config, &[]);
        assert_names(&stderr, &config.display().to_string(), field);
        assert!(stderr.contains("missing"), "{stderr}");
    }
}

/// A TOML syntax error names the file, the line and the column, and the key when there is one;
/// never a punctuation character as the field.
#[test]
fn syntax_errors_name_the_file_line_column_and_key() {
    let world = TinyWorld::new(40);
    let text = tiny_text(&world, "syntax");
    let rounds_line = 1 + text
        .lines()
        .position(|l| l == "rounds = 3")
        .expect("the fixture sets federation.rounds");
    let config = write_config(
        &world,
        "rounds.toml",
        &text.replace("rounds = 3", "rounds = = 3"),
    );
    let stderr = run_fails(&config, &[]);
    assert_names(&stderr, &config.display().to_string(), "federation.rounds");
    assert!(
        stderr.contains(&format!("line {rounds_line}")) && stderr.contains("column 10"),
        "{stderr}"
    );
    for (name, bad) in [
        ("no-key", "= 3\n"),
        ("open-header", "[model\n"),
        ("open-string", "name = \"x\n"),
    ] {
        let config = write_config(&world, &format!("{name}.toml"), &format!("{bad}{text}"));
        let stderr = run_fails(&config, &[]);
        let field = field_of(&stderr, &config.display().to_string());
        assert!(
            field.chars().any(char::is_alphanumeric),
            "{name}: the field is `{field}`:\n{stderr}"
        );
        assert!(
            stderr.contains("line 1") && stderr.contains("column"),
            "{name}: {stderr}"
        );
    }
}

/// An OS error appears once in the message, not once per link of the error chain.
#[test]
fn os_errors_are_printed_once() {
    let world = TinyWorld::new(40);
    let missing = world.dir.path().join("no-such.toml");
    let stderr = run_fails(&missing, &[]);
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
    let spec = toml_path(&world.dir.path().join("no-such-spec.json"));
    let config = world.config(
        "spec",
        "fedsa",
        "lora",
        &format!("[adapter]\nspec = \"{spec}\"\n"),
    );
    let stderr = run_fails(&config, &[]);
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
}

/// An `output_dir` that is a file names the field, in the file or on the command line; a bad
/// override names its flag.
#[test]
fn output_dir_that_is_a_file_and_bad_overrides_name_their_field() {
    let world = TinyWorld::new(100);
    let file = world.dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let config = world.config(
        "out",
        "fedsa",
        "lora",
        &format!("output_dir = \"{}\"\n", toml_path(&file)),
    );
    let stderr = run_fails(&config, &[]);
    assert_names(&stderr, &config.display().to_string(), "output_dir");
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");

    let config = world.config("override", "fedsa", "lora", "");
    let file_arg = file.display().to_string();
    let stderr = run_fails(&config, &["--output-dir", &file_arg]);
    assert_names(&stderr, "command line (--output-dir)", "output_dir");
    let stderr = run_fails(&config, &["--device", "gpu"]);
    assert_names(&stderr, "command line (--device)", "device");
    let stderr = run_fails(&config, &["--name", "../up"]);
    assert_names(&stderr, "command line (--name)", "name");
}
