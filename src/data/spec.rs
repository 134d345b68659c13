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
}

impl DatasetFormat {
    pub fn name(&self) -> &'static str {
        match self {
            DatasetFormat::Synthetic { .. } => "synthetic",
            DatasetFormat::ImageFolder { .. } => "image-folder",
            DatasetFormat::Cifar10Binary { .. } => "cifar10-binary",
        }
    }
}
