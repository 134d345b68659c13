//! A configuration file's text, kept so that byte offsets become line and column.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ConfigError;

/// The text of one configuration file (or of a `--set` argument).
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

/// Limit on configuration file size: anything larger is certainly not a hand-written config.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// How the "path" of a `--set` argument's text begins (no file is named like an option).
const SET_PREFIX: &str = "--set ";

impl SourceFile {
    pub fn read(path: &Path) -> Result<Arc<SourceFile>, ConfigError> {
        let io = |e: std::io::Error| ConfigError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.is_dir() {
            return Err(ConfigError::Io {
                path: path.to_path_buf(),
                message: "is a directory, expected a TOML file".into(),
            });
        }
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::Io {
                path: path.to_path_buf(),
                message: format!(
                    "file is {} bytes; configuration files are limited to {} bytes",
                    meta.len(),
                    MAX_CONFIG_BYTES
                ),
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let offset = e.utf8_error().valid_up_to();
            let (line, col) = line_col(&String::from_utf8_lossy(&e.into_bytes()), offset);
            ConfigError::Located {
                file: path.to_path_buf(),
                line,
                col,
                key: String::new(),
                message: "file is not valid UTF-8".into(),
                hint: None,
            }
        })?;
        Ok(Arc::new(SourceFile {
            path: path.to_path_buf(),
            text,
        }))
    }

    pub fn inline(name: &str, text: String) -> Arc<SourceFile> {
        Arc::new(SourceFile {
            path: PathBuf::from(name),
            text,
        })
    }

    /// The text of one `--set` argument (`arg`: `KEY=VALUE` as given), so that errors in
    /// its value are blamed on the argument rather than on a file.
    pub fn for_set(arg: &str, text: String) -> Arc<SourceFile> {
        Self::inline(&format!("{SET_PREFIX}{arg}"), text)
    }

    /// The `--set` argument this text comes from, if it is one ([`SourceFile::for_set`]).
    pub fn set_argument(&self) -> Option<&str> {
        self.path.to_str()?.strip_prefix(SET_PREFIX)
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.text, offset)
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}
