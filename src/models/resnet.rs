//! ResNet-18 in torchvision's layout (`conv1`, `bn1`, `layer1`..`layer4`, `fc`) and a
//! CIFAR-style small variant (3x3 stride-1 stem, no max-pool) for 32-96 px images.
//!
//! BatchNorm is always present (`batch_norm` is ignored); convs have no bias. Blocks are
//! torchvision's `BasicBlock` (`layerN.M.conv1/bn1/conv2/bn2`, and `layerN.0.downsample.0/1`
//! where the stride or width changes). The head is global average pooling + `fc`.
//!
//! # Probe points
//! Canonical: `conv1` (stem, after bn1 + ReLU, before the max-pool), then `layer1`..`layer4`
//! (block outputs, post-ReLU). So that one probe configuration fits every architecture,
//! `conv2`..`conv5` are aliases of `layer1`..`layer4`.
//!
//! Tap shapes, `resnet18` at 224 px: conv1 `[64, 112, 112]`, layer1 `[64, 56, 56]`,
//! layer2 `[128, 28, 28]`, layer3 `[256, 14, 14]`, layer4 `[512, 7, 7]`; features `512`.
//! `resnet18-small` at 32 px: conv1 `[64, 32, 32]`, layer1 `[64, 32, 32]`,
//! layer2 `[128, 16, 16]`, layer3 `[256, 8, 8]`, layer4 `[512, 4, 4]`; features `512`.
use super::arch::{Arch, NetConfig};
use super::error::ModelError;
use super::layers::{scaled, Blueprint, Spec, WeightInit};

/// `conv2`..`conv5` name the four residual stages.
const ALIASES: &[(&str, &str)] = &[("conv2", "layer1"), ("conv3", "layer2"), ("conv4", "layer3"), ("conv5", "layer4")];

/// Stage name, nominal channels, stride of its first block (two blocks per stage).
const STAGES: [(&str, i64, i64); 4] = [("layer1", 64, 1), ("layer2", 128, 2), ("layer3", 256, 2), ("layer4", 512, 2)];

/// Describes `resnet18` or `resnet18-small` for `cfg`, with an `fc` head when `classes` is set.
pub(crate) fn blueprint(cfg: &NetConfig, classes: Option<i64>) -> Result<Blueprint, ModelError> {
    let small = cfg.arch == Arch::Resnet18Small;
    let stem = scaled(cfg, 64, "conv1")?;
    let (kernel, stride, padding) = if small { (3, 1, 1) } else { (7, 2, 3) };
    let mut backbone = vec![
        Spec::Conv {
            path: "conv1".into(),
            out: stem,
            kernel,
            stride,
            padding,
            bias: false,
            init: WeightInit::KaimingFanOut,
        }, // [B, 64, 112, 112] | small: [B, 64, 32, 32]
        Spec::BatchNorm { path: "bn1".into() },
        Spec::Relu,
        Spec::Tap("conv1"),
    ];
    if !small {
        backbone.push(Spec::MaxPool {
            kernel: 3,
            stride: 2,
            padding: 1,
        }); // [B, 64, 56, 56]
    }
    // Full size at 224 px:          small at 32 px:
    // layer1 [B, 64, 56, 56]        [B, 64, 32, 32]
    // layer2 [B, 128, 28, 28]       [B, 128, 16, 16]
    // layer3 [B, 256, 14, 14]       [B, 256, 8, 8]
    // layer4 [B, 512, 7, 7]         [B, 512, 4, 4]
    for (stage, nominal, first_stride) in STAGES {
        let out = scaled(cfg, nominal, stage)?;
        for (block, stride) in [(0, first_stride), (1, 1)] {
            backbone.push(Spec::BasicBlock {
                path: format!("{stage}.{block}"),
                out,
                stride,
            });
        }
        backbone.push(Spec::Tap(stage));
    }
    backbone.push(Spec::AdaptiveAvgPool { size: 1 }); // [B, 512, 1, 1]
    backbone.push(Spec::Flatten); // [B, 512]

    let head = match classes {
        None => Vec::new(),
        Some(classes) => vec![Spec::Linear {
            path: "fc".into(),
            out: classes,
            init: WeightInit::TorchDefault,
        }], // [B, classes]
    };
    Ok(Blueprint {
        backbone,
        head,
        aliases: ALIASES,
    })
}

#[cfg(test)]
mod tests {
    use super::super::net::testing::{cfg, check_network};
    use super::super::net::Network;
    use super::*;
    use tch::{nn, Device};

    #[test]
    fn resnet18_quarter_width_shapes() {
        let expected: &[(&str, &[i64])] = &[
            ("conv1", &[16, 112, 112]),
            ("layer1", &[16, 56, 56]),
            ("layer2", &[32, 28, 28]),
            ("layer3", &[64, 14, 14]),
            ("layer4", &[128, 7, 7]),
        ];
        check_network(&cfg(Arch::Resnet18, 0.25, false, 224), 10, expected, 128);
    }

    #[test]
    fn resnet18_small_shapes_full_and_half_width() {
        let full: &[(&str, &[i64])] = &[
            ("conv1", &[64, 32, 32]),
            ("layer1", &[64, 32, 32]),
            ("layer2", &[128, 16, 16]),
            ("layer3", &[256, 8, 8]),
            ("layer4", &[512, 4, 4]),
        ];
        let half: &[(&str, &[i64])] = &[
            ("conv1", &[32, 32, 32]),
            ("layer1", &[32, 32, 32]),
            ("layer2", &[64, 16, 16]),
            ("layer3", &[128, 8, 8]),
            ("layer4", &[256, 4, 4]),
        ];
        check_network(&cfg(Arch::Resnet18Small, 1.0, false, 32), 10, full, 512);
        check_network(&cfg(Arch::Resnet18Small, 0.5, true, 32), 10, half, 256);
    }

    #[test]
    fn aliases_return_the_stage_outputs() {
        let c = cfg(Arch::Resnet18Small, 0.25, false, 32);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Network::backbone(&vs.root(), &c).expect("valid");
        let x = tch::Tensor::randn([2, 3, 32, 32], (tch::Kind::Float, Device::Cpu));
        let taps = net.taps(&x, &["conv5", "layer4", "conv2"], false).expect("aliases resolve");
        assert_eq!(taps[0].size(), [2, 128, 4, 4]);
        assert!(taps[0].equal(&taps[1]));
        assert_eq!(taps[2].size(), [2, 16, 32, 32]);
    }

    fn names(c: &NetConfig) -> Vec<String> {
        let vs = nn::VarStore::new(Device::Cpu);
        Network::classifier(&vs.root(), c, 10).expect("valid");
        let mut n: Vec<String> = vs.variables().into_keys().collect();
        n.sort();
        n
    }

    #[test]
    fn batch_norm_flag_is_irrelevant_and_names_match_torchvision() {
        let plain = names(&cfg(Arch::Resnet18Small, 0.25, false, 32));
        assert_eq!(plain, names(&cfg(Arch::Resnet18Small, 0.25, true, 32)));
        // torchvision resnet18 minus the 20 `num_batches_tracked` buffers: 122 - 20 = 102.
        assert_eq!(plain.len(), 102);
        for expected in [
            "bn1.running_mean",
            "conv1.weight",
            "fc.bias",
            "layer1.1.bn2.weight",
            "layer2.0.downsample.0.weight",
            "layer4.0.downsample.1.running_var",
        ] {
            assert!(plain.iter().any(|n| n == expected), "missing {expected}");
        }
        assert!(!plain.iter().any(|n| n.starts_with("layer1.0.downsample")));
        assert!(!plain.iter().any(|n| n.ends_with("conv1.bias")));
    }
}
