//! k-means clustering of feature vectors into pseudo-labels (DeepCluster-style
//! PCA-whitening, L2 normalisation, Lloyd iterations) plus clustering metrics.

#[cfg(feature = "torch")]
mod assign;
#[cfg(feature = "torch")]
mod bounds;
#[cfg(feature = "torch")]
mod error;
#[cfg(feature = "torch")]
mod file;
#[cfg(feature = "torch")]
mod kmeans;
mod limits;
#[cfg(feature = "torch")]
pub mod metrics; // also reachable as `cluster::metrics::*`
#[cfg(feature = "torch")]
mod pca;
#[cfg(feature = "torch")]
mod preprocess;
mod seeding;
#[cfg(all(test, feature = "torch"))]
mod testutil;
#[cfg(feature = "torch")]
mod tile;

#[cfg(feature = "torch")]
pub use assign::{labels_to_vec, nearest, nearest_portable};
#[cfg(feature = "torch")]
pub use error::ClusterError;
#[cfg(feature = "torch")]
pub use file::{run_kmeans_file, KMeansFileSummary, ASSIGNMENTS_FILE, CENTROIDS_FILE, INERTIA_FILE};
#[cfg(feature = "torch")]
pub use kmeans::{
    kmeans, kmeans_observed, kmeans_with, lloyd, lloyd_with, KMeansAlgorithm, KMeansParams, KMeansResult, LloydOptions, LloydResult,
    DEFAULT_BLOCK_ROWS,
};
pub use limits::{check_counts, MAX_ITERATIONS, MAX_K, MAX_RESTARTS};
#[cfg(feature = "torch")]
pub use metrics::{accuracy, ami, ari, cluster_sizes, contingency, nmi, purity, size_balance, ClusterIndex, Contingency};
#[cfg(feature = "torch")]
pub use pca::{Pca, PCA_WHITEN_EPS};
#[cfg(feature = "torch")]
pub use preprocess::{Preprocess, L2_NORMALIZE_FILE, PCA_MEAN_FILE, PCA_PROJECTION_FILE};
pub use seeding::KMeansInit;
