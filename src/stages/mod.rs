//! Stage kinds: what each kind reads, its parameters, and how it runs.
mod assign;
mod cluster_metrics;
mod context;
mod features;
mod init;
mod kind;
mod kmeans;
mod linear_probe;
mod model_io;
mod network_params;
mod params;
mod train;

pub use assign::AssignParams;
pub use cluster_metrics::ClusterMetricsParams;
pub use context::{Input, MetricRow, Outcome, RunCtx, StageError};
pub use features::FeaturesParams;
pub use init::InitParams;
pub use kind::{OutputKind, StageKind};
pub use kmeans::KmeansParams;
pub use linear_probe::LinearProbeParams;
pub use model_io::{LoadedModel, ModelMeta};
pub use network_params::NetworkParams;
pub use params::{InputSpec, Params};
pub use train::TrainParams;
