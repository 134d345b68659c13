//! How a training stage (`train`, `finetune`, a rotation `pretext`) crops its images:
//! CIFAR-style (the image resized whole, translated within a zero padding) or ImageNet's (a
//! random resized crop of the decoded original), and how its model then reads images whole
//! (resized whole, or the shorter side to 256/224 of the input and the centre square).
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Node};
use crate::data::Fit;

/// The training crop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CropKind {
    /// The image resized to the input side, translated by up to `crop_padding` pixels.
    #[default]
    Pad,
    /// A random resized crop of the original image (`crop_scale`, `crop_ratio`).
    RandomResized,
}

/// The keys of [`CropParams`].
pub(super) const CROP_KEYS: &[&str] = &["crop", "crop_scale", "crop_ratio"];

/// ImageNet's evaluation reads the centre 224 of the image resized to 256: the input side
/// over this ratio is the side resized to.
pub const CENTRE_CROP_RATIO: f64 = 0.875;

/// The crop options of a training stage. Keyed only with `crop = "random-resized"` (its
/// scale and ratio then too), so that every stage before them keeps its key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CropParams {
    #[serde(default, skip_serializing_if = "is_pad")]
    pub crop: CropKind,
    /// The share of the image's area a crop covers, drawn uniformly: `[0.08, 1.0]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop_scale: Option<[f64; 2]>,
    /// The crop's aspect ratio, drawn log-uniformly: `[0.75, 1.3333]` (3/4 to 4/3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop_ratio: Option<[f64; 2]>,
}

fn is_pad(c: &CropKind) -> bool {
    *c == CropKind::Pad
}

#[cfg(feature = "torch")]
use crate::train::batches::ResizedCrop;

impl CropParams {
    /// Checks the ranges and fills in ImageNet's defaults for a random resized crop.
    pub(super) fn validate(&mut self, table: &Node, prefix: &str) -> Result<(), ConfigError> {
        let at = |key: &str| table.lookup(key).unwrap_or(table);
        let err = |key: &str, msg: String| Err(at(key).error(&format!("{prefix}.{key}"), msg));
        if self.crop == CropKind::Pad {
            for (key, given) in [("crop_scale", self.crop_scale.is_some()), ("crop_ratio", self.crop_ratio.is_some())] {
                if given {
                    return err(key, format!("`{key}` applies to crop = \"random-resized\""));
                }
            }
            return Ok(());
        }
        let [s0, s1] = *self.crop_scale.get_or_insert([0.08, 1.0]);
        if !(s0 > 0.0 && s0 <= s1 && s1 <= 1.0) {
            return err(
                "crop_scale",
                format!("expected [min, max] with 0 < min <= max <= 1, found [{s0}, {s1}]"),
            );
        }
        let [r0, r1] = *self.crop_ratio.get_or_insert([3.0 / 4.0, 4.0 / 3.0]);
        if !(r0 > 0.0 && r0 <= r1 && r1.is_finite()) {
            return err("crop_ratio", format!("expected [min, max] with 0 < min <= max, found [{r0}, {r1}]"));
        }
        Ok(())
    }

    /// The random resized crop, if this is one.
    #[cfg(feature = "torch")]
    pub fn resized_crop(&self) -> Option<ResizedCrop> {
        (self.crop == CropKind::RandomResized).then(|| ResizedCrop {
            scale: self.crop_scale.unwrap_or(ResizedCrop::IMAGENET.scale),
            ratio: self.crop_ratio.unwrap_or(ResizedCrop::IMAGENET.ratio),
        })
    }

    /// How the trained model reads images whole at input side `size`: the centre crop
    /// after a random resized crop, else the whole image resized.
    pub fn eval_fit(&self, size: usize) -> Fit {
        match self.crop {
            CropKind::Pad => Fit::Squash,
            CropKind::RandomResized => Fit::CentreCrop {
                resize: (size as f64 / CENTRE_CROP_RATIO).round() as usize,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imagenet_evaluation_reads_the_centre_224_of_256() {
        let rrc = CropParams {
            crop: CropKind::RandomResized,
            ..Default::default()
        };
        assert_eq!(rrc.eval_fit(224), Fit::CentreCrop { resize: 256 });
        assert_eq!(CropParams::default().eval_fit(224), Fit::Squash);
        // Not keyed unless random-resized.
        assert_eq!(serde_json::to_value(CropParams::default()).unwrap(), serde_json::json!({}));
    }
}
