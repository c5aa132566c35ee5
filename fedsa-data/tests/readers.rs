//! Readers on small files written by the tests: well-formed CSV, TSV, JSONL, GLUE and Rotten
//! Tomatoes layouts, and malformed ones, each of which must be an error naming the file, the
//! line and the problem, never a panic.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use common::{config_error, data_config, data_error};
use fedsa_core::config::{DataConfig, DataFormat};
use fedsa_core::{Error, SeededRng};
use fedsa_data::{GlueSplit, GlueTask, load_dataset, load_glue};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn csv_config(path: &Path) -> DataConfig {
    data_config(DataFormat::Csv, path)
}

#[test]
fn csv_reads_quoted_fields_keys_and_infers_sorted_labels() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "d.csv",
        b"id,text,label,author\n1,\"good, really\nsecond line\",pos,ann\n2,bad,neg,bob\n3,\"a \"\"quote\"\"\",pos,ann\n",
    );
    let d = load_dataset(&csv_config(&path), Some("author"), 1).unwrap();
    assert_eq!(d.label_names, ["neg", "pos"]);
    assert_eq!(d.source, path);
    let texts: Vec<&str> = d.examples.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts, ["good, really\nsecond line", "bad", "a \"quote\""]);
    let labels: Vec<u32> = d.examples.iter().map(|e| e.label).collect();
    assert_eq!(labels, [1, 0, 1]);
    assert_eq!(d.examples[1].key.as_deref(), Some("bob"));
    assert!(d.examples.iter().all(|e| e.text_pair.is_none()));
}

#[test]
fn configured_labels_fix_the_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "d.csv", b"text,label\na,pos\nb,neg\n");
    let mut cfg = csv_config(&path);
    cfg.labels = Some(vec!["pos".into(), "neg".into(), "neutral".into()]);
    let d = load_dataset(&cfg, None, 1).unwrap();
    assert_eq!(d.label_names, ["pos", "neg", "neutral"]);
    assert_eq!(d.examples[1].label, 1);
    assert_eq!(d.label_counts(), [1, 1, 0]);
}

#[test]
fn tsv_reads_text_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "d.tsv",
        b"premise\thypothesis\tgold\nA man sleeps.\tA person rests.\tyes\nIt rains.\tIt is dry.\tno\n",
    );
    let mut cfg = data_config(DataFormat::Tsv, &path);
    cfg.text_column = Some("premise".into());
    cfg.text_pair_column = Some("hypothesis".into());
    cfg.label_column = Some("gold".into());
    let d = load_dataset(&cfg, None, 1).unwrap();
    assert_eq!(d.examples[0].text, "A man sleeps.");
    assert_eq!(d.examples[0].text_pair.as_deref(), Some("A person rests."));
    assert_eq!((d.examples[0].label, d.examples[1].label), (1, 0));
}

#[test]
fn jsonl_reads_numbers_booleans_and_skips_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "d.jsonl",
        b"{\"text\": \"fine\", \"label\": 1, \"user\": 7}\n\n{\"text\": \"meh\", \"label\": 0, \"user\": \"x\"}\r\n",
    );
    let d = load_dataset(&data_config(DataFormat::Jsonl, &path), Some("user"), 1).unwrap();
    assert_eq!(d.label_names, ["0", "1"]);
    assert_eq!(d.examples.len(), 2);
    assert_eq!(d.examples[0].key.as_deref(), Some("7"));
    assert_eq!(d.examples[1].text, "meh");
}

#[test]
fn max_examples_keeps_a_seeded_subset_with_stable_label_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("text,label\n");
    for i in 0..100 {
        writeln!(text, "t{i},{}", ["a", "b", "c"][i % 3]).unwrap();
    }
    let path = write(dir.path(), "d.csv", text.as_bytes());
    let mut cfg = csv_config(&path);
    cfg.max_examples = Some(10);
    let a = load_dataset(&cfg, None, 5).unwrap();
    let b = load_dataset(&cfg, None, 5).unwrap();
    let c = load_dataset(&cfg, None, 6).unwrap();
    assert_eq!(a.examples.len(), 10);
    assert_eq!(a, b);
    assert_ne!(a.examples, c.examples);
    assert_eq!(a.label_names, ["a", "b", "c"]);
    let index = |t: &str| t[1..].parse::<usize>().unwrap();
    let order: Vec<usize> = a.examples.iter().map(|e| index(&e.text)).collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "file order kept: {order:?}"
    );
    for e in &a.examples {
        assert_eq!(e.label as usize, index(&e.text) % 3);
    }
}

#[test]
fn missing_column_names_the_column_and_the_header_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "d.csv", b"text,category\na,pos\n");
    let (file, line, message) = data_error(load_dataset(&csv_config(&path), None, 1));
    assert_eq!((file, line), (path.clone(), 1));
    assert!(
        message.contains("`label`") && message.contains("data.label_column"),
        "{message}"
    );
    let (_, _, message) = data_error(load_dataset(&csv_config(&path), Some("movie"), 1));
    assert!(message.contains("`label`"), "{message}");
    let ok = write(dir.path(), "ok.csv", b"text,label\na,pos\nb,neg\n");
    let (_, line, message) = data_error(load_dataset(&csv_config(&ok), Some("movie"), 1));
    assert_eq!(line, 1);
    assert!(
        message.contains("`movie`") && message.contains("partition.key"),
        "{message}"
    );
}

#[test]
fn ragged_row_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "d.csv",
        b"text,label\na,pos\nb,neg,extra\nc,pos\n",
    );
    let (file, line, message) = data_error(load_dataset(&csv_config(&path), None, 1));
    assert_eq!((file, line), (path, 3));
    assert!(
        message.contains("ragged") && message.contains('3'),
        "{message}"
    );
    let short = write(dir.path(), "s.tsv", b"text\tlabel\nonly text\n");
    let (_, line, _) = data_error(load_dataset(&data_config(DataFormat::Tsv, &short), None, 1));
    assert_eq!(line, 2);
}

#[test]
fn label_outside_the_mapping_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "d.csv", b"text,label\na,pos\nb,neg\nc,meh\n");
    let mut cfg = csv_config(&path);
    cfg.labels = Some(vec!["neg".into(), "pos".into()]);
    let (file, line, message) = data_error(load_dataset(&cfg, None, 1));
    assert_eq!((file, line), (path, 4));
    assert!(
        message.contains("\"meh\"") && message.contains("data.labels"),
        "{message}"
    );
}

#[test]
fn invalid_utf8_names_its_line_in_csv_and_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "d.csv",
        b"text,label\nok,pos\nbad \xff\xfe,neg\n",
    );
    let (file, line, message) = data_error(load_dataset(&csv_config(&path), None, 1));
    assert_eq!((file, line), (path, 3));
    assert!(
        message.contains("UTF-8") && message.contains("`text`"),
        "{message}"
    );
    let path = write(
        dir.path(),
        "d.jsonl",
        b"{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"\xc3\x28\", \"label\": \"y\"}\n",
    );
    let (file, line, message) = data_error(load_dataset(
        &data_config(DataFormat::Jsonl, &path),
        None,
        1,
    ));
    assert_eq!((file, line), (path, 2));
    assert!(message.contains("UTF-8"), "{message}");
}

#[test]
fn empty_and_header_only_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (name, format) in [
        ("e.csv", DataFormat::Csv),
        ("e.tsv", DataFormat::Tsv),
        ("e.jsonl", DataFormat::Jsonl),
    ] {
        let path = write(dir.path(), name, b"");
        let (file, line, message) = data_error(load_dataset(&data_config(format, &path), None, 1));
        assert_eq!((file, line), (path, 1));
        assert!(message.contains("empty"), "{message}");
    }
    let path = write(dir.path(), "h.csv", b"text,label\n");
    let (file, _, message) = data_error(load_dataset(&csv_config(&path), None, 1));
    assert_eq!(file, path);
    assert!(message.contains("no examples"), "{message}");
    let path = write(dir.path(), "one.csv", b"text,label\na,pos\nb,pos\n");
    let (_, _, message) = data_error(load_dataset(&csv_config(&path), None, 1));
    assert!(message.contains("two labels"), "{message}");
}

#[test]
fn malformed_jsonl_lines_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[u8], usize, &str); 5] = [
        (
            b"{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\"\n",
            2,
            "invalid JSON",
        ),
        (
            b"{\"text\": \"a\", \"label\": 1}\n[1, 2]\n",
            2,
            "JSON object",
        ),
        (
            b"{\"text\": \"a\", \"label\": 1}\n\n{\"txt\": \"b\", \"label\": 0}\n",
            3,
            "missing field `text`",
        ),
        (b"{\"text\": 5, \"label\": 1}\n", 1, "must be a string"),
        (b"{\"text\": \"a\", \"label\": null}\n", 1, "`label`"),
    ];
    for (i, (bytes, want_line, want)) in cases.iter().enumerate() {
        let path = write(dir.path(), &format!("m{i}.jsonl"), bytes);
        let (file, line, message) = data_error(load_dataset(
            &data_config(DataFormat::Jsonl, &path),
            None,
            1,
        ));
        assert_eq!((&file, line), (&path, *want_line), "{message}");
        assert!(message.contains(want), "case {i}: {message}");
    }
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.csv");
    let err = load_dataset(&csv_config(&path), None, 1).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path: p, .. } if *p == path),
        "{err}"
    );
}

#[test]
fn csv_and_jsonl_without_columns_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "d.csv", b"text,label\na,b\n");
    let mut cfg = csv_config(&path);
    cfg.text_column = None;
    assert_eq!(
        config_error(load_dataset(&cfg, None, 1)).0,
        "data.text_column"
    );
    let mut cfg = data_config(DataFormat::Jsonl, &path);
    cfg.label_column = None;
    assert_eq!(
        config_error(load_dataset(&cfg, None, 1)).0,
        "data.label_column"
    );
}

#[test]
fn rotten_tomatoes_layout_skips_plots_and_keys_by_movie() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "rotten_tomatoes_corpus_full.csv",
        b"category,text,movie_name,has_plot_and_reviews\n\
plot,\"A long plot, over\ntwo lines.\",alpha,True\n\
fresh,A joy.,alpha,True\n\
rotten,\"Dull, dull.\",beta,False\n\
fresh,Fun.,beta,False\n",
    );
    let mut cfg = data_config(DataFormat::RottenTomatoes, dir.path());
    cfg.text_column = None;
    cfg.label_column = None;
    let d = load_dataset(&cfg, None, 1).unwrap();
    assert_eq!(
        d.source, path,
        "a folder resolves to the corpus file inside it"
    );
    assert_eq!(d.label_names, ["fresh", "rotten"]);
    assert_eq!(d.examples.len(), 3);
    let keys: Vec<&str> = d.examples.iter().filter_map(|e| e.key.as_deref()).collect();
    assert_eq!(keys, ["alpha", "beta", "beta"]);
    let d = load_dataset(&cfg, Some("has_plot_and_reviews"), 1).unwrap();
    assert_eq!(d.examples[0].key.as_deref(), Some("True"));
    let (_, line, message) = data_error(load_dataset(&cfg, Some("director"), 1));
    assert_eq!(line, 1);
    assert!(message.contains("`director`"), "{message}");
}

/// Official GLUE layouts, cut to a few rows; texts carry stray quotes as the real files do.
const GLUE_FILES: [(&str, &str, &str); 7] = [
    (
        "SST-2",
        "train.tsv",
        "sentence\tlabel\nit 's a \"charming\" film \t1\ndull \t0\n",
    ),
    (
        "CoLA",
        "train.tsv",
        "gj04\t1\t\tOur friends won't buy this analysis.\ngj04\t0\t*\tThey drank the pub.\n",
    ),
    (
        "MNLI",
        "train.tsv",
        "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n\
0\t31193\t31193n\tgovernment\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tConceptually \"cream\" skimming.\tProduct and geography.\tneutral\tneutral\n\
1\t101457\t101457e\ttelephone\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tyou know it.\tYou know.\tentailment\tentailment\n\
2\t134793\t134793c\tfiction\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tOne of our number.\tNo one.\tcontradiction\tcontradiction\n",
    ),
    (
        "QNLI",
        "train.tsv",
        "index\tquestion\tsentence\tlabel\n0\tWhen?\tIn 1990.\tentailment\n1\tWho?\tA dog.\tnot_entailment\n",
    ),
    (
        "QQP",
        "train.tsv",
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n1\t1\t2\tHow?\tHow so?\t1\n2\t3\t4\tWhy?\tWhen?\t0\n",
    ),
    (
        "RTE",
        "train.tsv",
        "index\tsentence1\tsentence2\tlabel\n0\tNo weapons.\tWeapons found.\tnot_entailment\n1\tA cat.\tAn animal.\tentailment\n",
    ),
    (
        "MRPC",
        "train.tsv",
        "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t702876\t702977\tAmrozi accused.\tHe accused.\n0\t2108705\t2108831\tYucaipa owned.\tIt sold.\n",
    ),
];

fn glue_config(folder: &Path, task: &str) -> DataConfig {
    let mut cfg = data_config(DataFormat::Glue, folder);
    cfg.text_column = None;
    cfg.label_column = None;
    cfg.glue_task = Some(task.into());
    cfg
}

#[test]
fn glue_presets_read_the_official_layouts_with_glue_label_ids() {
    let dir = tempfile::tempdir().unwrap();
    for (folder, file, content) in GLUE_FILES {
        std::fs::create_dir_all(dir.path().join(folder)).unwrap();
        write(&dir.path().join(folder), file, content.as_bytes());
    }
    let load = |folder: &str, task: &str| {
        load_dataset(&glue_config(&dir.path().join(folder), task), None, 1).unwrap()
    };

    let d = load("SST-2", "sst2");
    assert_eq!(d.label_names, ["0", "1"]);
    assert_eq!(d.examples[0].text, "it 's a \"charming\" film ");
    assert_eq!((d.examples[0].label, d.examples[1].label), (1, 0));

    let d = load("CoLA", "cola");
    assert_eq!(d.examples[0].text, "Our friends won't buy this analysis.");
    assert_eq!((d.examples[0].label, d.examples[1].label), (1, 0));

    for task in ["mnli", "mnli-mm"] {
        let d = load("MNLI", task);
        assert_eq!(d.label_names, ["entailment", "neutral", "contradiction"]);
        let labels: Vec<u32> = d.examples.iter().map(|e| e.label).collect();
        assert_eq!(labels, [1, 0, 2]);
        assert_eq!(d.examples[0].text, "Conceptually \"cream\" skimming.");
        assert_eq!(
            d.examples[0].text_pair.as_deref(),
            Some("Product and geography.")
        );
    }
    let d = load_dataset(
        &glue_config(&dir.path().join("MNLI"), "mnli"),
        Some("genre"),
        1,
    )
    .unwrap();
    assert_eq!(d.examples[2].key.as_deref(), Some("fiction"));

    let d = load("QNLI", "qnli");
    assert_eq!(d.examples[1].text_pair.as_deref(), Some("A dog."));
    assert_eq!(d.examples[1].label, 1);
    let d = load("QQP", "qqp");
    assert_eq!(
        (d.examples[0].text.as_str(), d.examples[0].label),
        ("How?", 1)
    );
    let d = load("RTE", "rte");
    assert_eq!((d.examples[0].label, d.examples[1].label), (1, 0));
    let d = load("MRPC", "mrpc");
    assert_eq!(d.examples[0].text_pair.as_deref(), Some("He accused."));
    assert_eq!(d.examples[0].label, 1);
}

#[test]
fn glue_dev_files_differ_only_for_mnli() {
    let dir = tempfile::tempdir().unwrap();
    let header = "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n";
    let row = |text: &str, label: &str| {
        format!(
            "0\t1\t1n\tslate\tx\ty\tx\ty\t{text}\tpair\t{label}\t{label}\t{label}\t{label}\t{label}\t{label}\n"
        )
    };
    write(
        dir.path(),
        "dev_matched.tsv",
        format!("{header}{}", row("matched", "neutral")).as_bytes(),
    );
    write(
        dir.path(),
        "dev_mismatched.tsv",
        format!("{header}{}", row("mismatched", "entailment")).as_bytes(),
    );
    let m = load_glue(dir.path(), GlueTask::Mnli, GlueSplit::Dev).unwrap();
    let mm = load_glue(dir.path(), GlueTask::MnliMismatched, GlueSplit::Dev).unwrap();
    assert_eq!(
        (m.examples[0].text.as_str(), m.examples[0].label),
        ("matched", 1)
    );
    assert_eq!(
        (mm.examples[0].text.as_str(), mm.examples[0].label),
        ("mismatched", 0)
    );
    assert_eq!(GlueTask::Rte.file(GlueSplit::Dev), "dev.tsv");
}

#[test]
fn glue_errors_name_the_task_folder_file_or_field() {
    let dir = tempfile::tempdir().unwrap();
    let (file, line, message) = data_error(load_dataset(&glue_config(dir.path(), "rte"), None, 1));
    assert_eq!((file, line), (dir.path().join("train.tsv"), 0));
    assert!(message.contains("GLUE task folder"), "{message}");
    let (field, message) = config_error(load_dataset(&glue_config(dir.path(), "squad"), None, 1));
    assert_eq!(field, "data.glue_task");
    assert!(
        message.contains("squad") && message.contains("mrpc"),
        "{message}"
    );
    write(
        dir.path(),
        "train.tsv",
        b"index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n",
    );
    let (_, line, message) = data_error(load_dataset(&glue_config(dir.path(), "rte"), None, 1));
    assert_eq!(line, 2);
    assert!(message.contains("maybe"), "{message}");
}

/// The same bad content with LF, CRLF and CR line ends: every ending must give the same,
/// correct line, whatever comes before the bad row (a quoted field over two lines, blank lines).
#[test]
fn crlf_and_lf_files_report_the_same_lines() {
    let dir = tempfile::tempdir().unwrap();
    // (format, content with LF ends, expected line, what the message says)
    let cases: [(DataFormat, &str, usize, &str); 7] = [
        (
            DataFormat::Csv,
            "text,label\na,pos\nb,neg,extra\n",
            3,
            "ragged",
        ),
        (
            DataFormat::Csv,
            "text,label\n\"two\nlines\",pos\nb,neg\nc,neg,x\n",
            5,
            "ragged",
        ),
        (
            DataFormat::Csv,
            "text,label\n\na,pos\n\nb,neg,x\n",
            5,
            "ragged",
        ),
        (DataFormat::Csv, "\ntext,category\na,pos\n", 2, "`label`"),
        (DataFormat::Csv, "text,label\na,pos\nb,\n", 3, "empty label"),
        (
            DataFormat::Tsv,
            "text\tlabel\na\tpos\nonly text\n",
            3,
            "ragged",
        ),
        (
            DataFormat::Glue,
            "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tc\td\tmaybe\n",
            3,
            "maybe",
        ),
    ];
    for (i, (format, lf, want_line, want)) in cases.iter().enumerate() {
        for (ending, eol) in [("lf", "\n"), ("crlf", "\r\n"), ("cr", "\r")] {
            let content = lf.replace('\n', eol);
            let folder = dir.path().join(format!("case{i}-{ending}"));
            std::fs::create_dir_all(&folder).unwrap();
            let glue = *format == DataFormat::Glue;
            let path = write(
                &folder,
                if glue { "train.tsv" } else { "d.txt" },
                content.as_bytes(),
            );
            let cfg = if glue {
                glue_config(&folder, "rte")
            } else {
                data_config(*format, &path)
            };
            let (file, line, message) = data_error(load_dataset(&cfg, None, 1));
            assert_eq!(
                (&file, line),
                (&path, *want_line),
                "case {i} with {ending} line ends: {message}"
            );
            assert!(message.contains(want), "case {i} ({ending}): {message}");
        }
    }
    // Invalid UTF-8 after a CRLF header, as in the LF test above.
    let path = write(
        dir.path(),
        "utf8.csv",
        b"text,label\r\nok,pos\r\nbad \xff\xfe,neg\r\n",
    );
    let (_, line, message) = data_error(load_dataset(&csv_config(&path), None, 1));
    assert_eq!(line, 3, "{message}");
}

/// Random bytes drawn from the characters that matter to the parsers: no input may panic.
#[test]
fn random_bytes_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let alphabet: &[u8] = b"ab,\t\"\n\r{}:[]0 \xff\xc3text label";
    let mut rng = SeededRng::new(99);
    for i in 0..300 {
        let len = rng.below(80);
        let mut bytes: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        if i % 2 == 0 {
            let mut with_header = b"text,label\n".to_vec();
            with_header.append(&mut bytes);
            bytes = with_header;
        }
        let path = write(dir.path(), "r.bin", &bytes);
        for format in [
            DataFormat::Csv,
            DataFormat::Tsv,
            DataFormat::Jsonl,
            DataFormat::RottenTomatoes,
        ] {
            let _ = load_dataset(&data_config(format, &path), Some("label"), 1);
        }
    }
}
