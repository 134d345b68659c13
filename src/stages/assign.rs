//! `assign`: the nearest centroid of a kmeans stage for every row of a features stage
//! (of the same or another dataset): the pseudo-labels.
use serde::{Deserialize, Serialize};
#[cfg(feature = "torch")]
use tch::Kind;

#[cfg(feature = "torch")]
use super::kmeans::BLOCK_ROWS;
#[cfg(feature = "torch")]
use super::{artefacts, Outcome, RunCtx, StageError};
use super::{InputSpec, Networks, OutputKind, ParamError, Rows, Stage, Upstream};
#[cfg(feature = "torch")]
use crate::cluster::{self, Preprocess};
use crate::config::{ConfigError, Node};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AssignParams {
    /// The kmeans stage whose centroids label the images.
    pub centroids: String,
    /// The features stage of the images to label.
    pub features: String,
}

impl Stage for AssignParams {
    const NAME: &'static str = "assign";
    const VERSION: u32 = 2;
    const OUTPUT: OutputKind = OutputKind::Labels;
    const METRICS: &'static [&'static str] = &[];

    fn metrics(&self) -> Vec<&'static str> {
        Self::METRICS.to_vec()
    }

    fn decode(table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        table.decode(prefix)
    }
    /// The nearest centroid of each row: no random numbers.
    fn stochastic(&self) -> bool {
        false
    }
    /// Distances are matrix products, whose rounding differs between devices.
    fn device_dependent(&self) -> bool {
        true
    }
    fn inputs(&self) -> Vec<InputSpec> {
        vec![
            InputSpec::Stage {
                key: "centroids",
                stage: self.centroids.clone(),
                accepts: &[OutputKind::Centroids],
            },
            InputSpec::Stage {
                key: "features",
                stage: self.features.clone(),
                accepts: &[OutputKind::Features],
            },
        ]
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
        let cdir = ctx.stage_input("centroids")?;
        let fdir = ctx.stage_input("features")?;
        let centroids = artefacts::read_tensor(&cdir.join("centroids.npy"))?
            .to_kind(Kind::Float)
            .to_device(ctx.device);
        let pre = Preprocess::load(cdir).map_err(|e| StageError::Failed(format!("{}: {e}", cdir.display())))?;
        let x = artefacts::read_matrix(&fdir.join("features.npy"), ctx.device)?;
        let (n, d) = x.size2()?;
        let expected = match &pre.pca {
            Some(p) => p.mean.size()[0],
            None => centroids.size()[1],
        };
        if d != expected {
            return Err(StageError::Input(format!(
                "features have {d} dimensions but the centroids were fit on {expected}"
            )));
        }
        let x = pre.apply(&x).map_err(|e| StageError::Input(e.to_string()))?;
        let (labels, _dist) = cluster::nearest(&x, &centroids, BLOCK_ROWS).map_err(|e| StageError::Input(e.to_string()))?;
        let k = centroids.size()[0];
        artefacts::write_tensor(&ctx.path("labels.npy"), &labels)?;
        let index: serde_json::Value = artefacts::read_json(&fdir.join("index.json"))?;
        artefacts::write_json(
            &ctx.path("index.json"),
            &serde_json::json!({ "dataset": index["dataset"], "split": index["split"], "count": n, "k": k }),
        )?;
        Ok(Outcome {
            metrics: Vec::new(),
            summary: format!("{n} images labeled with {k} clusters"),
        })
    }
}
