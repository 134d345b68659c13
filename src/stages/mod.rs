//! Stage kinds: what each kind reads, its parameters, and how it runs.
mod assign;
mod cluster_metrics;
mod context;
mod features;
mod kind;
mod kmeans;
mod params;

pub use assign::AssignParams;
pub use cluster_metrics::ClusterMetricsParams;
pub use context::{Input, MetricRow, Outcome, RunCtx, StageError};
pub use features::FeaturesParams;
pub use kind::{OutputKind, StageKind};
pub use kmeans::KmeansParams;
pub use params::{InputSpec, Params};
