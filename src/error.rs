//! The errors that reach the command line: one variant per layer, each built from that
//! layer's own error type by `From`, each knowing its exit code.
#[cfg(feature = "torch")]
use crate::cluster::ClusterError;
use crate::config::ConfigError;
use crate::data::DataError;
#[cfg(feature = "torch")]
use crate::exec::VerifyError;
use crate::exec::{BatchError, SchedulerError, SubmissionError};
use crate::plan::PlanError;
use crate::pretext::permutations::PermutationError;
use crate::stages::StageError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// `ktlab kmeans` on a file.
    #[cfg(feature = "torch")]
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    /// The executor asked for on the command line cannot be used here.
    #[error("--executor {executor}")]
    Executor {
        executor: &'static str,
        #[source]
        source: SchedulerError,
    },
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error(transparent)]
    Submission(#[from] SubmissionError),
    /// A permutation set that cannot be made (exit 2) or written (exit 1).
    #[error(transparent)]
    Permutations(#[from] PermutationError),
    /// One stage instance failed where it runs alone (`exec-stage`).
    #[error("{label}")]
    Stage {
        label: String,
        #[source]
        source: StageError,
    },
    /// Re-executing a stage for `verify` failed.
    #[cfg(feature = "torch")]
    #[error("{label}")]
    Verify {
        label: String,
        #[source]
        source: VerifyError,
    },
    /// The global settings (`KTLAB_*`, flags) do not parse.
    #[error("settings")]
    Settings(#[source] Box<figment::Error>),
    /// A file or folder outside the store that cannot be read or written.
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The front end cannot hand a command that computes to the engine.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
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
            Error::Config(_) | Error::Data(_) | Error::Settings(_) | Error::Usage(_) | Error::Submission(_) => 2,
            Error::Plan(e) => e.exit_code(),
            #[cfg(feature = "torch")]
            Error::Cluster(ClusterError::Io { .. } | ClusterError::Torch(_)) => 1,
            #[cfg(feature = "torch")]
            Error::Cluster(_) => 2,
            Error::Scheduler(e) | Error::Batch(BatchError::Scheduler(e)) | Error::Executor { source: e, .. } if e.is_unavailable() => 2,
            Error::Stage { source, .. } if source.is_input_error() => 2,
            #[cfg(feature = "torch")]
            Error::Verify {
                source: VerifyError::Stage(source),
                ..
            } if source.is_input_error() => 2,
            #[cfg(feature = "torch")]
            Error::Verify {
                source: VerifyError::Unavailable(_),
                ..
            } => 2,
            Error::Permutations(PermutationError::Io { .. }) => 1,
            Error::Permutations(_) => 2,
            Error::Store(_)
            | Error::Scheduler(_)
            | Error::Executor { .. }
            | Error::Batch(_)
            | Error::Stage { .. }
            | Error::Io { .. }
            | Error::Engine(_)
            | Error::Other(_) => 1,
            #[cfg(feature = "torch")]
            Error::Verify { .. } => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_layer_knows_its_exit_code() {
        let input = Error::Stage {
            label: "a".into(),
            source: StageError::Input("k too large".into()),
        };
        let failed = Error::Stage {
            label: "a".into(),
            source: StageError::Failed("boom".into()),
        };
        let store = Error::from(StoreError::Io {
            path: "/st".into(),
            source: std::io::Error::other("disk full"),
        });
        assert_eq!((input.exit_code(), failed.exit_code(), store.exit_code()), (2, 1, 1));
        assert_eq!(crate::chain::error_chain(&store), "store /st: disk full");
    }
}
