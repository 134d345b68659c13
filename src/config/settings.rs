//! Global settings (store, results, datasets file, logging), layered by figment:
//! defaults, then `KTLAB_*` environment variables, then command-line flags. The store
//! and results folders not given default to the experiment's project folder.
use std::path::{Path, PathBuf};

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

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// As given (`--store`, `KTLAB_STORE`); `None`: found by [`Settings::locate`].
    pub store: Option<PathBuf>,
    /// As given (`--results`, `KTLAB_RESULTS`); `None`: found by [`Settings::locate`].
    pub results: Option<PathBuf>,
    pub datasets: Option<PathBuf>,
    pub log_format: LogFormat,
}

/// The store inside a project folder.
pub const STORE_IN_PROJECT: &str = ".ktlab/store";
/// The results folder inside a project folder.
pub const RESULTS_IN_PROJECT: &str = "results";

/// Where a command keeps its entries and tables.
#[derive(Clone, Debug, PartialEq)]
pub struct Located {
    pub store: PathBuf,
    pub results: PathBuf,
    /// The project folder the defaults came from, if one was found.
    pub project: Option<PathBuf>,
}

/// The project folder of `start` (a folder): the nearest one at or above it holding a
/// `.ktlab/` folder or a `datasets.toml` file, as cargo finds its workspace.
pub fn project_root(start: &Path) -> Option<PathBuf> {
    let start = std::path::absolute(start).ok()?;
    start
        .ancestors()
        .find(|d| d.join(".ktlab").is_dir() || d.join("datasets.toml").is_file())
        .map(Path::to_path_buf)
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
    /// The store and results folders: as given, else `.ktlab/store` and `results` in
    /// the project folder of `anchor` (an experiment file, or the current folder when
    /// `None`), else in the current folder.
    pub fn locate(&self, anchor: Option<&Path>) -> Located {
        let start = match anchor {
            Some(file) => file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")),
            None => Path::new("."),
        };
        let project = project_root(start);
        let base = project.clone().unwrap_or_default();
        Located {
            store: self.store.clone().unwrap_or_else(|| base.join(STORE_IN_PROJECT)),
            results: self.results.clone().unwrap_or_else(|| base.join(RESULTS_IN_PROJECT)),
            project,
        }
    }

    pub fn load(cli: &CliSettings) -> Result<Settings, Box<figment::Error>> {
        Figment::from(Serialized::defaults(Settings::default()))
            .merge(Env::prefixed("KTLAB_").only(&["store", "results", "datasets", "log_format"]))
            .merge(Serialized::defaults(cli))
            .extract()
            .map_err(Box::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_nearest_project_folder_above_the_experiment() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::path::absolute(tmp.path()).unwrap();
        std::fs::write(root.join("datasets.toml"), "").unwrap();
        std::fs::create_dir_all(root.join("exps/deep")).unwrap();
        let exp = root.join("exps/deep/e.toml");
        let located = Settings::default().locate(Some(&exp));
        assert_eq!(located.project.as_deref(), Some(root.as_path()));
        assert_eq!(located.store, root.join(".ktlab/store"));
        assert_eq!(located.results, root.join("results"));
        // A nearer `.ktlab/` wins; a store given explicitly is kept as given.
        std::fs::create_dir_all(root.join("exps/.ktlab")).unwrap();
        assert_eq!(Settings::default().locate(Some(&exp)).store, root.join("exps/.ktlab/store"));
        let given = Settings {
            store: Some("s".into()),
            ..Default::default()
        };
        let located = given.locate(Some(&exp));
        assert_eq!((located.store, located.results), (PathBuf::from("s"), root.join("exps/results")));
    }
}
