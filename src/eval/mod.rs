//! Evaluation of representations: linear probes and weighted k-nearest-neighbour
//! classification.
pub mod knn;
pub mod linear_probe;
