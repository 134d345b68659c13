//! `cluster-metrics`: NMI, AMI (NMI corrected for chance: its chance level grows with the
//! number of clusters), ARI, purity and clustering accuracy (best one-to-one matching of
//! clusters to classes) of pseudo-labels against true labels; the entropy of the cluster
//! sizes and the largest cluster's share; the cluster-size histogram; with `flipped`, the
//! flip agreement (the share of images whose mirror image gets the same label).
use serde::{Deserialize, Serialize};

use super::params::data_ref;
#[cfg(feature = "torch")]
use super::{artefacts, MetricRow, Outcome, RunCtx, StageError};
use super::{InputSpec, Networks, OutputKind, ParamError, Rows, Stage, Upstream};
#[cfg(feature = "torch")]
use crate::cluster as metrics;
use crate::config::{ConfigError, Node};
#[cfg(feature = "torch")]
use crate::data::open_split;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterMetricsParams {
    /// An assign stage (or a kmeans stage: its own assignments).
    pub labels: String,
    /// The labeled `dataset:split` the labels are of.
    pub truth: String,
    /// An assign stage labelling the same images mirrored left to right (features with
    /// `flip = true`) with the same centroids: adds `flip_agreement`, the share of images
    /// whose two labels agree. A clustering that splits images from their mirror images
    /// gives a target trained with random flips contradictory labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flipped: Option<String>,
}

impl Stage for ClusterMetricsParams {
    const NAME: &'static str = "cluster-metrics";
    /// 2 since it reports clustering accuracy too; 3: AMI and the size balance.
    const VERSION: u32 = 3;
    const OUTPUT: OutputKind = OutputKind::Metrics;
    const METRICS: &'static [&'static str] = &[
        "nmi",
        "ami",
        "ari",
        "purity",
        "accuracy",
        "size_entropy",
        "largest_share",
        "flip_agreement",
    ];

    fn metrics(&self) -> Vec<&'static str> {
        let n = Self::METRICS.len() - usize::from(self.flipped.is_none());
        Self::METRICS[..n].to_vec()
    }

    fn decode(table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        table.decode(prefix)
    }
    /// Counts over labels: no random numbers.
    fn stochastic(&self) -> bool {
        false
    }
    /// Integer counts: the same on every device.
    fn device_dependent(&self) -> bool {
        false
    }
    fn inputs(&self) -> Vec<InputSpec> {
        let mut v = vec![
            InputSpec::Stage {
                key: "labels",
                stage: self.labels.clone(),
                accepts: &[OutputKind::Labels, OutputKind::Centroids],
            },
            data_ref("truth", &self.truth),
        ];
        if let Some(f) = &self.flipped {
            v.push(InputSpec::Stage {
                key: "flipped",
                stage: f.clone(),
                accepts: &[OutputKind::Labels],
            });
        }
        v
    }
    fn networks(&self) -> Networks<'_> {
        Networks::NONE
    }
    fn rows(&self) -> Rows<'_> {
        Rows::None
    }
    /// The true labels must be of the images the pseudo-labels are of.
    fn resolve(&mut self, upstream: &dyn Upstream) -> Result<(), ParamError> {
        if let Some(labels_of) = upstream.rows(&self.labels) {
            if self.truth.contains(':') && labels_of != self.truth {
                return Err(ParamError::new(
                    "truth",
                    format!("`{}` labels images of `{labels_of}`, not of `{}`", self.labels, self.truth),
                ));
            }
        }
        if let Some(f) = &self.flipped {
            if let (Some(a), Some(b)) = (upstream.rows(&self.labels), upstream.rows(f)) {
                if a != b {
                    return Err(ParamError::new(
                        "flipped",
                        format!("`{f}` labels images of `{b}`, but `{}` labels images of `{a}`", self.labels),
                    ));
                }
            }
        }
        Ok(())
    }
    #[cfg(feature = "torch")]
    fn run(&self, ctx: &RunCtx) -> Result<Outcome, StageError> {
        let pred = read_labels(ctx, "labels")?;
        let (spec, split) = ctx.data_input("truth")?;
        let source = open_split(spec, split)?;
        if source.len() != pred.len() {
            return Err(StageError::Input(format!(
                "`{}:{split}` has {} images but the labels cover {}",
                spec.name,
                source.len(),
                pred.len()
            )));
        }
        let mut truth = Vec::with_capacity(pred.len());
        for i in 0..source.len() {
            let l = source
                .label(i)
                .ok_or_else(|| StageError::Input(format!("{}: no true label (the split is unlabeled)", source.describe(i))))?;
            truth.push(l as i64);
        }
        let pred_u: Vec<usize> = pred.iter().map(|&p| p.max(0) as usize).collect();
        let truth_u: Vec<usize> = truth.iter().map(|&t| t as usize).collect();
        let nmi = metrics::nmi(&truth_u, &pred_u).map_err(|e| StageError::Failed(e.to_string()))?;
        let ami = metrics::ami(&truth_u, &pred_u).map_err(|e| StageError::Failed(e.to_string()))?;
        let (size_entropy, largest_share) = metrics::size_balance(&pred_u);
        let ari = metrics::ari(&truth_u, &pred_u).map_err(|e| StageError::Failed(e.to_string()))?;
        let purity = metrics::purity(&truth_u, &pred_u).map_err(|e| StageError::Failed(e.to_string()))?;
        let accuracy = metrics::accuracy(&truth_u, &pred_u).map_err(|e| StageError::Failed(e.to_string()))?;
        let k = pred_u.iter().max().map(|m| m + 1).unwrap_or(0);
        let sizes = metrics::cluster_sizes(&pred_u, k).map_err(|e| StageError::Failed(e.to_string()))?;
        let mut hist = String::from("cluster,size\n");
        for (c, s) in sizes.iter().enumerate() {
            hist.push_str(&format!("{c},{s}\n"));
        }
        artefacts::write_text(&ctx.path("histogram.csv"), &hist)?;
        let row = |m: &str, v: f64| MetricRow {
            layer: String::new(),
            metric: m.into(),
            value: v,
        };
        let mut rows = vec![
            row("nmi", nmi),
            row("ami", ami),
            row("ari", ari),
            row("purity", purity),
            row("accuracy", accuracy),
            row("size_entropy", size_entropy),
            row("largest_share", largest_share),
        ];
        let mut summary = format!(
            "NMI {nmi:.4}, AMI {ami:.4}, ARI {ari:.4}, purity {purity:.4}, accuracy {accuracy:.4}; size entropy {size_entropy:.3} nats (ln k = {:.3}), largest cluster {:.1} %",
            (k.max(1) as f64).ln(),
            100.0 * largest_share
        );
        if self.flipped.is_some() {
            let mirrored = read_labels(ctx, "flipped")?;
            let agreement = flip_agreement(&pred, &mirrored)?;
            rows.push(row("flip_agreement", agreement));
            summary.push_str(&format!("; flip agreement {agreement:.3}"));
        }
        Ok(Outcome { summary, metrics: rows })
    }
}

/// The labels (`labels.npy` of an assign stage, `assignments.npy` of a kmeans stage) of input `key`.
#[cfg(feature = "torch")]
fn read_labels(ctx: &RunCtx, key: &str) -> Result<Vec<i64>, StageError> {
    let dir = ctx.stage_input(key)?;
    let file = if dir.join("labels.npy").exists() {
        "labels.npy"
    } else {
        "assignments.npy"
    };
    Ok(artefacts::read_tensor(&dir.join(file))?.try_into()?)
}

/// The share of images whose label equals the label of their mirror image.
#[cfg(feature = "torch")]
fn flip_agreement(labels: &[i64], mirrored: &[i64]) -> Result<f64, StageError> {
    if labels.len() != mirrored.len() || labels.is_empty() {
        return Err(StageError::Input(format!(
            "the mirrored images have {} labels, the images {}",
            mirrored.len(),
            labels.len()
        )));
    }
    let same = labels.iter().zip(mirrored).filter(|(a, b)| a == b).count();
    Ok(same as f64 / labels.len() as f64)
}

#[cfg(all(test, feature = "torch"))]
mod tests {
    use super::*;

    #[test]
    fn flip_agreement_counts_equal_labels_and_refuses_other_lengths() {
        assert_eq!(flip_agreement(&[0, 1, 2, 3], &[0, 1, 3, 2]).unwrap(), 0.5);
        assert_eq!(flip_agreement(&[5], &[5]).unwrap(), 1.0);
        assert!(flip_agreement(&[0, 1], &[0]).is_err());
    }
}
