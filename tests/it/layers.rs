//! The layers of docs/ARCHITECTURE.md, checked on the source: a top-level
//! module imports (`crate::x`) only modules of rows below its own, so no
//! import cycle can come back unnoticed.

use std::collections::BTreeSet;
use std::path::Path;

/// Bottom first; a module may use any module of an earlier row.
const ROWS: &[&[&str]] = &[
    &["clock", "problem", "redact"],
    &["model"],
    &["limits"],
    &["transform"],
    &["config"],
    &["store"],
    &["vault", "access"],
    &["connect", "telemetry"],
    &["deliver"],
    &["reload"],
    &["state", "server"],
    &["ingest", "admin", "alert"],
    &["console"],
    &["app"],
    &["sim", "sync"],
    &["bench"],
    &["cli"],
];

fn row(module: &str) -> Option<usize> {
    ROWS.iter().position(|r| r.contains(&module))
}

/// The top-level modules named after `crate::` in Rust source (comments
/// removed), including `crate::{a, b::c}`.
fn used(source: &str) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group
                .split('}')
                .next()
                .unwrap_or("")
                .split(',')
                .map(|p| p.trim().split("::").next().unwrap_or(""))
                .collect(),
            None => vec![
                rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or(""),
            ],
        };
        out.extend(
            names
                .into_iter()
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
        );
    }
    out
}

fn visit(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            visit(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn every_module_imports_only_downwards() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    visit(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .iter()
            .next()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(".rs");
        if top == "lib" || top == "main" {
            continue;
        }
        let name = rel.to_string_lossy();
        // Unit tests may reach for any helper.
        if name.ends_with("tests.rs") || name.contains("/tests/") {
            continue;
        }
        let own = row(top).unwrap_or_else(|| panic!("src/{top} is in no row of ROWS"));
        for m in used(&std::fs::read_to_string(&file).unwrap()) {
            if let Some(r) = row(&m)
                && m != top
                && r >= own
            {
                wrong.push(format!("src/{name} uses crate::{m}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_scanner_sees_grouped_and_plain_paths() {
    let found =
        used("use crate::{model::State, limits};\nlet x = crate::store::Store::x(); // crate::app");
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["limits", "model", "store"]
    );
}
