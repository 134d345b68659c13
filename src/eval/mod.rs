//! Evaluation of representations: linear and MLP probes and weighted k-nearest-neighbour
//! classification.
pub mod knn;
pub mod linear_probe;
pub mod mlp_probe;
