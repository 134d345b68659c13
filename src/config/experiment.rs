//! An experiment file read into spanned form, with `--set` overrides applied and the
//! sweep expanded into one raw experiment per variant.
use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;

use super::{did_you_mean, read_decisions, read_tables, ConfigError, Node, Override, RawDecision, RawTable, SourceFile, Value};

/// Most variants one experiment may expand into.
pub const MAX_VARIANTS: usize = 10_000;

const TOP_LEVEL_KEYS: &[&str] = &[
    "name",
    "description",
    "seed",
    "seeds",
    "device",
    "stages",
    "sweep",
    "slurm",
    "tables",
    "decisions",
];

/// One variant of an experiment: overrides and sweep values applied, not yet validated.
#[derive(Clone, Debug)]
pub struct RawExperiment {
    pub file: Arc<SourceFile>,
    pub name: String,
    pub name_node: Node,
    pub seed: u64,
    /// The seed of this variant when the file gives `seeds = [...]` (the seed axis), so
    /// that tables average over it; `None` with a single `seed`.
    pub seed_axis: Option<u64>,
    pub device: Node,
    /// Variant name ("default" without a sweep; `seed=N` appended on the seed axis) and
    /// the swept values `(key path, value)`, seed excluded.
    pub variant: String,
    /// The variant name without the seed: the variants of one group differ only in `seed`.
    pub group: String,
    pub swept: Vec<(String, Node)>,
    /// `[[tables]]`, as written (validated at planning).
    pub tables: Vec<RawTable>,
    /// `[[decisions]]`, as written (validated at planning).
    pub decisions: Vec<RawDecision>,
    pub stages: IndexMap<String, RawStage>,
    /// The `[slurm]` section, if any (executor defaults; not part of any key).
    pub slurm: Option<Node>,
    /// The experiment exactly as the file writes it (no `--set`; sweep values, the first of
    /// each axis, only for keys the file lacks), so that values a `--set` or a sweep replaces
    /// are validated too. `Some` on every variant when at least one value the file has was
    /// replaced, `None` otherwise (then the variants themselves hold every written value).
    pub as_written: Option<Arc<RawExperiment>>,
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
    /// `label`, the stage's row name in tables, taken out of `table`: not part of the key.
    pub label: Option<String>,
    /// `seed`, a fixed seed for this stage instead of the experiment's `seed` or the seed
    /// axis (a pretext model trained once and shared by every seed of the stages after
    /// it), with its node for errors; taken out of `table`.
    pub seed: Option<(u64, Node)>,
    /// `device`, where this stage computes instead of the experiment's `device` (HOG on the
    /// CPU beside a GPU experiment, say); taken out of `table`, checked by the planner.
    pub device: Option<Node>,
}

/// Reads an experiment file, applies `--set` overrides and expands its sweep.
pub fn load_experiment(path: &Path, overrides: &[Override]) -> Result<Vec<RawExperiment>, ConfigError> {
    expand_experiment(SourceFile::read(path)?, overrides)
}

/// As [`load_experiment`], for a file already read (the fuzz target gives its text).
pub fn expand_experiment(file: Arc<SourceFile>, overrides: &[Override]) -> Result<Vec<RawExperiment>, ConfigError> {
    let path = file.path.clone();
    let path = path.as_path();
    let written = Node::parse(file.clone())?;
    check_top_level(&written)?;
    let mut root = written.clone();
    for o in overrides {
        o.apply(&mut root)?;
    }
    let axes = read_sweep(&root)?;
    // A key given with --set is fixed: it takes that key out of the sweep.
    for axis in &axes {
        if let Some(o) = overrides.iter().find(|o| o.path == axis.path) {
            tracing::warn!(
                "--set `{}` replaces the sweep over `{}` ({} values): every variant uses the value set",
                o.arg,
                axis.path,
                axis.items.len()
            );
        }
    }
    let as_written = as_written(&file, &written, &axes, overrides)?;
    let sweep: Vec<_> = axes.iter().filter(|axis| !overrides.iter().any(|o| o.path == axis.path)).collect();
    // Refuse a product too large to plan before building it.
    let mut count: usize = 1;
    for (i, axis) in sweep.iter().enumerate() {
        // A zipped group is one dimension: count it at its first key.
        if axis.zip.is_some() && sweep[..i].iter().any(|a| a.zip == axis.zip) {
            continue;
        }
        count = count.saturating_mul(axis.items.len());
        if count > MAX_VARIANTS {
            return Err(axis.values.error(
                &axis.label,
                format!("the sweep has more than {MAX_VARIANTS} variants; split it into several experiments"),
            ));
        }
    }
    let seeds = read_seeds(&root, &axes)?;
    count = count.saturating_mul(seeds.as_ref().map_or(1, |s| s.len()));
    if count > MAX_VARIANTS {
        return Err(ConfigError::File {
            file: path.to_path_buf(),
            message: format!("the sweep and seeds give more than {MAX_VARIANTS} variants; split it into several experiments"),
        });
    }
    let mut variants = Vec::new();
    for combination in cartesian(&sweep) {
        let mut tree = root.clone();
        let mut swept = Vec::new();
        for (axis, value) in combination {
            set_path(&mut tree, &axis.path, value.clone(), axis.values)?;
            swept.push((axis.path.clone(), value.clone()));
        }
        match &seeds {
            None => {
                let mut variant = read_variant(&file, &tree, swept)?;
                variant.as_written = as_written.clone();
                variants.push(variant);
            }
            Some(seeds) => {
                for seed in seeds {
                    let mut tree = tree.clone();
                    set_path(&mut tree, "seed", seed.clone(), seed)?;
                    let mut variant = read_variant(&file, &tree, swept.clone())?;
                    variant.as_written = as_written.clone();
                    variant.seed_axis = Some(variant.seed);
                    variant.variant = if variant.group == "default" {
                        format!("seed={}", variant.seed)
                    } else {
                        format!("{},seed={}", variant.group, variant.seed)
                    };
                    variants.push(variant);
                }
            }
        }
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

/// The experiment as its file writes it, when a `--set` or a sweep replaces a value the
/// file has (so that the planner validates that value too); sweep values (the first of
/// each axis) fill in only keys the file lacks. Its own top-level values are checked here.
fn as_written(
    file: &Arc<SourceFile>,
    written: &Node,
    axes: &[SweepAxis<'_>],
    overrides: &[Override],
) -> Result<Option<Arc<RawExperiment>>, ConfigError> {
    let replaced = overrides
        .iter()
        .map(|o| o.path.as_str())
        .chain(axes.iter().map(|a| a.path.as_str()));
    let replaced: Vec<&str> = replaced.filter(|p| written.lookup(p).is_some()).collect();
    if replaced.is_empty() {
        return Ok(None);
    }
    let mut tree = written.clone();
    for axis in axes {
        if written.lookup(&axis.path).is_none() {
            if let Some(first) = axis.items.first() {
                set_path(&mut tree, &axis.path, first.clone(), axis.values)?;
            }
        }
    }
    Ok(Some(Arc::new(read_variant(file, &tree, Vec::new())?)))
}

/// A seed as written (`seed`, `seeds = [...]`, `[stages.X] seed`): a non-negative integer.
/// The one place that checks it.
fn seed_value(n: &Node, key: &str) -> Result<u64, ConfigError> {
    match n.value {
        Value::Integer(i) if i >= 0 => Ok(i as u64),
        Value::Integer(i) => Err(n.error(key, format!("expected a non-negative integer, found {i}"))),
        _ => Err(n.error(key, format!("expected a non-negative integer, found {}", n.type_name()))),
    }
}

/// `seeds = [0, 1, 2]`: the seed axis, each value a non-negative integer given once; `None`
/// without it. Refused beside `seed` (or a sweep over `seed`).
fn read_seeds(root: &Node, axes: &[SweepAxis<'_>]) -> Result<Option<Vec<Node>>, ConfigError> {
    let Some((kspan, seeds)) = root.as_table().and_then(|t| t.get("seeds")) else {
        return Ok(None);
    };
    if let Some((_, seed)) = root.as_table().and_then(|t| t.get("seed")) {
        let (line, _) = seed.file.line_col(seed.span.start);
        return Err(seeds.error_at(
            kspan.start,
            "seeds",
            format!("give either `seed` (line {line}) or `seeds`, not both"),
            None,
        ));
    }
    if let Some(axis) = axes.iter().find(|a| a.path == "seed") {
        return Err(axis
            .values
            .error(&axis.label, "`seed` cannot be swept beside `seeds`: list every seed in `seeds`"));
    }
    let Value::Array(items) = &seeds.value else {
        return Err(seeds.error(
            "seeds",
            format!("expected an array of non-negative integers, found {}", seeds.type_name()),
        ));
    };
    if items.is_empty() {
        return Err(seeds.error("seeds", "expected at least one seed"));
    }
    let mut seen: Vec<u64> = Vec::new();
    for item in items {
        let i = seed_value(item, "seeds")?;
        if seen.contains(&i) {
            return Err(item.error("seeds", format!("seed {i} is listed twice")));
        }
        seen.push(i);
    }
    Ok(Some(items.clone()))
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

/// One key of `[sweep]`: its dotted path, how to name it in messages, the array node and
/// its values; `zip` numbers the group of `[sweep.zip]` keys it varies together with.
struct SweepAxis<'a> {
    path: String,
    label: String,
    values: &'a Node,
    items: &'a [Node],
    zip: Option<usize>,
}

/// The axes of `[sweep]`, in the quoted form (`"stages.clusters.k" = [4, 16]`), the natural
/// one (`stages.clusters.k = [4, 16]`, which TOML reads as nested tables) or a mix. Keys
/// of `[sweep.zip]` (or of each `[[sweep.zip]]` group) vary together: their arrays have
/// one length and the i-th values go into one variant, crossed with the other axes.
fn read_sweep(root: &Node) -> Result<Vec<SweepAxis<'_>>, ConfigError> {
    let Some((_, sweep)) = root.as_table().and_then(|t| t.get("sweep")) else {
        return Ok(Vec::new());
    };
    if sweep.as_table().is_none() {
        return Err(sweep.error(
            "sweep",
            format!("expected a table of key path = [values], found {}", sweep.type_name()),
        ));
    }
    let mut axes = Vec::new();
    collect_axes(root, sweep, "", None, &mut axes)?;
    Ok(axes)
}

fn values(n: usize) -> String {
    format!("{n} value{}", if n == 1 { "" } else { "s" })
}

/// `[sweep.zip]` (one group) or `[[sweep.zip]]` (several): each group's keys as axes that
/// share a zip number, checked to have arrays of one length.
fn collect_zip<'a>(root: &Node, zip: &'a Node, axes: &mut Vec<SweepAxis<'a>>) -> Result<(), ConfigError> {
    let groups: Vec<(&'a Node, String)> = match &zip.value {
        Value::Table(_) => vec![(zip, "sweep.zip".to_string())],
        Value::Array(items) if !items.is_empty() && items.iter().all(|t| t.as_table().is_some()) => {
            items.iter().enumerate().map(|(i, t)| (t, format!("sweep.zip[{i}]"))).collect()
        }
        _ => {
            return Err(zip.error(
                "sweep.zip",
                format!(
                    "expected a table of key path = [values] varying together ([sweep.zip] or [[sweep.zip]]), found {}",
                    zip.type_name()
                ),
            ))
        }
    };
    for (table, label) in groups {
        let group = axes.iter().filter_map(|a| a.zip).max().map_or(0, |g| g + 1);
        let first = axes.len();
        collect_axes(root, table, "", Some((group, &label)), axes)?;
        let members = &axes[first..];
        let Some(lead) = members.first() else {
            return Err(table.error(&label, "a zipped group needs at least two keys"));
        };
        if members.len() < 2 {
            return Err(lead.values.error(
                &lead.label,
                "a zipped group needs at least two keys (a single key belongs in [sweep])",
            ));
        }
        if let Some(other) = members.iter().find(|a| a.items.len() != lead.items.len()) {
            return Err(other.values.error(
                &other.label,
                format!(
                    "zipped keys vary together, so their arrays need one length: `{}` has {}, `{}` has {}",
                    other.path,
                    values(other.items.len()),
                    lead.path,
                    values(lead.items.len())
                ),
            ));
        }
    }
    Ok(())
}

/// Walks one table of `[sweep]` (`prefix` is its dotted path below `sweep`, or below the
/// zipped group `zip` names with its label), adding an axis for every array; nested
/// tables extend the path.
fn collect_axes<'a>(
    root: &Node,
    table: &'a Node,
    prefix: &str,
    zip: Option<(usize, &str)>,
    axes: &mut Vec<SweepAxis<'a>>,
) -> Result<(), ConfigError> {
    let Some(entries) = table.as_table() else {
        return Ok(());
    };
    let under = zip.map_or("sweep", |(_, label)| label);
    for (key, (kspan, values)) in entries {
        if prefix.is_empty() && zip.is_none() && key == "zip" {
            collect_zip(root, values, axes)?;
            continue;
        }
        let (path, label) = if prefix.is_empty() {
            (key.clone(), format!("{under}.\"{key}\""))
        } else {
            let path = format!("{prefix}.{key}");
            let label = format!("{under}.{path}");
            (path, label)
        };
        let items = match &values.value {
            Value::Array(items) => items,
            Value::Table(t) if !t.is_empty() => {
                collect_axes(root, values, &path, zip, axes)?;
                continue;
            }
            Value::Table(_) => {
                return Err(values.error(&label, "expected an array of values, found an empty table"));
            }
            _ => return Err(values.error(&label, format!("expected an array of values, found {}", values.type_name()))),
        };
        if items.is_empty() {
            return Err(values.error(&label, "a sweep needs at least one value"));
        }
        if path == "name" || path == "sweep" || path.starts_with("sweep.") {
            return Err(values.error_at(kspan.start, &label, format!("`{path}` cannot be swept"), None));
        }
        if axes.iter().any(|a| a.path == path) {
            return Err(values.error_at(kspan.start, &label, format!("`{path}` is swept twice"), None));
        }
        // The stage (or top-level key) swept must exist.
        check_sweep_target(root, &path, values, kspan.start, &label)?;
        axes.push(SweepAxis {
            path,
            label,
            values,
            items,
            zip: zip.map(|(group, _)| group),
        });
    }
    Ok(())
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

/// Every combination of the axes' values; the axes of one zipped group form one dimension
/// (their i-th values together), placed where the group's first key is.
fn cartesian<'a, 'b>(axes: &[&'b SweepAxis<'a>]) -> Vec<Vec<(&'b SweepAxis<'a>, &'a Node)>> {
    let mut dimensions: Vec<Vec<&'b SweepAxis<'a>>> = Vec::new();
    for axis in axes {
        let group = axis.zip.and_then(|z| dimensions.iter_mut().find(|d| d[0].zip == Some(z)));
        match group {
            Some(dimension) => dimension.push(axis),
            None => dimensions.push(vec![axis]),
        }
    }
    let mut out: Vec<Vec<(&'b SweepAxis<'a>, &'a Node)>> = vec![Vec::new()];
    for dimension in &dimensions {
        let mut next = Vec::new();
        for prefix in &out {
            for i in 0..dimension[0].items.len() {
                let mut c = prefix.clone();
                c.extend(dimension.iter().map(|axis| (*axis, &axis.items[i])));
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
        Some((_, n)) => seed_value(n, "seed")?,
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
        let mut label = None;
        let mut seed = None;
        let mut device = None;
        if let Value::Table(t) = &mut rest.value {
            t.shift_remove("kind");
            resources = t.shift_remove("resources").map(|(_, n)| n);
            label = t.shift_remove("label").map(|(_, n)| n);
            seed = t.shift_remove("seed").map(|(_, n)| n);
            device = t.shift_remove("device").map(|(_, n)| n);
        }
        let seed = match seed {
            None => None,
            Some(n) => Some((seed_value(&n, &format!("{key}.seed"))?, n)),
        };
        let label = match label {
            None => None,
            Some(n) => match n.as_str() {
                Some(s) if !s.trim().is_empty() => Some(s.to_string()),
                Some(_) => return Err(n.error(&format!("{key}.label"), "expected a non-empty label")),
                None => return Err(n.error(&format!("{key}.label"), format!("expected a string, found {}", n.type_name()))),
            },
        };
        stages.insert(
            sname.clone(),
            RawStage {
                name: sname.clone(),
                kind: kind.to_string(),
                kind_node: kind_node.clone(),
                table: rest,
                resources,
                label,
                seed,
                device,
            },
        );
    }
    let variant = variant_name(&swept);
    let tables = read_tables(root)?;
    let decisions = read_decisions(root)?;
    Ok(RawExperiment {
        file: file.clone(),
        name,
        name_node,
        seed,
        seed_axis: None,
        device,
        group: variant.clone(),
        variant,
        swept,
        tables,
        decisions,
        stages,
        slurm: table.get("slurm").map(|(_, n)| n.clone()),
        as_written: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "name = \"e\"\n\n[stages.clusters]\nkind = \"kmeans\"\nfeatures = \"feat\"\nk = \"sixteen\"\n";

    fn expand(text: &str, sets: &[&str]) -> Result<Vec<RawExperiment>, ConfigError> {
        let overrides: Vec<Override> = sets.iter().map(|s| s.parse().expect("valid --set")).collect();
        expand_experiment(SourceFile::inline("e.toml", text.to_string()), &overrides)
    }

    fn k_of(v: &RawExperiment) -> String {
        v.stages["clusters"].table.lookup("k").expect("k").display()
    }

    #[test]
    fn as_written_keeps_the_files_value_of_a_swept_key_with_its_line() {
        let text = format!("{BASE}\n[sweep]\n\"stages.clusters.k\" = [4, 16]\n");
        let variants = expand(&text, &[]).expect("expands");
        assert_eq!(variants.len(), 2);
        assert_eq!(variants.iter().map(k_of).collect::<Vec<_>>(), ["4", "16"]);
        for v in &variants {
            let written = v.as_written.as_ref().expect("a swept key replaced a written value");
            let k = written.stages["clusters"].table.lookup("k").expect("k as written");
            assert_eq!(k.as_str(), Some("sixteen"));
            assert_eq!(k.file.line_col(k.span.start), (6, 5));
            assert_eq!(written.variant, "default");
            assert!(written.swept.is_empty() && written.as_written.is_none());
        }
        assert!(Arc::ptr_eq(
            variants[0].as_written.as_ref().unwrap(),
            variants[1].as_written.as_ref().unwrap()
        ));
    }

    #[test]
    fn as_written_fills_keys_the_file_lacks_with_the_first_swept_value() {
        let text = format!("{BASE}iterations = 5\n\n[sweep]\n\"stages.clusters.k\" = [4, 16]\n\"stages.clusters.restarts\" = [2, 3]\n");
        let variants = expand(&text, &["stages.clusters.iterations=7"]).expect("expands");
        let written = variants[0].as_written.as_ref().expect("replaced values");
        let t = &written.stages["clusters"].table;
        assert_eq!(t.lookup("iterations").unwrap().display(), "5", "no --set in the file's version");
        assert_eq!(t.lookup("restarts").unwrap().display(), "2");
        assert_eq!(t.lookup("k").unwrap().display(), "sixteen");
    }

    #[test]
    fn as_written_is_none_when_nothing_written_is_replaced() {
        let text = "name = \"e\"\n[stages.clusters]\nkind = \"kmeans\"\nk = 4\n[sweep]\n\"stages.clusters.iterations\" = [1, 2]\n";
        let variants = expand(text, &["stages.clusters.restarts=3"]).expect("expands");
        assert!(variants.iter().all(|v| v.as_written.is_none()));
        let variants = expand(text, &["stages.clusters.k=3"]).expect("expands");
        assert!(variants.iter().all(|v| v.as_written.is_some()));
    }

    #[test]
    fn as_written_reports_a_bad_top_level_value_a_set_replaces() {
        let text = format!("seed = -1\n{BASE}");
        let err = expand(&text, &["seed=3"]).unwrap_err().to_string();
        assert_eq!(err, "e.toml:1:8: `seed`: expected a non-negative integer, found -1");
    }

    #[test]
    fn sweep_accepts_nested_tables_and_mixes_them_with_quoted_keys() {
        let text = format!("{BASE}\n[sweep]\nstages.clusters.k = [4, 16]\n\"stages.clusters.iterations\" = [1, 2]\nseed = [7]\n");
        let variants = expand(&text, &[]).expect("expands");
        let names: Vec<&str> = variants.iter().map(|v| v.variant.as_str()).collect();
        assert_eq!(
            names,
            [
                "k=4,iterations=1,seed=7",
                "k=4,iterations=2,seed=7",
                "k=16,iterations=1,seed=7",
                "k=16,iterations=2,seed=7"
            ]
        );
        assert_eq!(variants[2].swept[0].0, "stages.clusters.k");
        assert_eq!(k_of(&variants[2]), "16");
        assert_eq!(variants[0].seed, 7);
    }

    #[test]
    fn nested_sweep_errors_name_file_line_and_path() {
        let text = format!("{BASE}\n[sweep.stages.clusters]\nk = 4\n");
        let err = expand(&text, &[]).unwrap_err().to_string();
        assert_eq!(
            err,
            "e.toml:9:5: `sweep.stages.clusters.k`: expected an array of values, found an integer"
        );
        let text = format!("{BASE}\n[sweep]\nstages.clustrs.k = [4]\n");
        let err = expand(&text, &[]).unwrap_err().to_string();
        assert!(
            err.starts_with("e.toml:9:16: `sweep.stages.clustrs.k`: no stage named `clustrs`"),
            "{err}"
        );
        let text = format!("{BASE}\n[sweep]\nstages.clusters.k = [4]\n\"stages.clusters.k\" = [5]\n");
        let err = expand(&text, &[]).unwrap_err().to_string();
        assert_eq!(
            err,
            "e.toml:10:1: `sweep.\"stages.clusters.k\"`: `stages.clusters.k` is swept twice"
        );
    }

    #[test]
    fn zipped_keys_vary_together_crossed_with_the_other_axes() {
        let base = format!("{BASE}iterations = 5\n\n[stages.other]\nkind = \"kmeans\"\nfeatures = \"feat\"\nk = 2\n");
        let text =
            format!("{base}\n[sweep]\nseed = [1, 2]\n\n[sweep.zip]\n\"stages.clusters.k\" = [4, 16, 64]\nstages.other.k = [3, 5, 7]\n");
        let variants = expand(&text, &[]).expect("expands");
        let names: Vec<&str> = variants.iter().map(|v| v.variant.as_str()).collect();
        assert_eq!(
            names,
            [
                "seed=1,stages.clusters.k=4,stages.other.k=3",
                "seed=1,stages.clusters.k=16,stages.other.k=5",
                "seed=1,stages.clusters.k=64,stages.other.k=7",
                "seed=2,stages.clusters.k=4,stages.other.k=3",
                "seed=2,stages.clusters.k=16,stages.other.k=5",
                "seed=2,stages.clusters.k=64,stages.other.k=7",
            ]
        );
        let other_k = |v: &RawExperiment| v.stages["other"].table.lookup("k").unwrap().display();
        assert_eq!((k_of(&variants[4]), other_k(&variants[4])), ("16".to_string(), "5".to_string()));
        // Two groups are two dimensions.
        let text = format!(
            "{base}\n[[sweep.zip]]\n\"stages.clusters.k\" = [4, 16]\n\"stages.other.k\" = [3, 5]\n\n[[sweep.zip]]\n\"stages.clusters.iterations\" = [1, 2, 3]\n\"stages.other.iterations\" = [4, 5, 6]\n"
        );
        assert_eq!(expand(&text, &[]).expect("expands").len(), 6);
        // A --set on one zipped key fixes that key; its partners still vary.
        let text = format!("{base}\n[sweep.zip]\n\"stages.clusters.k\" = [4, 16]\n\"stages.other.k\" = [3, 5]\n");
        let variants = expand(&text, &["stages.other.k=9"]).expect("expands");
        assert_eq!(variants.iter().map(|v| v.variant.as_str()).collect::<Vec<_>>(), ["k=4", "k=16"]);
        assert!(variants.iter().all(|v| other_k(v) == "9"));
    }

    #[test]
    fn zipped_groups_need_two_keys_of_one_length() {
        let base = format!("{BASE}\n[stages.other]\nkind = \"kmeans\"\nk = 2\n");
        let err = |tail: &str| expand(&format!("{base}{tail}"), &[]).unwrap_err().to_string();
        assert_eq!(
            err("\n[sweep.zip]\n\"stages.clusters.k\" = [4, 16]\n\"stages.other.k\" = [3]\n"),
            "e.toml:14:20: `sweep.zip.\"stages.other.k\"`: zipped keys vary together, so their arrays need one length: `stages.other.k` has 1 value, `stages.clusters.k` has 2 values"
        );
        assert!(err("\n[sweep.zip]\n\"stages.clusters.k\" = [4, 16]\n").contains("a zipped group needs at least two keys"));
        assert!(err("\n[sweep]\nzip = 3\n").contains("`sweep.zip`: expected a table of key path = [values] varying together"));
        assert!(err("\n[sweep.zip]\n\"stages.clustrs.k\" = [4]\n\"stages.other.k\" = [3]\n").contains("no stage named `clustrs`"));
        assert!(
            err("\n[sweep]\n\"stages.other.k\" = [1]\n[sweep.zip]\n\"stages.clusters.k\" = [4]\n\"stages.other.k\" = [3]\n")
                .contains("`stages.other.k` is swept twice")
        );
    }

    #[test]
    fn a_set_on_a_swept_key_takes_it_out_of_the_sweep() {
        let text = format!("{BASE}\n[sweep]\nstages.clusters.k = [4, 16]\n");
        let variants = expand(&text, &["stages.clusters.k=8"]).expect("expands");
        assert_eq!(variants.len(), 1);
        assert_eq!(variants[0].variant, "default");
        assert_eq!(k_of(&variants[0]), "8");
    }

    #[test]
    fn errors_in_a_set_value_are_blamed_on_the_set() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Kmeans {
            features: String,
            k: usize,
        }
        let text = BASE.replace("\"sixteen\"", "4");
        let decode = |sets: &[&str]| {
            let v = expand(&text, sets).expect("expands");
            v[0].stages["clusters"]
                .table
                .decode::<Kmeans>("stages.clusters")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            decode(&["stages.clusters.kk=3"]),
            "invalid --set `stages.clusters.kk=3`: unknown key `stages.clusters.kk` (did you mean `k`?)"
        );
        assert_eq!(
            decode(&["stages.clusters.k=lots"]),
            "invalid --set `stages.clusters.k=lots`: `stages.clusters.k`: invalid type: string \"lots\", expected a whole number"
        );
    }

    #[test]
    fn seeds_expand_inside_each_sweep_variant_with_the_seed_in_the_name_only() {
        let text = format!("seeds = [0, 1, 2]\n{BASE}\n[sweep]\n\"stages.clusters.k\" = [4, 16]\n");
        let variants = expand(&text, &[]).expect("expands");
        let names: Vec<(&str, &str, Option<u64>)> = variants
            .iter()
            .map(|v| (v.variant.as_str(), v.group.as_str(), v.seed_axis))
            .collect();
        assert_eq!(
            names,
            [
                ("k=4,seed=0", "k=4", Some(0)),
                ("k=4,seed=1", "k=4", Some(1)),
                ("k=4,seed=2", "k=4", Some(2)),
                ("k=16,seed=0", "k=16", Some(0)),
                ("k=16,seed=1", "k=16", Some(1)),
                ("k=16,seed=2", "k=16", Some(2)),
            ]
        );
        assert_eq!(variants.iter().map(|v| v.seed).collect::<Vec<_>>(), [0, 1, 2, 0, 1, 2]);
        assert!(variants.iter().all(|v| v.swept.len() == 1), "the seed is not a swept key");
        let single = expand(&format!("seeds = [5]\n{BASE}"), &[]).expect("expands");
        assert_eq!(
            (single[0].variant.as_str(), single[0].group.as_str(), single[0].seed),
            ("seed=5", "default", 5)
        );
        let plain = expand(&format!("seed = 5\n{BASE}"), &[]).expect("expands");
        assert_eq!((plain[0].variant.as_str(), plain[0].seed_axis), ("default", None));
    }

    #[test]
    fn bad_seeds_are_refused_at_their_line() {
        let err = |top: &str| expand(&format!("{top}\n{BASE}"), &[]).unwrap_err().to_string();
        assert_eq!(
            err("seed = 1\nseeds = [0, 1]"),
            "e.toml:2:1: `seeds`: give either `seed` (line 1) or `seeds`, not both"
        );
        assert_eq!(err("seeds = []"), "e.toml:1:9: `seeds`: expected at least one seed");
        assert_eq!(
            err("seeds = [0, -1]"),
            "e.toml:1:13: `seeds`: expected a non-negative integer, found -1"
        );
        assert_eq!(err("seeds = [3, 1, 3]"), "e.toml:1:16: `seeds`: seed 3 is listed twice");
        assert_eq!(
            err("seeds = 3"),
            "e.toml:1:9: `seeds`: expected an array of non-negative integers, found an integer"
        );
        let swept = format!("seeds = [0, 1]\n{BASE}\n[sweep]\nseed = [1, 2]\n");
        let e = expand(&swept, &[]).unwrap_err().to_string();
        assert!(e.contains("`seed` cannot be swept beside `seeds`"), "{e}");
    }

    #[test]
    fn a_label_is_taken_out_of_the_stage_table() {
        let text = BASE.replace("kind = \"kmeans\"", "kind = \"kmeans\"\nlabel = \"Jigsaw++ VGG-16 → AlexNet\"");
        let v = expand(&text, &[]).expect("expands");
        let st = &v[0].stages["clusters"];
        assert_eq!(st.label.as_deref(), Some("Jigsaw++ VGG-16 → AlexNet"));
        assert!(
            st.table.lookup("label").is_none(),
            "label must not reach the stage kind (nor its key)"
        );
        let bad = BASE.replace("kind = \"kmeans\"", "kind = \"kmeans\"\nlabel = 3");
        assert_eq!(
            expand(&bad, &[]).unwrap_err().to_string(),
            "e.toml:5:9: `stages.clusters.label`: expected a string, found an integer"
        );
    }
}
