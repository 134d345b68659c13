//! Evaluation of representations: linear probes.
pub mod linear_probe;
