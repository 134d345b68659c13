//! The architecture as a test: layers point one way (commands -> exec -> plan -> stages ->
//! store and the ML folders) and no files import each other in a circle. Read from the
//! sources' `crate::` and `super::` paths, so a new arrow that runs back up fails here.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Rank of each top-level module: a file may name modules of its own rank or below. The ML
/// folders (models, cluster, train, pretext, eval) and the store rank below `config`: they
/// never read configuration, they take typed values. This is the one test of the layering
/// (with the circle check below, which also covers the files inside a folder).
const RANKS: &[(&str, u8)] = &[
    ("main", 90),
    ("lib", 90),
    ("commands", 80),
    ("error", 80),
    ("cli", 80),
    ("exec", 70),
    ("report", 60),
    ("plan", 50),
    ("stages", 40),
    ("config", 35),
    ("eval", 30),
    ("pretext", 30),
    ("store", 20),
    ("train", 20),
    ("cluster", 20),
    ("models", 20),
    ("data", 0),
    ("device", 0),
    ("seed", 0),
    ("engine", 0),
    ("chain", 0),
    ("skip", 0),
];

fn rank(module: &str) -> Option<u8> {
    RANKS.iter().find(|(m, _)| *m == module).map(|(_, r)| *r)
}

fn sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(&root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| e.path().strip_prefix(&root).unwrap().to_path_buf())
        .collect();
    files.sort();
    files
}

/// The top-level module a source file belongs to (`stages/kmeans.rs` -> `stages`).
fn top(file: &Path) -> String {
    let first = file.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// Source text without `#[cfg(test)]` modules at the end of a file (tests may reach anywhere).
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(file)).unwrap();
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Every `crate::<module>` named in the code.
fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + 7..];
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

#[test]
fn lower_layers_never_import_higher_ones() {
    let mut wrong = Vec::new();
    for file in sources() {
        let module = top(&file);
        let Some(own) = rank(&module) else {
            wrong.push(format!("{}: module `{module}` has no rank in tests/layers.rs", file.display()));
            continue;
        };
        for r in crate_refs(&code(&file)) {
            match rank(&r) {
                Some(theirs) if theirs > own && r != module => {
                    wrong.push(format!("{} ({module}) imports crate::{r}, a higher layer", file.display()))
                }
                _ => {}
            }
        }
    }
    assert!(wrong.is_empty(), "arrows that run back up:\n{}", wrong.join("\n"));
}

/// Edges between files: `crate::a::b` to `a/b.rs`, `super::x` to the sibling `x.rs` (a
/// `mod.rs` only re-exports, so edges into it are followed no further).
fn file_edges() -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let files = sources();
    let exists = |p: &Path| files.iter().any(|f| f == p);
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for file in &files {
        if file.file_name().is_some_and(|n| n == "mod.rs" || n == "lib.rs" || n == "main.rs") {
            continue;
        }
        let text = code(file);
        let dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut targets = BTreeSet::new();
        for (prefix, base) in [("crate::", PathBuf::new()), ("super::", dir.clone())] {
            for (i, _) in text.match_indices(prefix) {
                // Skip `crate::` that is part of `$crate::`/`super::super::`-style chains.
                let rest = &text[i + prefix.len()..];
                let path: Vec<String> = rest
                    .split("::")
                    .map(|seg| {
                        seg.chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect::<String>()
                    })
                    .take_while(|seg| !seg.is_empty() && seg.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
                    .collect();
                let mut p = base.clone();
                for seg in &path {
                    p.push(seg);
                    let as_file = p.with_extension("rs");
                    if exists(&as_file) && as_file != *file {
                        targets.insert(as_file);
                        break;
                    }
                }
            }
        }
        edges.insert(file.clone(), targets);
    }
    edges
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let edges = file_edges();
    // Depth-first search for a back edge; report the cycle.
    fn visit(
        f: &PathBuf,
        edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        state: &mut BTreeMap<PathBuf, u8>,
        stack: &mut Vec<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        state.insert(f.clone(), 1);
        stack.push(f.clone());
        for t in edges.get(f).into_iter().flatten() {
            match state.get(t) {
                Some(1) => {
                    let start = stack.iter().position(|s| s == t).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(t.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(t, edges, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(f.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for f in edges.keys() {
        if !state.contains_key(f) {
            if let Some(cycle) = visit(f, &edges, &mut state, &mut Vec::new()) {
                let names: Vec<String> = cycle.iter().map(|p| p.display().to_string()).collect();
                panic!("import circle: {}", names.join(" -> "));
            }
        }
    }
    // The check must see real edges (a parser that finds none would pass anything).
    let count: usize = edges.values().map(BTreeSet::len).sum();
    assert!(count > 50, "only {count} file edges found");
}
