//! The layering ARCHITECTURE.md draws, checked over the sources: a module of `src/` may use
//! only modules of lower layers, so no import goes upward and no two modules import each other.
//! Also the size rule of CONTRIBUTING.md: a file past ~600 lines of code does several jobs.

use std::path::{Path, PathBuf};

/// The top-level modules of `src/`, bottom layer first. A module may use any module of an
/// earlier line, none of its own line or a later one. `main.rs` and `lib.rs` sit above all.
const LAYERS: &[&[&str]] = &[
    // The nouns and pure helpers.
    &["clock", "ids", "paths", "patterns", "symbols"],
    &["model"],
    // Every SQL statement, then the rules over it.
    &["store"],
    &["error"],
    &["coordinator"],
    // What differs between Linux, macOS and Windows, then what a running process needs beside
    // the rules.
    &["platform"],
    &["checkout", "clients", "liveness", "metrics", "wake"],
    &["diffs"],
    // The adapters: MCP, events out, the web server (which mounts MCP's endpoint).
    &["mcp", "webhooks"],
    &["web"],
    // The edge: every flag, what flags become, the commands (which open the database from
    // flags themselves), and one function per mode for `main`.
    &["flags"],
    &["config"],
    &["cli"],
    &["modes"],
];

/// Lines of code (tests aside) past which a file is split.
const MAX_CODE_LINES: usize = 600;

fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src/") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    found.sort();
    found
}

/// The top-level module a file of `src/` belongs to, `None` for the crate roots.
fn module_of(path: &Path) -> Option<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let relative = path.strip_prefix(&src).expect("a file under src/");
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "main" | "lib")).then(|| name.to_owned())
}

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|line| line.contains(&module))
}

/// Every top-level module a file's code names as `crate::NAME`, comments aside, including the
/// first names of a `use crate::{...}` group (which rustfmt spreads over several lines).
fn uses(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The names at the group's own depth: after its `{` and after each `,` there.
            let mut depth = 0;
            let mut item_start = Some(0);
            for (i, c) in group.char_indices() {
                if let Some(start) = item_start.take() {
                    let name = ident(group[start..].trim_start());
                    if !name.is_empty() {
                        found.push(name);
                    }
                }
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = Some(i + 1),
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.push(name);
            }
        }
    }
    found
}

/// The part of a file before its unit tests.
fn code_lines(text: &str) -> usize {
    text.lines()
        .take_while(|line| !line.starts_with("#[cfg(test)]"))
        .count()
}

#[test]
fn every_module_uses_only_lower_layers() {
    let mut wrong = Vec::new();
    let mut seen = Vec::new();
    for path in sources() {
        let Some(module) = module_of(&path) else {
            continue;
        };
        let own = layer(&module).unwrap_or_else(|| {
            panic!("src/{module} is in no layer: add it to LAYERS and ARCHITECTURE.md")
        });
        seen.push(module.clone());
        let text = std::fs::read_to_string(&path).expect("read a source file");
        for used in uses(&text) {
            if used == module {
                continue;
            }
            match layer(&used) {
                Some(theirs) if theirs < own => {}
                Some(_) => wrong.push(format!("{} uses crate::{used}", path.display())),
                // Items of the crate root (`crate::Error`, `crate::Coordinator`) are
                // re-exports of modules already checked through their own names.
                None => {}
            }
        }
    }
    assert!(seen.len() > 10, "the check found the sources: {seen:?}");
    assert!(
        wrong.is_empty(),
        "imports that go up or sideways (see LAYERS):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn a_source_file_does_one_job() {
    let long: Vec<String> = sources()
        .into_iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(&path).expect("read a source file");
            let lines = code_lines(&text);
            (lines > MAX_CODE_LINES).then(|| format!("{}: {lines} lines", path.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_CODE_LINES} lines of code (tests aside): split them by job\n{}",
        long.join("\n")
    );
}

#[test]
fn the_layer_check_sees_grouped_and_nested_uses() {
    let found = uses(
        "use crate::{\n    model::{Lock, Session},\n    store,\n};\n// crate::web here is a comment\nlet x = crate::clock::now();",
    );
    assert_eq!(found, ["model", "store", "clock"]);
}
