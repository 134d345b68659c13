//! k-means clustering of feature vectors into pseudo-labels (DeepCluster-style
//! PCA-whitening, L2 normalisation, Lloyd iterations) plus clustering metrics.

mod assign;
mod error;
mod kmeans;
pub mod metrics; // also reachable as `cluster::metrics::*`
mod pca;
mod preprocess;
#[cfg(test)]
mod testutil;

pub use assign::{labels_to_vec, nearest};
pub use error::ClusterError;
pub use kmeans::{kmeans, lloyd, KMeansInit, KMeansParams, KMeansResult, LloydResult, DEFAULT_BLOCK_ROWS};
pub use metrics::{accuracy, ari, cluster_sizes, contingency, nmi, purity, ClusterIndex, Contingency};
pub use pca::{Pca, PCA_WHITEN_EPS};
pub use preprocess::{Preprocess, L2_NORMALIZE_FILE, PCA_MEAN_FILE, PCA_PROJECTION_FILE};
