//! A split of a dataset as an indexable collection of labeled images.
use std::path::PathBuf;

use super::cifar_binary::{self, Cifar10Binary};
use super::image_folder::{self, ImageFolder};
use super::subset::{subset_indices, Subset};
use super::synthetic::Synthetic;
use super::{DatasetFormat, DatasetSpec, Image};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("dataset `{dataset}` has no split `{split}` (available: {available})")]
    UnknownSplit { dataset: String, split: String, available: String },
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: cannot decode image: {message}")]
    Decode { path: PathBuf, message: String },
    #[error("dataset `{dataset}`: {message}")]
    Invalid { dataset: String, message: String },
    #[error("{name}: {message}")]
    Setting { name: String, message: String },
}

/// An indexable split: image `i` and its label. Implementations are cheap to share
/// across threads; `load` may be called concurrently.
pub trait Source: Send + Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Class names, index = label.
    fn classes(&self) -> &[String];
    /// The true label of image `i`, if the split is labeled.
    fn label(&self, i: usize) -> Option<usize>;
    /// Decodes image `i` as RGB (at its native size).
    fn load(&self, i: usize) -> Result<Image, DataError>;
    /// A human-readable identity for image `i` (its path, or `synthetic:<split>:<i>`).
    fn describe(&self, i: usize) -> String;
}

/// Opens one split of a dataset: lists (image folder) or reads (CIFAR-10 binary) its
/// files; images themselves are decoded by [`Source::load`].
pub fn open_split(spec: &DatasetSpec, split: &str) -> Result<Box<dyn Source>, DataError> {
    Ok(match &spec.format {
        DatasetFormat::Synthetic { image_size, seed, splits } => {
            let len = synthetic_split_len(&spec.name, splits, split)?;
            Box::new(Synthetic::new(&spec.name, split, *image_size, *seed, len)?)
        }
        DatasetFormat::ImageFolder { root } => Box::new(ImageFolder::open(&spec.name, root, split)?),
        DatasetFormat::Cifar10Binary { root } => Box::new(Cifar10Binary::open(&spec.name, root, split)?),
        DatasetFormat::Subset { of, seed, splits } => {
            let part = subset_split(&spec.name, splits, split)?;
            let parent = open_split(of, &part.split)?;
            let indices = subset_indices(&spec.name, split, parent.len(), *seed, part)?;
            Box::new(Subset::new(parent, indices))
        }
    })
}

/// The declaration of one split of a subset dataset, or `UnknownSplit` naming the declared ones.
pub(crate) fn subset_split<'a>(
    dataset: &str,
    splits: &'a indexmap::IndexMap<String, super::SubsetSplit>,
    split: &str,
) -> Result<&'a super::SubsetSplit, DataError> {
    splits.get(split).ok_or_else(|| DataError::UnknownSplit {
        dataset: dataset.to_string(),
        split: split.to_string(),
        available: splits.keys().cloned().collect::<Vec<_>>().join(", "),
    })
}

/// The split names of a dataset: the declared ones (synthetic, in declaration order),
/// the sorted non-hidden folders under the root (image folder), or those of `train` and
/// `test` with at least one batch file present (CIFAR-10 binary; a split with only some
/// of its files is listed, so that opening it reports the missing ones).
pub fn splits_of(spec: &DatasetSpec) -> Result<Vec<String>, DataError> {
    match &spec.format {
        DatasetFormat::Synthetic { splits, .. } => Ok(splits.keys().cloned().collect()),
        DatasetFormat::Subset { splits, .. } => Ok(splits.keys().cloned().collect()),
        DatasetFormat::ImageFolder { root } => image_folder::split_names(root),
        DatasetFormat::Cifar10Binary { root } => {
            let meta = std::fs::metadata(root).map_err(|e| DataError::Io {
                path: root.clone(),
                message: e.to_string(),
            })?;
            if !meta.is_dir() {
                return Err(DataError::Io {
                    path: root.clone(),
                    message: "not a directory".to_string(),
                });
            }
            let present: Vec<String> = cifar_binary::split_names()
                .filter(|split| {
                    cifar_binary::split_files(&spec.name, split)
                        .map(|files| files.iter().any(|f| root.join(f).exists()))
                        .unwrap_or(false)
                })
                .map(|s| s.to_string())
                .collect();
            if present.is_empty() {
                return Err(DataError::Io {
                    path: root.clone(),
                    message: "no CIFAR-10 batch files (data_batch_1.bin ... data_batch_5.bin, \
                              test_batch.bin) here"
                        .to_string(),
                });
            }
            Ok(present)
        }
    }
}

/// The size of a synthetic split, or `UnknownSplit` naming the declared ones.
pub(crate) fn synthetic_split_len(dataset: &str, splits: &indexmap::IndexMap<String, usize>, split: &str) -> Result<usize, DataError> {
    splits.get(split).copied().ok_or_else(|| DataError::UnknownSplit {
        dataset: dataset.to_string(),
        split: split.to_string(),
        available: if splits.is_empty() {
            "none".to_string()
        } else {
            splits.keys().cloned().collect::<Vec<_>>().join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use indexmap::IndexMap;

    use super::*;

    fn synthetic() -> DatasetSpec {
        DatasetSpec {
            name: "shapes".to_string(),
            format: DatasetFormat::Synthetic {
                image_size: 16,
                seed: 3,
                splits: IndexMap::from([("train".to_string(), 20), ("test".to_string(), 5)]),
            },
        }
    }

    #[test]
    fn dispatches_synthetic() {
        assert_eq!(splits_of(&synthetic()).unwrap(), ["train", "test"]);
        let src = open_split(&synthetic(), "test").unwrap();
        assert_eq!(src.len(), 5);
        assert_eq!(src.load(4).unwrap().width, 16);
        let err = open_split(&synthetic(), "val").err().unwrap();
        assert!(matches!(&err, DataError::UnknownSplit { available, .. } if available == "train, test"));
        assert_eq!(err.to_string(), "dataset `shapes` has no split `val` (available: train, test)");
    }

    #[test]
    fn dispatches_files() {
        let dir = tempfile::tempdir().unwrap();
        super::super::cifar_binary::tests::write_fake(dir.path(), 2);
        let spec = DatasetSpec {
            name: "c".to_string(),
            format: DatasetFormat::Cifar10Binary {
                root: dir.path().to_path_buf(),
            },
        };
        assert_eq!(open_split(&spec, "train").unwrap().len(), 10);
        assert_eq!(splits_of(&spec).unwrap(), ["train", "test"]);
        std::fs::remove_file(dir.path().join("test_batch.bin")).unwrap();
        assert_eq!(splits_of(&spec).unwrap(), ["train"]);

        let img = dir.path().join("folder/train/a/x.png");
        super::super::image_folder::tests::write_image(&img, 3, 3, 0);
        let spec = DatasetSpec {
            name: "f".to_string(),
            format: DatasetFormat::ImageFolder {
                root: dir.path().join("folder"),
            },
        };
        let src = open_split(&spec, "train").unwrap();
        assert_eq!((src.len(), src.classes().len()), (1, 1));
        assert_eq!(splits_of(&spec).unwrap(), ["train"]);
        assert!(open_split(&spec, "test").is_err());

        let empty = tempfile::tempdir().unwrap();
        let missing = DatasetSpec {
            name: "c".to_string(),
            format: DatasetFormat::Cifar10Binary {
                root: empty.path().join("nope"),
            },
        };
        assert!(matches!(splits_of(&missing), Err(DataError::Io { .. })));
        let no_batches = DatasetSpec {
            name: "c".to_string(),
            format: DatasetFormat::Cifar10Binary {
                root: empty.path().to_path_buf(),
            },
        };
        let err = splits_of(&no_batches).err().unwrap();
        assert!(err.to_string().contains("no CIFAR-10 batch files"), "{err}");
    }
}
