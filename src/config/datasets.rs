//! `datasets.toml`: named datasets, validated into `DatasetSpec`s with absolute paths.
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;

use super::{did_you_mean, ConfigError, Node, SourceFile, Value};
use crate::data::{DatasetFormat, DatasetSpec, SubsetSplit};

const FORMATS: &[&str] = &["synthetic", "image-folder", "cifar10-binary", "subset"];

/// All datasets of one `datasets.toml`.
#[derive(Clone, Debug, Default)]
pub struct Datasets {
    pub file: Option<PathBuf>,
    pub specs: IndexMap<String, DatasetSpec>,
}

impl Datasets {
    pub fn get(&self, name: &str) -> Option<&DatasetSpec> {
        self.specs.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.specs.keys().map(String::as_str)
    }
}

#[derive(Deserialize)]
struct SyntheticRaw {
    #[serde(default = "default_image_size")]
    image_size: usize,
    #[serde(default)]
    seed: u64,
    splits: IndexMap<String, usize>,
}

fn default_image_size() -> usize {
    32
}

#[derive(Deserialize)]
struct SubsetRaw {
    of: String,
    #[serde(default)]
    seed: u64,
    splits: IndexMap<String, SubsetSplit>,
}

#[derive(Deserialize)]
struct RootRaw {
    root: PathBuf,
}

/// Reads and validates a datasets file.
pub fn load_datasets(path: &Path) -> Result<Datasets, ConfigError> {
    load_datasets_based(path, None)
}

/// Reads a datasets file whose relative roots are relative to `base` (default: the
/// file's folder); for a copy of the file kept elsewhere.
pub fn load_datasets_based(path: &Path, base: Option<&Path>) -> Result<Datasets, ConfigError> {
    let file = SourceFile::read(path)?;
    let root = Node::parse(file)?;
    let table = root.as_table().ok_or_else(|| root.error("", "expected a table"))?;
    // Relative roots are relative to `base`, else to this file; "" (a file in the current
    // folder) is ".".
    let base = match (base, path.parent()) {
        (Some(b), _) => b.to_path_buf(),
        (None, Some(p)) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::env::current_dir().unwrap_or_default(),
    };
    let base = std::path::absolute(&base).unwrap_or(base);
    let mut specs = IndexMap::new();
    // Subsets name another dataset of the file, declared before or after them: resolved
    // once every other dataset is known.
    let mut subsets = Vec::new();
    // Every name in the file's order, for the final map.
    let mut order: Vec<String> = Vec::new();
    for (name, (kspan, node)) in table {
        crate::config::experiment::check_name(name).map_err(|m| node.error_at(kspan.start, name, m, None))?;
        let Value::Table(t) = &node.value else {
            return Err(node.error(name, format!("expected a table describing a dataset, found {}", node.type_name())));
        };
        let Some((_, fnode)) = t.get("format") else {
            return Err(node.error_at(
                kspan.start,
                name,
                "missing required key `format`",
                Some(format!("one of {}", FORMATS.join(", "))),
            ));
        };
        let fkey = format!("{name}.format");
        let format = fnode
            .as_str()
            .ok_or_else(|| fnode.error(&fkey, format!("expected a string, found {}", fnode.type_name())))?;
        let mut rest = node.clone();
        if let Value::Table(t) = &mut rest.value {
            t.shift_remove("format");
        }
        let format = match format {
            "synthetic" => {
                let raw: SyntheticRaw = rest.decode(name)?;
                if !(8..=512).contains(&raw.image_size) {
                    let n = rest.lookup("image_size").unwrap_or(&rest);
                    return Err(n.error(
                        &format!("{name}.image_size"),
                        format!("expected 8..=512 pixels, found {}", raw.image_size),
                    ));
                }
                if raw.splits.is_empty() {
                    let n = rest.lookup("splits").unwrap_or(&rest);
                    return Err(n.error(&format!("{name}.splits"), "at least one split is needed"));
                }
                for (split, count) in &raw.splits {
                    let n = rest.lookup(&format!("splits.{split}")).unwrap_or(&rest);
                    let key = format!("{name}.splits.{split}");
                    crate::config::experiment::check_name(split).map_err(|m| n.error(&key, m))?;
                    if *count == 0 || *count > 10_000_000 {
                        return Err(n.error(&key, format!("expected 1..=10000000 images, found {count}")));
                    }
                }
                DatasetFormat::Synthetic {
                    image_size: raw.image_size,
                    seed: raw.seed,
                    splits: raw.splits,
                }
            }
            "subset" => {
                let raw: SubsetRaw = rest.decode(name)?;
                if raw.splits.is_empty() {
                    let n = rest.lookup("splits").unwrap_or(&rest);
                    return Err(n.error(&format!("{name}.splits"), "at least one split is needed"));
                }
                for (split, part) in &raw.splits {
                    let n = rest.lookup(&format!("splits.{split}")).unwrap_or(&rest);
                    let key = format!("{name}.splits.{split}");
                    crate::config::experiment::check_name(split).map_err(|m| n.error(&key, m))?;
                    if part.take == 0 {
                        let n = rest.lookup(&format!("splits.{split}.take")).unwrap_or(n);
                        return Err(n.error(&format!("{key}.take"), "expected at least one image, found 0"));
                    }
                }
                subsets.push((name.clone(), rest.clone(), raw));
                order.push(name.clone());
                continue;
            }
            "image-folder" | "cifar10-binary" => {
                let raw: RootRaw = rest.decode(name)?;
                let root = if raw.root.is_absolute() { raw.root } else { base.join(raw.root) };
                if format == "image-folder" {
                    DatasetFormat::ImageFolder { root }
                } else {
                    DatasetFormat::Cifar10Binary { root }
                }
            }
            other => {
                return Err(fnode.error_hint(
                    &fkey,
                    format!("unknown dataset format `{other}`"),
                    did_you_mean(other, FORMATS.iter().copied()).or_else(|| Some(format!("one of {}", FORMATS.join(", ")))),
                ));
            }
        };
        order.push(name.clone());
        specs.insert(
            name.clone(),
            DatasetSpec {
                name: name.clone(),
                format,
            },
        );
    }
    let subset_names: std::collections::HashSet<String> = subsets.iter().map(|(name, _, _)| name.clone()).collect();
    let mut resolved: IndexMap<String, DatasetSpec> = IndexMap::new();
    for (name, node, raw) in subsets {
        let of_node = node.lookup("of").unwrap_or(&node);
        let of_key = format!("{name}.of");
        if raw.of == name {
            return Err(of_node.error(&of_key, "a subset cannot be drawn from itself"));
        }
        if subset_names.contains(&raw.of) {
            return Err(of_node.error(
                &of_key,
                format!("`{}` is a subset itself: draw from the dataset it is drawn from", raw.of),
            ));
        }
        let parent = match specs.get(&raw.of) {
            Some(spec) => spec.clone(),
            None => {
                let hint = did_you_mean(&raw.of, order.iter().map(String::as_str));
                return Err(of_node.error_hint(&of_key, format!("no dataset named `{}` in this file", raw.of), hint));
            }
        };
        if let Some(parent_splits) = parent.format.declared_splits() {
            for (split, part) in &raw.splits {
                if !parent_splits.contains(&part.split.as_str()) {
                    let key = format!("{name}.splits.{split}.split");
                    let n = node.lookup(&format!("splits.{split}.split")).unwrap_or(&node);
                    let hint = did_you_mean(&part.split, parent_splits.iter().copied())
                        .or_else(|| Some(format!("splits of `{}`: {}", raw.of, parent_splits.join(", "))));
                    return Err(n.error_hint(&key, format!("dataset `{}` has no split `{}`", raw.of, part.split), hint));
                }
            }
        }
        let format = DatasetFormat::Subset {
            of: Box::new(parent),
            seed: raw.seed,
            splits: raw.splits,
        };
        resolved.insert(name.clone(), DatasetSpec { name, format });
    }
    let specs = order
        .into_iter()
        .filter_map(|name| {
            let spec = specs.get(&name).cloned().or_else(|| resolved.shift_remove(&name))?;
            Some((name, spec))
        })
        .collect();
    Ok(Datasets {
        file: Some(path.to_path_buf()),
        specs,
    })
}
