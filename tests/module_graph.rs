//! The architecture rule of `docs/architecture.md`, checked from the sources: a top-level module
//! imports only modules below it, so the graph of `crate::x` references between the top-level
//! modules of `src/` (outside `#[cfg(test)]` items and plain `//` comments; doc comments count,
//! since an intra-doc link to a later stage is a dependency on it) has no cycle, and nothing
//! but the front ends (`cli`, `main`) imports `cmd`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to (`render/pdf.rs` → `render`).
fn top_module(file: &Path) -> String {
    let rel = file.strip_prefix(src()).expect("under src");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_str().expect("utf-8");
    name.strip_suffix(".rs").unwrap_or(name).to_string()
}

/// `source` without plain `//` and `/* */` comments (doc comments `///`, `//!` stay), with string
/// and char literals blanked, so that only code and docs are searched.
fn code_and_docs(source: &str) -> String {
    let b = source.as_bytes();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &source[i..];
        if rest.starts_with("///") || rest.starts_with("//!") {
            let end = rest.find('\n').unwrap_or(rest.len());
            out.push_str(&rest[..end]);
            i += end;
        } else if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |e| e + 2);
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let hashes = rest[1..].bytes().take_while(|&c| c == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            i += rest[body..].find(&close).map_or(rest.len(), |e| body + e + close.len());
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            i = j + 1;
            out.push_str("\"\"");
        } else if rest.starts_with("'\"'") {
            i += 3;
        } else {
            let c = rest.chars().next().expect("a char");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `code` without the items that carry `#[cfg(test)]` (a `mod tests { … }` or a `use …;`).
fn without_test_items(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let brace = after.find('{');
        let semi = after.find(';');
        rest = match (brace, semi) {
            (Some(b), Some(s)) if s < b => &after[s + 1..],
            (Some(b), _) => {
                let mut depth = 0usize;
                let mut end = after.len();
                for (k, c) in after[b..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                &after[end..]
            }
            (None, Some(s)) => &after[s + 1..],
            (None, None) => "",
        };
    }
    out.push_str(rest);
    out
}

/// The top-level modules named after `crate::` in `code` (also inside `crate::{a, b::c}`).
fn referenced(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        let s = s.trim_start().trim_start_matches("r#");
        s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
    };
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of a use group: split at commas of depth 0.
            let mut depth = 0usize;
            let mut start = 0;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        found.insert(ident(&group[start..k]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(ident(&group[start..k]));
                        start = k + 1;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

/// Edges `from → to` with the files that make them.
fn graph() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in files {
        let from = top_module(&file);
        if from == "main" || from == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read source");
        let code = without_test_items(&code_and_docs(&text));
        let rel = file.strip_prefix(src()).expect("under src").display().to_string();
        for to in referenced(&code) {
            if to != from {
                edges.entry(from.clone()).or_default().entry(to).or_default().insert(rel.clone());
            }
        }
    }
    edges
}

/// A cycle through `start`, if there is one (depth-first search).
fn cycle_from(
    start: &str,
    edges: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
) -> Option<Vec<String>> {
    fn walk(
        node: &str,
        start: &str,
        edges: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in edges.get(node).into_iter().flat_map(|m| m.keys()) {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(next, start, edges, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    walk(start, start, edges, &mut path, &mut seen).then_some(path)
}

#[test]
fn the_parser_sees_what_it_must() {
    let code = without_test_items(&code_and_docs(
        "use crate::{a::X, b, r#gen::{c, d}};\n// crate::comment\n/// see [`crate::doc`]\n\
         let s = \"crate::string\";\n#[cfg(test)]\nmod tests { use crate::tested; }\n\
         #[cfg(test)]\nuse crate::test_only;\nfn f() -> crate::e::T { crate::f::g() }",
    ));
    let found: Vec<String> = referenced(&code).into_iter().collect();
    assert_eq!(found, ["a", "b", "doc", "e", "f", "gen"]);
}

#[test]
fn top_level_modules_form_no_cycle() {
    let edges = graph();
    assert!(edges.len() > 10, "the graph was read: {edges:?}");
    for start in edges.keys() {
        if let Some(cycle) = cycle_from(start, &edges) {
            let mut steps = Vec::new();
            for pair in
                cycle.iter().chain(std::iter::once(&cycle[0])).collect::<Vec<_>>().windows(2)
            {
                let files = &edges[pair[0]][pair[1]];
                steps.push(format!("{} → {} ({files:?})", pair[0], pair[1]));
            }
            panic!("module cycle through {start}:\n  {}", steps.join("\n  "));
        }
    }
}

#[test]
fn only_front_ends_import_cmd() {
    let edges = graph();
    let importers: Vec<_> = edges
        .iter()
        .filter(|(from, to)| to.contains_key("cmd") && from.as_str() != "cli")
        .map(|(from, to)| format!("{from} ({:?})", to["cmd"]))
        .collect();
    assert!(importers.is_empty(), "modules below cmd/ import it: {importers:?}");
}
