//! Parameters shared by the stages that build a network: architecture, width, batch norm.
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Node};
use crate::models::{Arch, NetConfig};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkParams {
    pub arch: String,
    #[serde(default = "one")]
    pub width: f64,
    /// Batch norm after every conv (default on, as in the SSL literature's AlexNets).
    #[serde(default = "yes")]
    pub batch_norm: bool,
    /// Input side in pixels (default: 32 for `-small` archs, 224 otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
}

fn yes() -> bool {
    true
}

fn one() -> f64 {
    1.0
}

impl NetworkParams {
    /// Checks the architecture and sizes, filling in the image size.
    pub fn validate(&mut self, table: &Node, prefix: &str) -> Result<(), ConfigError> {
        let at = |key: &str| table.lookup(key).unwrap_or(table);
        let arch: Arch = self.arch.parse().map_err(|_| {
            let names: Vec<&str> = Arch::ALL.iter().map(|a| a.name()).collect();
            let hint =
                crate::config::did_you_mean(&self.arch, names.iter().copied()).or_else(|| Some(format!("one of {}", names.join(", "))));
            at("arch").error_hint(&format!("{prefix}.arch"), format!("unknown architecture `{}`", self.arch), hint)
        })?;
        if !(self.width.is_finite() && self.width > 0.0 && self.width <= 16.0) {
            return Err(at("width").error(
                &format!("{prefix}.width"),
                format!("expected a multiplier in (0, 16], found {}", self.width),
            ));
        }
        let size = self.image_size.unwrap_or(crate::models::default_image_size(arch) as usize);
        if !(8..=1024).contains(&size) {
            return Err(at("image_size").error(&format!("{prefix}.image_size"), format!("expected 8..=1024, found {size}")));
        }
        self.image_size = Some(size);
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
        let arch = self.arch.parse().unwrap_or(Arch::AlexnetSmall);
        NetConfig {
            arch,
            width: self.width,
            batch_norm: self.batch_norm,
            in_channels: 3,
            image_size: self.image_size.unwrap_or(32) as i64,
        }
    }
}
