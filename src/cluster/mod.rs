//! k-means clustering of feature vectors into pseudo-labels (DeepCluster-style
//! PCA-whitening, L2 normalisation, Lloyd iterations) plus clustering metrics.

mod assign;
mod bounds;
mod error;
mod file;
mod kmeans;
pub mod metrics; // also reachable as `cluster::metrics::*`
mod pca;
mod preprocess;
#[cfg(test)]
mod testutil;
mod tile;

pub use assign::{labels_to_vec, nearest, nearest_portable};
pub use error::ClusterError;
pub use file::{run_kmeans_file, KMeansFileSummary, ASSIGNMENTS_FILE, CENTROIDS_FILE, INERTIA_FILE};
pub use kmeans::{
    kmeans, kmeans_observed, kmeans_with, lloyd, lloyd_with, KMeansAlgorithm, KMeansInit, KMeansParams, KMeansResult, LloydOptions,
    LloydResult, DEFAULT_BLOCK_ROWS,
};
pub use metrics::{accuracy, ari, cluster_sizes, contingency, nmi, purity, ClusterIndex, Contingency};
pub use pca::{Pca, PCA_WHITEN_EPS};
pub use preprocess::{Preprocess, L2_NORMALIZE_FILE, PCA_MEAN_FILE, PCA_PROJECTION_FILE};
