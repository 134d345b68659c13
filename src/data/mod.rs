//! Datasets: where images and their labels come from, and how they are fingerprinted.
mod cifar_binary;
mod fingerprint;
mod image;
mod image_folder;
mod source;
mod spec;
mod synthetic;

pub use fingerprint::{fingerprint, FingerprintMode};
pub use image::Image;
pub use source::{open_split, splits_of, DataError, Source};
pub use image::resize_to;
pub use spec::{DatasetFormat, DatasetSpec};
