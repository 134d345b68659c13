//! ktlab: declarative, content-hashed, reproducible knowledge-transfer experiments
//! (Noroozi et al., CVPR 2018) on libtorch.
pub mod chain;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod data;
pub mod device;
pub mod engine;
pub mod error;
pub mod eval;
pub mod exec;
pub mod models;
pub mod plan;
pub mod pretext;
pub mod report;
pub mod seed;
pub mod skip;
pub mod stages;
pub mod store;
pub mod train;

pub use chain::error_chain;
pub use error::Error;
