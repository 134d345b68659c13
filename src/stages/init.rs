//! `init`: an architecture with seeded random weights (the "random" row of a table).
use serde::{Deserialize, Serialize};

#[cfg(feature = "torch")]
use super::model_io::{LoadedModel, ModelMeta};
use super::network_params::NetworkParams;
use super::{InputSpec, Networks, OutputKind, ParamError, Rows, Stage, Upstream};
#[cfg(feature = "torch")]
use super::{Outcome, RunCtx, StageError};
use crate::config::struct_fields;
use crate::config::{ConfigError, Node};

/// The keys of [`InitParams`] besides its flattened network options.
const OWN_KEYS: &[&str] = &["classes"];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InitParams {
    #[serde(flatten)]
    pub net: NetworkParams,
    /// Outputs of the classifier head.
    #[serde(default = "ten")]
    pub classes: i64,
}

fn ten() -> i64 {
    10
}

impl InitParams {
    pub(super) fn validate(mut self, table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        self.net.resolve(table, prefix)?;
        if !(1..=1_000_000).contains(&self.classes) {
            let n = table.lookup("classes").unwrap_or(table);
            return Err(n.error(
                &format!("{prefix}.classes"),
                format!("expected 1..=1000000, found {}", self.classes),
            ));
        }
        Ok(self)
    }
}

impl Stage for InitParams {
    const NAME: &'static str = "init";
    /// 2: one seed derivation (`crate::seed`).
    const VERSION: u32 = 2;
    const OUTPUT: OutputKind = OutputKind::Model;
    const METRICS: &'static [&'static str] = &[];

    fn metrics(&self) -> Vec<&'static str> {
        Self::METRICS.to_vec()
    }

    fn decode(table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        table
            .decode_flattened::<InitParams>(prefix, &[OWN_KEYS, struct_fields::<NetworkParams>()])?
            .validate(table, prefix)
    }
    /// Random weights, seeded.
    fn stochastic(&self) -> bool {
        true
    }
    fn device_dependent(&self) -> bool {
        true
    }
    fn inputs(&self) -> Vec<InputSpec> {
        Vec::new()
    }
    fn networks(&self) -> Networks<'_> {
        Networks {
            builds: Some(self.net.config()),
            ..Networks::NONE
        }
    }
    fn rows(&self) -> Rows<'_> {
        Rows::None
    }
    fn resolve(&mut self, _: &dyn Upstream) -> Result<(), ParamError> {
        Ok(())
    }
    #[cfg(feature = "torch")]
    fn run(&self, ctx: &RunCtx) -> Result<Outcome, StageError> {
        let model = LoadedModel::new(
            ModelMeta {
                config: self.net.config(),
                classes: self.classes,
                jigsaw: None,
                projection: None,
                decoder: None,
                per_image_norm: false,
                lightness_input: false,
                fit: Default::default(),
            },
            ctx.device,
        )?;
        model.save(ctx.workdir)?;
        let params: i64 = model.vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        Ok(Outcome {
            metrics: Vec::new(),
            summary: format!("{} with {params} parameters, random weights", self.net.arch),
        })
    }
}
