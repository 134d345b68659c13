//! Evaluation of representations: linear and MLP probes and weighted k-nearest-neighbour
//! classification, reading their features a batch or a block at a time (the sizes, which
//! the plan's memory estimate shares, need no libtorch).
pub mod features;
#[cfg(feature = "torch")]
pub mod knn;
#[cfg(feature = "torch")]
pub mod linear_probe;
#[cfg(feature = "torch")]
pub mod mlp_probe;
