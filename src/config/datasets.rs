//! `datasets.toml`: named datasets, validated into `DatasetSpec`s with absolute paths.
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;

use super::{did_you_mean, ConfigError, Node, SourceFile, Value};
use crate::data::{DatasetFormat, DatasetSpec};

const FORMATS: &[&str] = &["synthetic", "image-folder", "cifar10-binary"];

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
        specs.insert(
            name.clone(),
            DatasetSpec {
                name: name.clone(),
                format,
            },
        );
    }
    Ok(Datasets {
        file: Some(path.to_path_buf()),
        specs,
    })
}
