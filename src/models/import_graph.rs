//! Checks, from the sources, that the files of `models/` import each other one way only
//! (`arch` <- `layers` <- architectures <- `blueprints` <- `net`), and nothing above them.
use std::collections::BTreeMap;
use std::path::Path;

/// Sibling modules each file of `models/` names (`super::x`, `super::{x, y}`,
/// `crate::models::x`), outside its tests.
fn imports() -> BTreeMap<String, Vec<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/models");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("src/models")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    let modules: Vec<String> = files
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|m| m != "mod")
        .collect();
    let mut graph = BTreeMap::new();
    for path in &files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "mod" {
            continue;
        }
        let text = std::fs::read_to_string(path).expect("source");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let mut names = Vec::new();
        for line in code.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
            for prefix in ["super::", "crate::models::"] {
                for (at, _) in line.match_indices(prefix) {
                    names.extend(first_segments(&line[at + prefix.len()..]));
                }
            }
        }
        names.retain(|n| modules.contains(n) && *n != name);
        names.sort();
        names.dedup();
        graph.insert(name, names);
    }
    graph
}

/// `x::...` -> [x]; `{x, y::z}` -> [x, y].
fn first_segments(rest: &str) -> Vec<String> {
    let ident = |s: &str| {
        s.trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect::<String>()
    };
    match rest.strip_prefix('{') {
        Some(group) => group.split('}').next().unwrap_or("").split(',').map(ident).collect(),
        None => vec![ident(rest)],
    }
}

/// A cycle in `graph`, as the list of its modules, if there is one.
fn find_cycle(graph: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    fn visit(node: &str, graph: &BTreeMap<String, Vec<String>>, stack: &mut Vec<String>, done: &mut Vec<String>) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.iter().any(|n| n == node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.push(node.to_string());
        None
    }
    let mut done = Vec::new();
    graph.keys().find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_files_of_models_import_each_other_one_way() {
    let graph = imports();
    assert!(graph.len() >= 9, "{graph:?}");
    assert_eq!(graph["arch"], ["error"], "arch imports only the errors");
    assert!(graph["net"].contains(&"blueprints".to_string()), "{graph:?}");
    assert_eq!(find_cycle(&graph), None, "{graph:#?}");
}

#[test]
fn the_cycle_finder_names_a_cycle() {
    let graph: BTreeMap<String, Vec<String>> = [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"]), ("d", vec![])]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
        .collect();
    assert_eq!(find_cycle(&graph), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
    assert_eq!(first_segments("{arch::Arch, layers}"), ["arch", "layers"]);
}

#[test]
fn models_import_no_higher_layer() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/models");
    for entry in std::fs::read_dir(dir).expect("src/models") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("source");
        for higher in ["stages", "plan", "exec", "commands", "config", "run"] {
            let needle = format!("crate::{higher}::");
            assert!(!text.contains(&needle), "{} imports {needle}", path.display());
        }
    }
}
