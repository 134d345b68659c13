//! `kmeans`: clusters the rows of a features stage on the configured device.
use serde::{Deserialize, Serialize};

#[cfg(feature = "torch")]
use super::{artefacts, Outcome, RunCtx, StageError};
use super::{InputSpec, Networks, OutputKind, ParamError, Rows, Stage, Upstream};
#[cfg(feature = "torch")]
use crate::cluster;
use crate::cluster::KMeansInit;
use crate::config::{ConfigError, Node};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KmeansParams {
    /// The features stage to cluster.
    pub features: String,
    /// Number of clusters.
    pub k: usize,
    #[serde(default = "default_iterations")]
    pub iterations: usize,
    #[serde(default = "default_restarts")]
    pub restarts: usize,
    /// PCA-whitening to this many dimensions first (as DeepCluster does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pca: Option<usize>,
    /// L2-normalise rows (after PCA).
    #[serde(default)]
    pub l2_normalize: bool,
    /// `kmeans++` or `random`.
    #[serde(default)]
    pub init: KMeansInit,
}

fn default_iterations() -> usize {
    20
}
fn default_restarts() -> usize {
    1
}

#[cfg(feature = "torch")]
/// Rows per block of the assignment step: bounds memory at block x k floats.
pub const BLOCK_ROWS: usize = 4096;

impl KmeansParams {
    pub(super) fn validate(self, table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        let at = |key: &str| table.lookup(key).unwrap_or(table);
        let err = |key: &str, msg: String| Err(at(key).error(&format!("{prefix}.{key}"), msg));
        if let Err((key, message)) = crate::cluster::check_counts(self.k, self.iterations, self.restarts) {
            return err(key, message);
        }
        if self.pca == Some(0) {
            return err("pca", "expected a positive number of dimensions, found 0".into());
        }
        Ok(self)
    }
}

impl Stage for KmeansParams {
    const NAME: &'static str = "kmeans";
    /// 3: never more iterations than asked, one seed derivation (`crate::seed`).
    const VERSION: u32 = 3;
    const OUTPUT: OutputKind = OutputKind::Centroids;
    const METRICS: &'static [&'static str] = &[];

    fn metrics(&self) -> Vec<&'static str> {
        Self::METRICS.to_vec()
    }

    fn decode(table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        table.decode::<KmeansParams>(prefix)?.validate(table, prefix)
    }
    /// k-means++ draws its seeds; restarts draw theirs.
    fn stochastic(&self) -> bool {
        true
    }
    fn device_dependent(&self) -> bool {
        true
    }
    fn inputs(&self) -> Vec<InputSpec> {
        vec![InputSpec::Stage {
            key: "features",
            stage: self.features.clone(),
            accepts: &[OutputKind::Features],
        }]
    }
    fn networks(&self) -> Networks<'_> {
        Networks::NONE
    }
    fn rows(&self) -> Rows<'_> {
        Rows::Stage(&self.features)
    }
    fn resolve(&mut self, _: &dyn Upstream) -> Result<(), ParamError> {
        Ok(())
    }
    #[cfg(feature = "torch")]
    fn run(&self, ctx: &RunCtx) -> Result<Outcome, StageError> {
        let dir = ctx.stage_input("features")?;
        let file = dir.join("features.npy");
        let x = artefacts::read_matrix(&file, ctx.device)?;
        let (n, d) = x.size2().map_err(StageError::Torch)?;
        let params = cluster::KMeansParams {
            k: self.k,
            iterations: self.iterations,
            restarts: self.restarts,
            pca: self.pca,
            l2_normalize: self.l2_normalize,
            init: self.init,
            seed: ctx.seed,
            block_rows: BLOCK_ROWS,
        };
        let r = cluster::kmeans_observed(&x, &params, cluster::KMeansAlgorithm::default(), ctx.progress).map_err(|e| match e {
            // What the features hold: name the file.
            cluster::ClusterError::NonFinite { .. } | cluster::ClusterError::Magnitude { .. } => {
                StageError::Input(format!("{}: {e}", file.display()))
            }
            e => StageError::Input(e.to_string()),
        })?;
        artefacts::write_tensor(&ctx.path("centroids.npy"), &r.centroids)?;
        artefacts::write_tensor(&ctx.path("assignments.npy"), &r.assignments)?;
        r.preprocess.save(ctx.workdir).map_err(|e| StageError::Failed(e.to_string()))?;
        // Row 0 is the inertia of the initial centroids, then one row per update.
        let mut csv = String::from("iteration,inertia\n");
        for (i, v) in r.inertia_history.iter().enumerate() {
            csv.push_str(&format!("{i},{v}\n"));
        }
        artefacts::write_text(&ctx.path("inertia.csv"), &csv)?;
        artefacts::write_json(
            &ctx.path("index.json"),
            &serde_json::json!({
                "k": self.k, "points": n, "dim": d,
                "inertia": r.inertia, "restart_inertias": r.restart_inertias,
                "reseeded": r.reseeded, "iterations_run": r.iterations_run, "converged": r.converged,
            }),
        )?;
        let mut summary = format!("k = {} on {n} x {d}, inertia {:.4}", self.k, r.inertia);
        if let Some(warning) = r.empty_warning(self.k) {
            tracing::warn!("{}: {warning}", file.display());
            summary.push_str(&format!("; {warning}"));
        }
        Ok(Outcome {
            metrics: Vec::new(),
            summary,
        })
    }
}
