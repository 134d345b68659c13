//! What a network is, before it is built: the architectures ([`Arch`], with their names and
//! default input sizes) and the knobs shared by all of them ([`NetConfig`]). Everything else
//! in `models/` points here; checks that need an architecture's layers live in
//! `blueprints.rs`.
use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use super::error::ModelError;

/// Tap names that resolve on every architecture, shallow to deep.
pub const PROBE_LAYERS: [&str; 5] = ["conv1", "conv2", "conv3", "conv4", "conv5"];

/// A supported network architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Arch {
    /// Caffe-style AlexNet (96-256-384-384-256) for 224/227 px inputs.
    #[serde(rename = "alexnet")]
    Alexnet,
    /// AlexNet's five-conv structure for 32-96 px inputs.
    #[serde(rename = "alexnet-small")]
    AlexnetSmall,
    /// torchvision VGG-16 (`vgg16` / `vgg16_bn`).
    #[serde(rename = "vgg16")]
    Vgg16,
    /// VGG-16's 13 convs for 32-96 px inputs, with a small classifier.
    #[serde(rename = "vgg16-small")]
    Vgg16Small,
    /// torchvision ResNet-18.
    #[serde(rename = "resnet18")]
    Resnet18,
    /// CIFAR-style ResNet-18 (3x3 stem, no max-pool) for 32-96 px inputs.
    #[serde(rename = "resnet18-small")]
    Resnet18Small,
}

impl Arch {
    /// Every architecture, in a stable order.
    pub const ALL: [Arch; 6] = [
        Arch::Alexnet,
        Arch::AlexnetSmall,
        Arch::Vgg16,
        Arch::Vgg16Small,
        Arch::Resnet18,
        Arch::Resnet18Small,
    ];

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Alexnet => "alexnet",
            Arch::AlexnetSmall => "alexnet-small",
            Arch::Vgg16 => "vgg16",
            Arch::Vgg16Small => "vgg16-small",
            Arch::Resnet18 => "resnet18",
            Arch::Resnet18Small => "resnet18-small",
        }
    }

    /// Whether this is a variant for small (32-96 px) images.
    pub fn is_small(self) -> bool {
        matches!(self, Arch::AlexnetSmall | Arch::Vgg16Small | Arch::Resnet18Small)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Read by name, refusing any other with every valid name: "unknown architecture
/// `alexnet-smol`, expected one of `alexnet`, `alexnet-small`, ...".
impl<'de> Deserialize<'de> for Arch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = Arch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "one of {}", arch_names())
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Arch, E> {
                s.parse().map_err(|e: ModelError| E::custom(e))
            }
        }
        d.deserialize_str(Name)
    }
}

/// "`alexnet`, `alexnet-small`, ...": every architecture's name.
fn arch_names() -> String {
    Arch::ALL.map(|a| format!("`{}`", a.name())).join(", ")
}

impl FromStr for Arch {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| ModelError::UnknownArch {
                name: s.to_string(),
                valid: arch_names(),
            })
    }
}

/// Input side (px) an architecture is designed for: 224 for the full-size (ImageNet-style)
/// networks, 32 for the small (CIFAR-style) ones. Small variants accept up to ~96 px; any
/// size from [`Arch::min_image_size`] upwards runs.
pub fn default_image_size(arch: Arch) -> i64 {
    if arch.is_small() {
        32
    } else {
        224
    }
}

fn default_width() -> f64 {
    1.0
}

fn default_in_channels() -> i64 {
    3
}

/// What to build: architecture plus the knobs shared by all architectures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    pub arch: Arch,
    /// Channel multiplier applied to every conv and hidden fc layer (default 1.0).
    #[serde(default = "default_width")]
    pub width: f64,
    /// BatchNorm after every conv (AlexNet/VGG; ResNet always has it).
    #[serde(default)]
    pub batch_norm: bool,
    /// Input channels: 3 for RGB, 1 for grayscale.
    #[serde(default = "default_in_channels")]
    pub in_channels: i64,
    /// Input side in px (images are square).
    pub image_size: i64,
}

impl NetConfig {
    /// Defaults: width 1.0, no BN, RGB, the architecture's default image size.
    pub fn new(arch: Arch) -> Self {
        NetConfig {
            arch,
            width: 1.0,
            batch_norm: false,
            in_channels: 3,
            image_size: default_image_size(arch),
        }
    }

    /// Whether BatchNorm layers are present (always for ResNets).
    pub fn has_batch_norm(&self) -> bool {
        self.batch_norm || matches!(self.arch, Arch::Resnet18 | Arch::Resnet18Small)
    }

    /// Checks every value that does not depend on the layer structure.
    pub(crate) fn validate_scalars(&self) -> Result<(), ModelError> {
        if !(self.width.is_finite() && self.width > 0.0) {
            return Err(ModelError::InvalidWidth(self.width));
        }
        if self.in_channels < 1 {
            return Err(ModelError::InvalidInChannels(self.in_channels));
        }
        Ok(())
    }
}

/// VISSL pools each AlexNet conv layer to about 9,000 values at 224 px (e.g. conv1
/// 96x10x10, conv5 256x6x6). For images under 128 px we aim at about 2,000 values, which
/// keeps probes on small images comparably sized across layers.
pub fn default_pooled_dim(image_size: usize) -> usize {
    if image_size >= 128 {
        9216
    } else {
        2048
    }
}

/// The side `s` a `c`-channel map of side `h` is average-pooled to so that `c * s * s` is
/// nearest to `target` (at least 1, at most `h`): the probes' pooled features.
pub fn pooled_side(c: i64, h: i64, target: usize) -> i64 {
    ((target as f64 / c as f64).sqrt().round() as i64).clamp(1, h.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_names_round_trip() {
        for arch in Arch::ALL {
            assert_eq!(arch.to_string().parse::<Arch>(), Ok(arch));
        }
        assert_eq!("vgg16-small".parse::<Arch>(), Ok(Arch::Vgg16Small));
        match "vgg19".parse::<Arch>() {
            Err(ModelError::UnknownArch { valid, .. }) => assert!(valid.contains("resnet18-small")),
            other => panic!("expected UnknownArch, got {other:?}"),
        }
    }

    #[derive(Debug, Deserialize, Serialize)]
    struct Stage {
        arch: Arch,
    }

    #[test]
    fn arch_deserializes_by_name_and_lists_every_name_otherwise() {
        let s: Stage = toml::from_str("arch = \"resnet18-small\"").expect("a known name");
        assert_eq!(s.arch, Arch::Resnet18Small);
        let err = toml::from_str::<Stage>("arch = \"alexnet-smol\"").unwrap_err();
        assert_eq!(
            err.message(),
            "unknown architecture `alexnet-smol`, expected one of `alexnet`, `alexnet-small`, `vgg16`, \
             `vgg16-small`, `resnet18`, `resnet18-small`"
        );
        let err = toml::from_str::<Stage>("arch = 3").unwrap_err();
        assert!(
            err.message().contains("expected one of `alexnet`, `alexnet-small`"),
            "{}",
            err.message()
        );
        // Serialized by name, as keys have always had it.
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"arch":"resnet18-small"}"#);
    }

    #[test]
    fn default_image_sizes_follow_the_size_class() {
        for arch in Arch::ALL {
            assert_eq!(default_image_size(arch), if arch.is_small() { 32 } else { 224 });
            assert_eq!(NetConfig::new(arch).image_size, default_image_size(arch));
        }
    }
}
