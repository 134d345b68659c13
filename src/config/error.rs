//! Configuration errors: every one names the file, and where it can the line, column and key.
use std::fmt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("{}", Located::from(self))]
    Located {
        file: PathBuf,
        line: usize,
        col: usize,
        key: String,
        message: String,
        hint: Option<String>,
    },
    #[error("{}: {message}", file.display())]
    File { file: PathBuf, message: String },
    #[error("invalid --set `{arg}`: {message}")]
    Set { arg: String, message: String },
}

/// Display helper for `ConfigError::Located`.
struct Located<'a>(&'a ConfigError);

impl<'a> From<&'a ConfigError> for Located<'a> {
    fn from(e: &'a ConfigError) -> Self {
        Located(e)
    }
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let ConfigError::Located {
            file,
            line,
            col,
            key,
            message,
            hint,
        } = self.0
        {
            write!(f, "{}:{line}:{col}: ", file.display())?;
            if !key.is_empty() {
                write!(f, "`{key}`: ")?;
            }
            write!(f, "{message}")?;
            if let Some(h) = hint {
                write!(f, "\n  help: {h}")?;
            }
        }
        Ok(())
    }
}

/// "did you mean `x`?" for the candidate nearest to `name`, if any is near enough.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(name, c);
        if score > 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}
