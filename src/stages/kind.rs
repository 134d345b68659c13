//! The closed set of stage kinds; a `match` on it dispatches, so the compiler checks
//! that every kind is handled everywhere.
use std::fmt;

/// A stage kind. `version()` is part of every key: bump it whenever that stage's
/// output for the same inputs would change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StageKind {
    Features,
    Kmeans,
    Assign,
    ClusterMetrics,
    Init,
    Pretext,
    Train,
    LinearProbe,
}

/// What a stage produces, i.e. what another stage may consume from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    Features,
    Centroids,
    Labels,
    Metrics,
    Model,
}

impl StageKind {
    pub const ALL: &'static [StageKind] = &[
        StageKind::Features,
        StageKind::Kmeans,
        StageKind::Assign,
        StageKind::ClusterMetrics,
        StageKind::Init,
        StageKind::Pretext,
        StageKind::Train,
        StageKind::LinearProbe,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StageKind::Features => "features",
            StageKind::Kmeans => "kmeans",
            StageKind::Assign => "assign",
            StageKind::ClusterMetrics => "cluster-metrics",
            StageKind::Init => "init",
            StageKind::Pretext => "pretext",
            StageKind::Train => "train",
            StageKind::LinearProbe => "linear-probe",
        }
    }

    pub fn parse(s: &str) -> Option<StageKind> {
        StageKind::ALL.iter().copied().find(|k| k.name() == s)
    }

    /// Features, Train and LinearProbe are at 2 since `vgg16-small` lost its last
    /// max-pool (its fc layers read a different conv5 summary).
    pub fn version(self) -> u32 {
        match self {
            StageKind::Features => 2,
            StageKind::Kmeans => 1,
            StageKind::Assign => 1,
            StageKind::ClusterMetrics => 1,
            StageKind::Init => 1,
            StageKind::Pretext => 2,
            StageKind::Train => 2,
            StageKind::LinearProbe => 2,
        }
    }

    pub fn output(self) -> OutputKind {
        match self {
            StageKind::Features => OutputKind::Features,
            StageKind::Kmeans => OutputKind::Centroids,
            StageKind::Assign => OutputKind::Labels,
            StageKind::ClusterMetrics => OutputKind::Metrics,
            StageKind::Init | StageKind::Pretext | StageKind::Train => OutputKind::Model,
            StageKind::LinearProbe => OutputKind::Metrics,
        }
    }
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl OutputKind {
    pub fn describe(self) -> &'static str {
        match self {
            OutputKind::Features => "a features stage",
            OutputKind::Centroids => "a kmeans stage",
            OutputKind::Labels => "an assign stage",
            OutputKind::Metrics => "a metrics stage",
            OutputKind::Model => "a model stage (init, pretext or train)",
        }
    }
}
