//! Datasets: where images and their labels come from, and how they are fingerprinted.
mod budget;
mod cifar_binary;
mod fingerprint;
mod image;
mod image_folder;
mod npy;
mod source;
mod spec;
mod subset;
mod summary;
mod synthetic;

pub use budget::{decode_budget, decode_cache, decoded_bytes, BATCHES_AHEAD, DECODE_BUDGET_VAR, DECODE_CACHE_VAR, DEFAULT_DECODE_BUDGET};
pub use cifar_binary::Cifar10Binary;
pub use fingerprint::{fingerprint, fingerprint_with, Cache, FingerprintMode};
pub use image::{area_resample, fit_to, resize_to, resize_to_wh, Fit, Image};
pub use image_folder::{decode_file, list_split, ImageFolder, Listing};
#[cfg(feature = "torch")]
pub use npy::read_npy;
pub use npy::{NpyDtype, NpyError, NpyHeader, NpyMatrix, NpyWriter};
pub use source::{open_split, splits_of, DataError, Source};
pub use spec::{DatasetFormat, DatasetSpec, SubsetSplit};
pub use subset::SUBSET_VERSION;
pub use summary::{summarize, SplitSummary};
pub use synthetic::{Synthetic, SHAPE_CLASSES, SYNTHETIC_VERSION};
