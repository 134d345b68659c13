//! ktlab: declarative, content-hashed, reproducible knowledge-transfer experiments
//! (Noroozi et al., CVPR 2018) on libtorch.
pub mod cli;
pub mod cluster;
pub mod config;
pub mod data;
pub mod device;
pub mod eval;
pub mod exec;
pub mod models;
pub mod plan;
pub mod pretext;
pub mod report;
pub mod run;
pub mod run_batch;
pub mod run_verify;
pub mod stages;
pub mod store;
pub mod train;

/// Errors that reach the command line, each with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Data(#[from] data::DataError),
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Bad command-line usage or input detected outside a stage.
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// 2 for bad configuration, input or usage; 1 for failures at run time.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::Data(_) | Error::Usage(_) => 2,
            Error::Plan(e) => e.exit_code(),
            Error::Store(_) | Error::Other(_) => 1,
        }
    }
}
