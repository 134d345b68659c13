//! Stage kinds: what each kind reads, its parameters, and how it runs. The list below is
//! the one place that names every kind (see [`Stage`] and `kind.rs`).
#[cfg(feature = "torch")]
pub mod artefacts;
mod context;
mod crop;
#[cfg(feature = "torch")]
mod images;
mod kind;
mod labels;
#[cfg(feature = "torch")]
mod model_io;
mod network_params;
mod params;
mod probe_data;
mod solver;
mod stage;
#[cfg(feature = "torch")]
mod supervised;

#[cfg(feature = "torch")]
pub use context::RunCtx;
pub use context::{EpochFigures, Input, MetricRow, Outcome, StageError};
pub use kind::OutputKind;
#[cfg(feature = "torch")]
pub use model_io::{InitReport, LoadedModel, ModelMeta};
pub use network_params::NetworkParams;
pub use params::InputSpec;
pub use pretext::sample_macs as pretext_sample_macs;
pub use solver::SolverParams;
pub use stage::{HeadLabels, LayerUse, Networks, ParamError, Rows, Stage, Upstream};

use crate::config::{ConfigError, Node};

/// Images per forward pass when a stage reads a model without training it (features,
/// probes, a classifier's test score).
pub const EXTRACT_BATCH: usize = 256;
/// Images per wave of a model stage's features: decoded, run through the model and written
/// before the next (a multiple of the extraction batch).
pub const MODEL_WAVE: usize = 4096;

// Each kind: its file, declared here (so that `cargo fmt` reaches it), and one line in the
// list below (a line without its module does not compile; a module without its line is dead
// code, which clippy refuses).
mod assign;
mod cluster_metrics;
mod features;
mod finetune;
mod init;
mod kmeans;
mod knn_probe;
mod linear_probe;
mod mlp_probe;
mod pretext;
mod train;

kind::stage_kinds! {
    Features => features::FeaturesParams,
    Kmeans => kmeans::KmeansParams,
    Assign => assign::AssignParams,
    ClusterMetrics => cluster_metrics::ClusterMetricsParams,
    Init => init::InitParams,
    Pretext => pretext::PretextParams,
    Train => train::TrainParams,
    LinearProbe => linear_probe::LinearProbeParams,
    KnnProbe => knn_probe::KnnProbeParams,
    MlpProbe => mlp_probe::MlpProbeParams,
    Finetune => finetune::FinetuneParams,
}
