//! Configuration: TOML files read strictly into spanned raw trees, then validated.
mod choice;
mod count;
mod datasets;
mod decisions;
mod error;
mod experiment;
mod overrides;
mod resources;
mod settings;
mod source;
mod tables;
mod tree;
mod words;

#[doc(hidden)]
pub use choice::__serde;
pub(crate) use choice::choice;
pub use choice::{choice_names, deserialize_choice, parse_choice, Choice};
pub use count::PositiveCount;
pub use datasets::{load_datasets, load_datasets_based, Datasets};
pub use decisions::{read_decisions, RawDecision, RawLayers, RawSelect};
pub use error::{did_you_mean, ConfigError, MAX_REPORTED_ERRORS};
pub use experiment::{check_name, expand_experiment, load_experiment, RawExperiment, RawStage};
pub use overrides::Override;
pub use resources::{format_time, parse_mem, parse_time, Resources, SlurmSection};
pub use settings::{project_root, CliSettings, Located, LogFormat, Settings};
pub use source::SourceFile;
pub use tables::{read_tables, RawReference, RawTable};
pub use tree::{struct_fields, Node, Table, Value};
