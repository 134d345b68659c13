//! Parameters shared by the stages that build a network: architecture, width, batch norm.
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Node};
use crate::models::{Arch, NetConfig};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkParams {
    pub arch: Arch,
    #[serde(default = "one")]
    pub width: f64,
    /// Batch norm after every conv (default on, as in the SSL literature's AlexNets).
    #[serde(default = "yes")]
    pub batch_norm: bool,
    /// Input side in pixels (default: 32 for `-small` archs, 224 otherwise; filled in by
    /// [`NetworkParams::validate`]).
    #[serde(default)]
    pub image_size: usize,
}

fn yes() -> bool {
    true
}

fn one() -> f64 {
    1.0
}

impl NetworkParams {
    /// Fills in the architecture's image size when the table gives none, then validates.
    pub fn resolve(&mut self, table: &Node, prefix: &str) -> Result<(), ConfigError> {
        if table.lookup("image_size").is_none() {
            self.image_size = crate::models::default_image_size(self.arch) as usize;
        }
        self.validate(table, prefix)
    }

    /// Checks the width and sizes against the architecture.
    pub fn validate(&self, table: &Node, prefix: &str) -> Result<(), ConfigError> {
        let at = |key: &str| table.lookup(key).unwrap_or(table);
        if !(self.width.is_finite() && self.width > 0.0 && self.width <= 16.0) {
            return Err(at("width").error(
                &format!("{prefix}.width"),
                format!("expected a multiplier in (0, 16], found {}", self.width),
            ));
        }
        let size = self.image_size;
        if !(8..=1024).contains(&size) {
            return Err(at("image_size").error(&format!("{prefix}.image_size"), format!("expected 8..=1024, found {size}")));
        }
        self.config().validate().map_err(|e| {
            // Too small an image is the image size's fault when one was given.
            let key = match e {
                crate::models::error::ModelError::ImageTooSmall { .. } if table.lookup("image_size").is_some() => "image_size",
                _ => "arch",
            };
            at(key).error(&format!("{prefix}.{key}"), e.to_string())
        })?;
        Ok(())
    }

    pub fn config(&self) -> NetConfig {
        NetConfig {
            arch: self.arch,
            width: self.width,
            batch_norm: self.batch_norm,
            in_channels: 3,
            image_size: self.image_size as i64,
        }
    }
}
