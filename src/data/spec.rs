//! A validated dataset entry of `datasets.toml`.
use std::path::PathBuf;

use indexmap::IndexMap;

/// One named dataset, validated (paths absolute).
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetSpec {
    pub name: String,
    pub format: DatasetFormat,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DatasetFormat {
    /// Built-in procedural shapes; every split carries labels.
    Synthetic {
        image_size: usize,
        seed: u64,
        /// split name -> number of images, in file order
        splits: IndexMap<String, usize>,
    },
    /// `<root>/<split>/<class>/<image>` with JPEG or PNG files.
    ImageFolder { root: PathBuf },
    /// The official CIFAR-10 binary batches: `data_batch_{1..5}.bin` (split `train`),
    /// `test_batch.bin` (split `test`), optionally `batches.meta.txt` for class names.
    Cifar10Binary { root: PathBuf },
    /// Splits drawn from the splits of another dataset of the same file: each split of
    /// `of` is shuffled once with `seed`, and a subset split is the `take` images from
    /// position `skip` of that order (so subsets with one seed and disjoint ranges are
    /// disjoint).
    Subset {
        of: Box<DatasetSpec>,
        seed: u64,
        /// split name -> where its images come from, in declaration order
        splits: IndexMap<String, SubsetSplit>,
    },
}

/// One split of a subset dataset: `take` images from position `skip` of the seeded
/// order of split `split` of the parent dataset.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubsetSplit {
    pub split: String,
    #[serde(default)]
    pub skip: usize,
    pub take: usize,
}

impl DatasetFormat {
    pub fn name(&self) -> &'static str {
        match self {
            DatasetFormat::Synthetic { .. } => "synthetic",
            DatasetFormat::ImageFolder { .. } => "image-folder",
            DatasetFormat::Cifar10Binary { .. } => "cifar10-binary",
            DatasetFormat::Subset { .. } => "subset",
        }
    }

    /// The split names the file declares (synthetic and subset datasets); `None` where
    /// they are the folders or files found on disk.
    pub fn declared_splits(&self) -> Option<Vec<&str>> {
        match self {
            DatasetFormat::Synthetic { splits, .. } => Some(splits.keys().map(String::as_str).collect()),
            DatasetFormat::Subset { splits, .. } => Some(splits.keys().map(String::as_str).collect()),
            DatasetFormat::ImageFolder { .. } | DatasetFormat::Cifar10Binary { .. } => None,
        }
    }
}
