//! Global settings (store, results, datasets file, logging), layered by figment:
//! defaults, then `KTLAB_*` environment variables, then command-line flags.
use std::path::PathBuf;

use figment::providers::{Env, Serialized};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub store: PathBuf,
    pub results: PathBuf,
    pub datasets: Option<PathBuf>,
    pub log_format: LogFormat,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            store: PathBuf::from(".ktlab/store"),
            results: PathBuf::from("results"),
            datasets: None,
            log_format: LogFormat::Text,
        }
    }
}

/// Values given on the command line (absent ones do not override).
#[derive(Debug, Default, Serialize)]
pub struct CliSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datasets: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

impl Settings {
    pub fn load(cli: &CliSettings) -> Result<Settings, Box<figment::Error>> {
        Figment::from(Serialized::defaults(Settings::default()))
            .merge(Env::prefixed("KTLAB_").only(&["store", "results", "datasets", "log_format"]))
            .merge(Serialized::defaults(cli))
            .extract()
            .map_err(Box::new)
    }
}
