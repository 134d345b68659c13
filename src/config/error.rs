//! Configuration errors: every one names the file, and where it can the line, column and key.
use std::fmt;
use std::path::PathBuf;

/// Most errors a report lists; the rest are counted ("... and N more errors").
pub const MAX_REPORTED_ERRORS: usize = 20;

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
    /// Several errors found in one pass (at most [`MAX_REPORTED_ERRORS`] listed, `more` not).
    #[error("{}", ListOf(errors, *more))]
    Many { errors: Vec<ConfigError>, more: usize },
}

impl ConfigError {
    /// Bundles errors found in one pass: none is `None`, one is itself, several become
    /// [`ConfigError::Many`] listing the first [`MAX_REPORTED_ERRORS`] (nested lists flattened).
    pub fn collect(errors: Vec<ConfigError>) -> Option<ConfigError> {
        let mut flat = Vec::new();
        let mut more = 0;
        for e in errors {
            match e {
                ConfigError::Many { errors, more: m } => {
                    flat.extend(errors);
                    more += m;
                }
                e => flat.push(e),
            }
        }
        if flat.len() > MAX_REPORTED_ERRORS {
            more += flat.len() - MAX_REPORTED_ERRORS;
            flat.truncate(MAX_REPORTED_ERRORS);
        }
        match flat.len() {
            0 => None,
            1 if more == 0 => flat.pop(),
            _ => Some(ConfigError::Many { errors: flat, more }),
        }
    }
}

/// Display helper for `ConfigError::Many`: one error per paragraph.
struct ListOf<'a>(&'a [ConfigError], usize);

impl fmt::Display for ListOf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{e}")?;
        }
        if self.1 > 0 {
            let s = if self.1 == 1 { "" } else { "s" };
            write!(f, "\n\n... and {} more error{s}", self.1)?;
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn located(line: usize, key: &str) -> ConfigError {
        ConfigError::Located {
            file: PathBuf::from("e.toml"),
            line,
            col: 3,
            key: key.to_string(),
            message: "expected a whole number, found 2.5".into(),
            hint: None,
        }
    }

    #[test]
    fn many_lists_each_error_in_its_own_paragraph() {
        let e = ConfigError::Many {
            errors: vec![located(4, "stages.t.epochs"), located(9, "stages.p.k")],
            more: 0,
        };
        assert_eq!(
            e.to_string(),
            "e.toml:4:3: `stages.t.epochs`: expected a whole number, found 2.5\n\n\
             e.toml:9:3: `stages.p.k`: expected a whole number, found 2.5"
        );
    }

    #[test]
    fn many_counts_what_it_leaves_out() {
        let e = ConfigError::Many {
            errors: vec![located(1, "a"), located(2, "b")],
            more: 3,
        };
        assert!(
            e.to_string()
                .ends_with("`b`: expected a whole number, found 2.5\n\n... and 3 more errors"),
            "{e}"
        );
    }

    #[test]
    fn collect_keeps_one_error_as_itself_and_caps_the_list() {
        assert!(ConfigError::collect(Vec::new()).is_none());
        let one = ConfigError::collect(vec![located(1, "a")]).expect("one error");
        assert!(matches!(one, ConfigError::Located { line: 1, .. }), "{one:?}");
        let many = ConfigError::collect((1..=25).map(|l| located(l, "k")).collect()).expect("errors");
        match many {
            ConfigError::Many { errors, more } => {
                assert_eq!(errors.len(), MAX_REPORTED_ERRORS);
                assert_eq!(more, 5);
            }
            other => panic!("expected Many, got {other:?}"),
        }
    }
}
