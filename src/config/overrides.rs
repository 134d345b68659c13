//! `--set KEY=VALUE`: overrides of any key of an experiment from the command line.
use std::str::FromStr;

use super::experiment::set_path;
use super::{ConfigError, Node, SourceFile};

/// One `--set` argument, parsed: a dotted key path and a TOML value (a bare word is a string).
#[derive(Clone, Debug)]
pub struct Override {
    pub arg: String,
    pub path: String,
    pub value: Node,
}

impl FromStr for Override {
    type Err = ConfigError;
    fn from_str(arg: &str) -> Result<Self, ConfigError> {
        let err = |m: &str| ConfigError::Set {
            arg: arg.to_string(),
            message: m.to_string(),
        };
        let (path, raw) = arg
            .split_once('=')
            .ok_or_else(|| err("expected KEY=VALUE, e.g. stages.clusters.k=8"))?;
        let path = path.trim();
        if path.is_empty() || path.split('.').any(|s| s.is_empty() || s.chars().any(char::is_whitespace)) {
            return Err(err("the key must be a dotted path such as stages.clusters.k"));
        }
        // Parse the value as TOML; fall back to a plain string for bare words.
        let doc = format!("v = {raw}");
        let file = SourceFile::for_set(arg, doc);
        let value = match Node::parse(file.clone()) {
            Ok(root) => root.lookup("v").cloned().ok_or_else(|| err("empty value"))?,
            Err(_) => {
                if raw.is_empty() {
                    return Err(err("empty value"));
                }
                let quoted = toml::Value::String(raw.to_string()).to_string();
                let file = SourceFile::for_set(arg, format!("v = {quoted}"));
                Node::parse(file)
                    .ok()
                    .and_then(|r| r.lookup("v").cloned())
                    .ok_or_else(|| err("cannot parse the value"))?
            }
        };
        Ok(Override {
            arg: arg.to_string(),
            path: path.to_string(),
            value,
        })
    }
}

impl Override {
    pub fn apply(&self, root: &mut Node) -> Result<(), ConfigError> {
        let segs: Vec<&str> = self.path.split('.').collect();
        let valid = matches!(
            segs.as_slice(),
            ["seed"] | ["device"] | ["name"] | ["description"] | ["stages", _, _]
        );
        if !valid {
            return Err(ConfigError::Set {
                arg: self.arg.clone(),
                message: format!(
                    "cannot set `{}`: expected `stages.<stage>.<key>`, `name`, `seed` or `device`",
                    self.path
                ),
            });
        }
        set_path(root, &self.path, self.value.clone(), &self.value).map_err(|e| match e {
            e @ ConfigError::Set { .. } => e,
            e => ConfigError::Set {
                arg: self.arg.clone(),
                message: strip_location(&e),
            },
        })
    }
}

fn strip_location(e: &ConfigError) -> String {
    match e {
        ConfigError::Located { message, hint, .. } => match hint {
            Some(h) => format!("{message} ({h})"),
            None => message.clone(),
        },
        other => other.to_string(),
    }
}
