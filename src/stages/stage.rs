//! The one trait every stage kind implements: what the kind declares about itself (name,
//! version, output, randomness, device dependence), how it decodes, what it reads, and
//! how it runs. The list of kinds in `stages/mod.rs` generates the enums and every
//! dispatch from it, so a new kind is one file plus one line.
use std::sync::Arc;

use serde::Serialize;

use super::{InputSpec, OutputKind, StageKind};
#[cfg(feature = "torch")]
use super::{Outcome, RunCtx, StageError};
use crate::config::{ConfigError, Node};
use crate::data::SplitSummary;
use crate::models::NetConfig;

/// A stage kind's parameters, validated. Nothing here has a default: each kind states
/// every property, so forgetting one is a compile error, not a cache that lies.
pub trait Stage: Clone + std::fmt::Debug + Serialize + Sized {
    /// `kind = "..."` in experiment files, and the store's folder for the kind.
    const NAME: &'static str;
    /// Part of every key: bump it whenever the output for the same inputs changes.
    const VERSION: u32;
    /// What the stage produces, i.e. what other stages may consume from it.
    const OUTPUT: OutputKind;
    /// The metrics its result rows carry (what a table may ask of it).
    const METRICS: &'static [&'static str];
    /// The metrics its result rows carry with these parameters (of [`Stage::METRICS`]).
    fn metrics(&self) -> Vec<&'static str>;

    /// Decodes and validates a stage table (without `kind`); `prefix` is its key path.
    fn decode(table: &Node, prefix: &str) -> Result<Self, ConfigError>;
    /// Whether the stage draws random numbers (then the experiment seed enters its key).
    fn stochastic(&self) -> bool;
    /// Whether its numbers may depend on the device class (cpu or cuda).
    fn device_dependent(&self) -> bool;
    /// The stages and dataset splits it reads, by parameter key.
    fn inputs(&self) -> Vec<InputSpec>;
    /// The networks it builds, starts from or reads (checked against each other at
    /// planning); [`Networks::NONE`] for stages that touch no network.
    fn networks(&self) -> Networks<'_>;
    /// Whose images its output rows are.
    fn rows(&self) -> Rows<'_>;
    /// Fills in what upstream stages imply and checks consistency with them (after every
    /// reference is known to exist and to be of an accepted kind).
    fn resolve(&mut self, upstream: &dyn Upstream) -> Result<(), ParamError>;
    /// Computes the outputs into `ctx.workdir`.
    #[cfg(feature = "torch")]
    fn run(&self, ctx: &RunCtx) -> Result<Outcome, StageError>;
}

/// How a stage relates to networks.
#[derive(Clone, Debug, Default)]
pub struct Networks<'a> {
    /// The network whose backbone this stage builds (model stages).
    pub builds: Option<NetConfig>,
    /// The model stage its backbone starts from: the parameter key and the stage name.
    pub init: Option<(&'static str, &'a str)>,
    /// The layers it reads of an upstream model stage.
    pub reads: Option<LayerUse<'a>>,
}

impl Networks<'_> {
    pub const NONE: Networks<'static> = Networks {
        builds: None,
        init: None,
        reads: None,
    };
}

/// Layers a stage reads of a model stage: `model` under the parameter `model_key`, the
/// layer names under `layers_key`.
#[derive(Clone, Debug)]
pub struct LayerUse<'a> {
    pub model_key: &'static str,
    pub model: &'a str,
    pub layers_key: &'static str,
    pub layers: Vec<&'a str>,
}

/// Whose images the rows of a stage's output are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows<'a> {
    /// A dataset split, `dataset:split`.
    Data(&'a str),
    /// The same rows as another stage's.
    Stage(&'a str),
    /// Not rows of images (a model, a table of metrics), or not known at planning.
    None,
}

/// What planning knows of the other stages of a variant, for [`Stage::resolve`].
pub trait Upstream {
    fn kind(&self, stage: &str) -> Option<StageKind>;
    /// The `dataset:split` whose images `stage`'s rows are, following stage links.
    fn rows(&self, stage: &str) -> Option<String>;
    /// The network whose backbone a model stage builds.
    fn network(&self, stage: &str) -> Option<NetConfig>;
    /// The classes and sizes of a `dataset:split`, when planning can read it here.
    fn split(&self, data: &str) -> Option<Arc<SplitSummary>>;
    /// What a model stage's classifier head was trained on (a `train` stage's labels);
    /// `None` for any other stage.
    fn trained_on(&self, stage: &str) -> Option<HeadLabels>;
}

/// The labels a classifier head was trained on: class `i` of two heads means the same only
/// with the same labelling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadLabels {
    /// The true labels of `dataset:split`.
    Truth(String),
    /// The pseudo-labels of an `assign` stage, by name: cluster ids of one clustering.
    Clusters(String),
}

/// A parameter that does not fit its upstream stages: the key and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamError {
    pub key: &'static str,
    pub message: String,
}

impl ParamError {
    pub fn new(key: &'static str, message: impl Into<String>) -> ParamError {
        ParamError {
            key,
            message: message.into(),
        }
    }
}
