//! How initial centroids are chosen: a parameter of the `kmeans` stage, so it is known to
//! builds without libtorch too (the algorithms are in `kmeans.rs`).

/// How initial centroids are chosen (`kmeans++` or `random` in experiment files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum KMeansInit {
    /// k-means++ (Arthur & Vassilvitskii 2007): each next centroid is a data
    /// point drawn with probability proportional to its squared distance to
    /// the nearest centroid chosen so far (one candidate per step, not the
    /// "greedy" variant). Costs `k` passes over the data.
    #[default]
    #[serde(rename = "kmeans++")]
    KMeansPlusPlus,
    /// `k` distinct data points chosen uniformly at random (what faiss, and
    /// hence DeepCluster, does).
    #[serde(rename = "random")]
    Random,
}
