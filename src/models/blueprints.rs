//! Which layer description each architecture has, and the checks that need it without
//! building any weight: full validation of a [`NetConfig`], the smallest input an
//! architecture accepts, and whether a probe layer name exists.
use super::alexnet;
use super::arch::{Arch, NetConfig};
use super::error::ModelError;
use super::layers::{self, Blueprint};
use super::resnet;
use super::vgg;

/// The layer description of `cfg`'s architecture, with a `classes`-way head when set.
pub(crate) fn blueprint(cfg: &NetConfig, classes: Option<i64>) -> Result<Blueprint, ModelError> {
    match cfg.arch {
        Arch::Alexnet | Arch::AlexnetSmall => alexnet::blueprint(cfg, classes),
        Arch::Vgg16 | Arch::Vgg16Small => vgg::blueprint(cfg, classes),
        Arch::Resnet18 | Arch::Resnet18Small => resnet::blueprint(cfg, classes),
    }
}

impl Arch {
    /// Smallest input side (px) the architecture accepts: every layer must produce a non-empty
    /// output and the input must be at least the total downsampling factor.
    /// alexnet 63, vgg16 32, resnet18 32, alexnet-small 16, vgg16-small 16, resnet18-small 8.
    pub fn min_image_size(self) -> i64 {
        let cfg = NetConfig::new(self);
        let bp = blueprint(&cfg, None).expect("width 1.0 leaves every layer with channels");
        layers::min_image_size(&bp.backbone, cfg.in_channels)
    }
}

impl NetConfig {
    /// Full validation, without allocating any weight.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.validate_scalars()?;
        let bp = blueprint(self, None)?;
        let min = layers::min_image_size(&bp.backbone, self.in_channels);
        if self.image_size < min {
            return Err(ModelError::ImageTooSmall {
                arch: self.arch.to_string(),
                min,
                got: self.image_size,
            });
        }
        Ok(())
    }
}

impl NetConfig {
    /// Multiply-accumulates of one image through the backbone at `image_size` (a `classes`-way
    /// head left out): the cost per image that time estimates scale by; `None` for a
    /// configuration that does not build.
    pub fn macs_per_image(&self) -> Option<f64> {
        let bp = blueprint(self, None).ok()?;
        layers::macs(
            &bp.backbone,
            layers::Shape::Map {
                c: self.in_channels,
                h: self.image_size,
                w: self.image_size,
            },
        )
    }
}

impl NetConfig {
    /// Trainable values of the backbone (the `classes`-way head left out); `None` for a
    /// configuration that does not build.
    pub fn parameter_count(&self) -> Option<f64> {
        let bp = blueprint(self, None).ok()?;
        layers::parameters(&bp.backbone, self.input_shape())
    }

    /// Values of the backbone's layer outputs for one image at `image_size`: their sum and
    /// the largest layer's input and output together (see [`layers::activations`]).
    pub fn activation_values(&self) -> Option<(f64, f64)> {
        let bp = blueprint(self, None).ok()?;
        layers::activations(&bp.backbone, self.input_shape())
    }

    fn input_shape(&self) -> layers::Shape {
        layers::Shape::Map {
            c: self.in_channels,
            h: self.image_size,
            w: self.image_size,
        }
    }

    /// The shape (`[C, h, w]`, or `[d]` after flattening) of the backbone's tap `name` (a
    /// name or alias) at `image_size`, without building any weight; `None` when there is
    /// no such tap or the configuration does not build.
    pub fn tap_dims(&self, name: &str) -> Option<Vec<i64>> {
        let bp = blueprint(self, None).ok()?;
        let name = bp
            .aliases
            .iter()
            .find(|(alias, _)| *alias == name)
            .map_or(name, |(_, canonical)| *canonical);
        let input = layers::Shape::Map {
            c: self.in_channels,
            h: self.image_size,
            w: self.image_size,
        };
        let shapes = layers::propagate(&bp.backbone, input)?;
        bp.backbone
            .iter()
            .zip(shapes)
            .find(|(spec, _)| matches!(spec, layers::Spec::Tap(n) if *n == name))
            .map(|(_, shape)| shape.dims())
    }
}

/// Checks a probe layer name (or alias) for an architecture without building any weights,
/// so that planning can refuse an unknown layer before anything runs.
pub fn check_layer_name(cfg: &NetConfig, name: &str) -> Result<(), ModelError> {
    let bp = blueprint(cfg, Some(1))?;
    let names: Vec<&str> = bp
        .backbone
        .iter()
        .chain(&bp.head)
        .filter_map(|s| match s {
            layers::Spec::Tap(n) => Some(*n),
            _ => None,
        })
        .collect();
    if names.contains(&name) || bp.aliases.iter().any(|(alias, _)| *alias == name) {
        return Ok(());
    }
    let mut valid: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    valid.extend(bp.aliases.iter().map(|(alias, canonical)| format!("{alias} (= {canonical})")));
    Err(ModelError::UnknownLayer {
        arch: cfg.arch.to_string(),
        name: name.to_string(),
        valid: valid.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_architecture_is_valid_at_its_default_size() {
        let names: Vec<String> = Arch::ALL.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            names,
            ["alexnet", "alexnet-small", "vgg16", "vgg16-small", "resnet18", "resnet18-small"]
        );
        for arch in Arch::ALL {
            let size = super::super::arch::default_image_size(arch);
            assert!(size >= arch.min_image_size(), "{arch}");
            assert!(NetConfig::new(arch).validate().is_ok());
        }
    }

    #[test]
    fn layer_names_are_checked_without_weights() {
        let cfg = NetConfig::new(Arch::Resnet18Small);
        assert_eq!(check_layer_name(&cfg, "conv3"), Ok(()));
        assert_eq!(check_layer_name(&cfg, "layer4"), Ok(()));
        match check_layer_name(&cfg, "conv9") {
            Err(ModelError::UnknownLayer { name, valid, .. }) => {
                assert_eq!(name, "conv9");
                assert!(valid.contains("conv5 (= layer4)"), "{valid}");
            }
            other => panic!("expected UnknownLayer, got {other:?}"),
        }
    }

    #[test]
    fn macs_per_image_match_the_published_counts_and_scale_with_width_and_side() {
        // torchvision's counts of the whole networks: resnet18 1.81 GMACs (its fc 0.5 M),
        // vgg16 15.47 (its classifier 0.12 G); this Caffe-style alexnet has no groups:
        // conv1..5 105 + 448 + 150 + 224 + 150 M = 1.077 G (by hand, from its tap shapes).
        let g = |arch| NetConfig::new(arch).macs_per_image().unwrap() / 1e9;
        assert!((g(Arch::Resnet18) - 1.81).abs() < 0.02, "{}", g(Arch::Resnet18));
        assert!((g(Arch::Vgg16) - 15.35).abs() < 0.05, "{}", g(Arch::Vgg16));
        assert!((g(Arch::Alexnet) - 1.077).abs() < 0.002, "{}", g(Arch::Alexnet));
        let small = NetConfig::new(Arch::AlexnetSmall);
        let half = NetConfig {
            width: 0.5,
            ..small.clone()
        };
        let big = NetConfig {
            image_size: 64,
            ..small.clone()
        };
        let (m, h, b) = (
            small.macs_per_image().unwrap(),
            half.macs_per_image().unwrap(),
            big.macs_per_image().unwrap(),
        );
        assert!((m / h - 4.0).abs() < 0.5, "half the width, about a quarter: {m} {h}");
        assert!((b / m - 4.0).abs() < 0.8, "twice the side, about four times: {b} {m}");
    }
}
