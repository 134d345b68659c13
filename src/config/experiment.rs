//! An experiment file read into spanned form, with `--set` overrides applied and the
//! sweep expanded into one raw experiment per variant.
use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;

use super::{did_you_mean, ConfigError, Node, Override, SourceFile, Value};

/// Most variants one experiment may expand into.
pub const MAX_VARIANTS: usize = 10_000;

const TOP_LEVEL_KEYS: &[&str] = &["name", "description", "seed", "device", "stages", "sweep", "slurm"];

/// One variant of an experiment: overrides and sweep values applied, not yet validated.
#[derive(Clone, Debug)]
pub struct RawExperiment {
    pub file: Arc<SourceFile>,
    pub name: String,
    pub name_node: Node,
    pub seed: u64,
    pub device: Node,
    /// Variant name ("default" without a sweep) and the swept values `(key path, value)`.
    pub variant: String,
    pub swept: Vec<(String, Node)>,
    pub stages: IndexMap<String, RawStage>,
    /// The `[slurm]` section, if any (executor defaults; not part of any key).
    pub slurm: Option<Node>,
}

/// A stage table: its declared kind and the remaining keys (still spanned).
#[derive(Clone, Debug)]
pub struct RawStage {
    pub name: String,
    pub kind: String,
    pub kind_node: Node,
    pub table: Node,
    /// `[stages.X.resources]`, taken out of `table`: resources are not part of the key.
    pub resources: Option<Node>,
}

/// Reads an experiment file, applies `--set` overrides and expands its sweep.
pub fn load_experiment(path: &Path, overrides: &[Override]) -> Result<Vec<RawExperiment>, ConfigError> {
    expand_experiment(SourceFile::read(path)?, overrides)
}

/// As [`load_experiment`], for a file already read (the fuzz target gives its text).
pub fn expand_experiment(file: Arc<SourceFile>, overrides: &[Override]) -> Result<Vec<RawExperiment>, ConfigError> {
    let path = file.path.clone();
    let path = path.as_path();
    let mut root = Node::parse(file.clone())?;
    check_top_level(&root)?;
    for o in overrides {
        o.apply(&mut root)?;
    }
    // A key given with --set is fixed: it takes that key out of the sweep.
    let sweep: Vec<_> = read_sweep(&root)?
        .into_iter()
        .filter(|(path, _, _)| !overrides.iter().any(|o| o.path == *path))
        .collect();
    // Refuse a product too large to plan before building it.
    let mut count: usize = 1;
    for (path, values, items) in &sweep {
        count = count.saturating_mul(items.len());
        if count > MAX_VARIANTS {
            return Err(values.error(
                &format!("sweep.\"{path}\""),
                format!("the sweep has more than {MAX_VARIANTS} variants; split it into several experiments"),
            ));
        }
    }
    let mut variants = Vec::new();
    for combination in cartesian(&sweep) {
        let mut tree = root.clone();
        let mut swept = Vec::new();
        for (path, key_node, value) in combination {
            set_path(&mut tree, path, value.clone(), key_node)?;
            swept.push((path.to_string(), value.clone()));
        }
        variants.push(read_variant(&file, &tree, swept)?);
    }
    // Deterministic names must also be unique.
    for (i, v) in variants.iter().enumerate() {
        if variants[..i].iter().any(|w| w.variant == v.variant) {
            return Err(ConfigError::File {
                file: path.to_path_buf(),
                message: format!("the sweep produces variant `{}` twice (repeated values?)", v.variant),
            });
        }
    }
    Ok(variants)
}

fn check_top_level(root: &Node) -> Result<(), ConfigError> {
    let table = root.as_table().ok_or_else(|| root.error("", "expected a table at the top level"))?;
    for (key, (kspan, _)) in table {
        if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
            return Err(root.error_at(kspan.start, key, "unknown key", did_you_mean(key, TOP_LEVEL_KEYS.iter().copied())));
        }
    }
    Ok(())
}

type SweepAxis<'a> = (&'a str, &'a Node, &'a [Node]);

fn read_sweep(root: &Node) -> Result<Vec<SweepAxis<'_>>, ConfigError> {
    let Some((_, sweep)) = root.as_table().and_then(|t| t.get("sweep")) else {
        return Ok(Vec::new());
    };
    let table = sweep.as_table().ok_or_else(|| {
        sweep.error(
            "sweep",
            format!("expected a table of key path = [values], found {}", sweep.type_name()),
        )
    })?;
    let mut axes = Vec::new();
    for (path, (kspan, values)) in table {
        let key = format!("sweep.\"{path}\"");
        let Value::Array(items) = &values.value else {
            return Err(values.error(&key, format!("expected an array of values, found {}", values.type_name())));
        };
        if items.is_empty() {
            return Err(values.error(&key, "a sweep needs at least one value"));
        }
        if path == "name" || path.starts_with("sweep") {
            return Err(values.error_at(kspan.start, &key, format!("`{path}` cannot be swept"), None));
        }
        // The stage (or top-level key) swept must exist.
        check_sweep_target(root, path, values, kspan.start, &key)?;
        axes.push((path.as_str(), values, items.as_slice()));
    }
    Ok(axes)
}

fn check_sweep_target(root: &Node, path: &str, node: &Node, offset: usize, key: &str) -> Result<(), ConfigError> {
    let segs: Vec<&str> = path.split('.').collect();
    match segs.as_slice() {
        ["seed"] | ["device"] | ["description"] => Ok(()),
        ["stages", stage, _param] => {
            let stages = root.lookup("stages").and_then(|s| s.as_table());
            if stages.is_some_and(|t| t.contains_key(*stage)) {
                Ok(())
            } else {
                let names = stages.map(|t| t.keys().map(String::as_str).collect::<Vec<_>>()).unwrap_or_default();
                Err(node.error_at(offset, key, format!("no stage named `{stage}`"), did_you_mean(stage, names)))
            }
        }
        _ => Err(node.error_at(
            offset,
            key,
            format!("cannot sweep `{path}`: expected `stages.<stage>.<key>`, `seed` or `device`"),
            None,
        )),
    }
}

fn cartesian<'a>(axes: &[SweepAxis<'a>]) -> Vec<Vec<(&'a str, &'a Node, &'a Node)>> {
    let mut out: Vec<Vec<(&'a str, &'a Node, &'a Node)>> = vec![Vec::new()];
    for (path, key_node, values) in axes {
        let mut next = Vec::new();
        for prefix in &out {
            for v in values.iter() {
                let mut c = prefix.clone();
                c.push((*path, *key_node, v));
                next.push(c);
            }
        }
        out = next;
    }
    out
}

/// Sets a dotted path in the tree (creating the leaf if absent; parents must exist).
pub(crate) fn set_path(root: &mut Node, path: &str, value: Node, origin: &Node) -> Result<(), ConfigError> {
    let segs: Vec<&str> = path.split('.').collect();
    let (last, parents) = segs.split_last().ok_or_else(|| origin.error(path, "empty key path"))?;
    let mut node = root;
    let mut walked = String::new();
    for seg in parents {
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(seg);
        let Value::Table(t) = &mut node.value else {
            return Err(origin.error(path, format!("`{walked}` is not a table")));
        };
        if !t.contains_key(*seg) {
            let names: Vec<&str> = t.keys().map(String::as_str).collect();
            let hint = did_you_mean(seg, names);
            return Err(origin.error_hint(path, format!("`{walked}` does not exist"), hint));
        }
        node = match t.get_mut(*seg) {
            Some(entry) => &mut entry.1,
            None => return Err(origin.error(path, format!("`{walked}` does not exist"))),
        };
    }
    let Value::Table(t) = &mut node.value else {
        return Err(origin.error(path, format!("`{walked}` is not a table")));
    };
    let key_span = value.span.clone();
    match t.get_mut(*last) {
        Some(entry) => entry.1 = value,
        None => {
            t.insert(last.to_string(), (key_span, value));
        }
    }
    Ok(())
}

fn read_variant(file: &Arc<SourceFile>, root: &Node, swept: Vec<(String, Node)>) -> Result<RawExperiment, ConfigError> {
    let table = root.as_table().ok_or_else(|| root.error("", "expected a table"))?;
    let name_node = match table.get("name") {
        Some((_, n)) => n.clone(),
        None => return Err(root.error("name", "missing required key `name`")),
    };
    let name = match name_node.as_str() {
        Some(s) => crate::config::experiment::check_name(s)
            .map_err(|m| name_node.error("name", m))?
            .to_string(),
        None => return Err(name_node.error("name", format!("expected a string, found {}", name_node.type_name()))),
    };
    let seed = match table.get("seed") {
        None => 0,
        Some((_, n)) => match n.value {
            Value::Integer(i) if i >= 0 => i as u64,
            _ => return Err(n.error("seed", format!("expected a non-negative integer, found {}", n.display()))),
        },
    };
    let device = match table.get("device") {
        None => Node {
            value: Value::String("auto".into()),
            span: 0..0,
            file: file.clone(),
        },
        Some((_, n)) => n.clone(),
    };
    if let Some((_, d)) = table.get("description") {
        if d.as_str().is_none() {
            return Err(d.error("description", format!("expected a string, found {}", d.type_name())));
        }
    }
    let Some((_, stages_node)) = table.get("stages") else {
        return Err(root.error(
            "stages",
            "missing required table `[stages]`: an experiment needs at least one stage",
        ));
    };
    let stages_table = stages_node
        .as_table()
        .ok_or_else(|| stages_node.error("stages", format!("expected a table, found {}", stages_node.type_name())))?;
    if stages_table.is_empty() {
        return Err(stages_node.error("stages", "an experiment needs at least one stage"));
    }
    let mut stages = IndexMap::new();
    for (sname, (kspan, snode)) in stages_table {
        let key = format!("stages.{sname}");
        check_name(sname).map_err(|m| snode.error_at(kspan.start, &key, m, None))?;
        let st = snode
            .as_table()
            .ok_or_else(|| snode.error(&key, format!("expected a table, found {}", snode.type_name())))?;
        let Some((_, kind_node)) = st.get("kind") else {
            return Err(snode.error_at(kspan.start, &key, "missing required key `kind`", None));
        };
        let kind = kind_node.as_str().ok_or_else(|| {
            kind_node.error(
                &format!("{key}.kind"),
                format!("expected a string, found {}", kind_node.type_name()),
            )
        })?;
        let mut rest = snode.clone();
        let mut resources = None;
        if let Value::Table(t) = &mut rest.value {
            t.shift_remove("kind");
            resources = t.shift_remove("resources").map(|(_, n)| n);
        }
        stages.insert(
            sname.clone(),
            RawStage {
                name: sname.clone(),
                kind: kind.to_string(),
                kind_node: kind_node.clone(),
                table: rest,
                resources,
            },
        );
    }
    let variant = variant_name(&swept);
    Ok(RawExperiment {
        file: file.clone(),
        name,
        name_node,
        seed,
        device,
        variant,
        swept,
        stages,
        slurm: table.get("slurm").map(|(_, n)| n.clone()),
    })
}

/// Names of experiments and stages become folder names: keep them plain.
pub fn check_name(s: &str) -> Result<&str, String> {
    let ok = !s.is_empty()
        && s.len() <= 100
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && !s.starts_with('.');
    if ok {
        Ok(s)
    } else {
        let shown: String = s.chars().take(60).flat_map(char::escape_debug).collect();
        let more = if s.chars().count() > 60 { "..." } else { "" };
        Err(format!(
            "invalid name `{shown}{more}`: use 1-100 letters, digits, `_`, `-` or `.` (not leading)"
        ))
    }
}

/// Deterministic variant name from the swept values: `k=4`, or `k=4,iterations=5`; the
/// last segment of the key path unless two swept keys share it.
pub fn variant_name(swept: &[(String, Node)]) -> String {
    if swept.is_empty() {
        return "default".to_string();
    }
    let last = |p: &str| p.rsplit('.').next().unwrap_or(p).to_string();
    swept
        .iter()
        .map(|(p, v)| {
            let short = last(p);
            let clash = swept.iter().filter(|(q, _)| last(q) == short).count() > 1;
            let name = if clash { p.clone() } else { short };
            format!("{name}={}", sanitize(&v.display()))
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
