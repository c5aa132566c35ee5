//! The layering rule, checked on the sources: inside every crate of the workspace, no two
//! modules import each other, directly or around a longer circle (a module and its own parent
//! or child aside: `super::` and a parent's `mod` lines are the same family). Crates cannot form
//! cycles at all (cargo refuses them), so together this keeps "libraries below, engine above,
//! front ends on top" true file by file.
//!
//! Imports are read as text: every `crate::a::b` path (in `use` trees too) names the deepest
//! module file it reaches. Comments (doc links included) and unit tests (`#[cfg(test)]` to the
//! end of a file) are left out: they may point anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`["kernels", "route"]`) of every `.rs` file under `src`.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let mut parts: Vec<String> = rel
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            out.insert(parts, path);
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every module path a `crate::` path or use tree in `text` names, `self` resolved.
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(is_ident) {
            continue; // `fedsa_crate::` and the like
        }
        let (paths, used) = use_tree(rest, Vec::new());
        out.extend(paths);
        rest = &rest[used..];
    }
    out
}

/// Parses a use tree (`a::b`, `a::{b, c::{self, d}}`) at the start of `text`; returns the
/// paths it names (each prefixed by `prefix`) and the bytes consumed.
fn use_tree(text: &str, prefix: Vec<String>) -> (Vec<Vec<String>>, usize) {
    let mut path = prefix;
    let mut pos = 0;
    loop {
        let rest = &text[pos..];
        let trimmed = rest.trim_start();
        pos += rest.len() - trimmed.len();
        if let Some(inner) = trimmed.strip_prefix('{') {
            pos += 1;
            let mut paths = Vec::new();
            let mut at = 0;
            loop {
                let (more, used) = use_tree(&inner[at..], path.clone());
                paths.extend(more);
                at += used;
                let tail = inner[at..].trim_start();
                at += inner[at..].len() - tail.len();
                if let Some(t) = tail.strip_prefix(',') {
                    at += 1;
                    if t.trim_start().starts_with('}') {
                        let skip = t.len() - t.trim_start().len();
                        at += skip + 1;
                        break;
                    }
                } else {
                    at += usize::from(tail.starts_with('}'));
                    break;
                }
            }
            return (paths, pos + at);
        }
        let ident: String = trimmed.chars().take_while(|&c| is_ident(c)).collect();
        if ident.is_empty() {
            return (vec![path], pos);
        }
        pos += ident.len();
        if ident != "self" {
            path.push(ident);
        }
        if text[pos..].starts_with("::") {
            pos += 2;
        } else {
            return (vec![path], pos);
        }
    }
}

/// The deepest module of `known` that `path` reaches.
fn module_of(path: &[String], known: &BTreeMap<Vec<String>, PathBuf>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| known.contains_key(p))
}

/// Cycles of the module graph `edges` (strongly connected groups of more than one module).
fn cycles(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    // Reachability by repeated search: the graphs are a few dozen nodes.
    let reach = |from: &Vec<String>| -> BTreeSet<Vec<String>> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&Vec<String>> = edges.get(from).into_iter().flatten().collect();
        while let Some(m) = stack.pop() {
            if seen.insert(m.clone()) {
                stack.extend(edges.get(m).into_iter().flatten());
            }
        }
        seen
    };
    let reaches: BTreeMap<&Vec<String>, BTreeSet<Vec<String>>> =
        edges.keys().map(|m| (m, reach(m))).collect();
    let mut groups: Vec<Vec<Vec<String>>> = Vec::new();
    let mut placed = BTreeSet::new();
    for (m, r) in &reaches {
        if placed.contains(*m) || !r.contains(*m) {
            continue;
        }
        let group: Vec<Vec<String>> = r
            .iter()
            .filter(|o| reaches.get(o).is_some_and(|back| back.contains(*m)))
            .cloned()
            .collect();
        placed.extend(group.iter().cloned());
        groups.push(group);
    }
    groups
}

/// One crate's module graph, family edges left out.
fn crate_graph(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let known = modules(src);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, file) in &known {
        let text = std::fs::read_to_string(file).unwrap();
        let code = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or("")
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for path in crate_paths(&code) {
            let Some(target) = module_of(&path, &known) else {
                continue;
            };
            let family = target.starts_with(module) || module.starts_with(&target);
            if !family {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    edges
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn use_trees_are_read_whole() {
    let text = "use crate::checkpoint::{self, Checkpoint};\nuse crate::{a::b, c};\n\
                let x = crate::d::e::f(1); my_crate::z::y;";
    let paths: Vec<String> = crate_paths(text).iter().map(|p| p.join("::")).collect();
    assert_eq!(
        paths,
        [
            "checkpoint",
            "checkpoint::Checkpoint",
            "a::b",
            "c",
            "d::e::f"
        ]
    );
}

#[test]
fn a_circle_is_found() {
    let m = |s: &str| vec![s.to_string()];
    let mut edges = BTreeMap::new();
    edges.insert(m("a"), BTreeSet::from([m("b")]));
    edges.insert(m("b"), BTreeSet::from([m("c")]));
    edges.insert(m("c"), BTreeSet::from([m("a")]));
    edges.insert(m("d"), BTreeSet::from([m("a")]));
    assert_eq!(cycles(&edges), vec![vec![m("a"), m("b"), m("c")]]);
}

#[test]
fn no_module_of_any_crate_imports_one_that_imports_it_back() {
    let root = workspace();
    let mut crates: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .chain(std::fs::read_dir(root.join("plugins")).unwrap())
        .map(|e| e.unwrap().path().join("src"))
        .filter(|src| src.is_dir())
        .collect();
    crates.sort();
    assert!(crates.len() >= 8, "found only {crates:?}");
    let mut found = Vec::new();
    for src in &crates {
        for group in cycles(&crate_graph(src)) {
            let names: Vec<String> = group.iter().map(|m| m.join("::")).collect();
            found.push(format!("{}: {}", src.display(), names.join(" <-> ")));
        }
    }
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}
