//! VGG-16, the deep *pretext* network of knowledge transfer, in torchvision's layout
//! (`vgg16`, or `vgg16_bn` with `batch_norm = true`) and a small variant for 32-96 px images.
//!
//! # Layout
//! Five blocks of 3x3 convs (padding 1) — 2x64, 2x128, 3x256, 3x512, 3x512 channels, times the
//! width multiplier — each followed by a 2x2 stride-2 max-pool; then adaptive average pooling
//! (7x7 for `vgg16`, 1x1 for `vgg16-small`) and a classifier
//! `Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear` (`classifier.0/3/6`) with 4096 hidden
//! units (`vgg16`) or 512 (`vgg16-small`). Convs keep their bias with BN, as torchvision does.
//!
//! Variable names are torchvision's: without BN the convs are `features.{0,2,5,7,10,12,14,17,19,
//! 21,24,26,28}`; with BN they are `features.{0,3,7,10,14,17,20,24,27,30,34,37,40}`, each with
//! its BatchNorm at the next index.
//!
//! # Probe points
//! `conv1`..`conv5` are the outputs of the five blocks after the block's last ReLU and
//! *before* its pool; `fc6`/`fc7` are the post-ReLU hidden layers of the classifier.
//!
//! Tap shapes, `vgg16` at 224 px: conv1 `[64, 224, 224]`, conv2 `[128, 112, 112]`,
//! conv3 `[256, 56, 56]`, conv4 `[512, 28, 28]`, conv5 `[512, 14, 14]`, fc6/fc7 `[4096]`;
//! features `512*7*7 = 25088`. `vgg16-small` at 32 px: conv1 `[64, 32, 32]`,
//! conv2 `[128, 16, 16]`, conv3 `[256, 8, 8]`, conv4 `[512, 4, 4]`, conv5 `[512, 2, 2]`,
//! fc6/fc7 `[512]`; features `512`.
use super::arch::{Arch, NetConfig};
use super::error::ModelError;
use super::layers::{scaled, Blueprint, SeqBuilder, Spec, WeightInit};

/// VGG-16 ("configuration D"): per block, the nominal channels of its convs.
const BLOCKS: [(&str, &[i64]); 5] = [
    ("conv1", &[64, 64]),
    ("conv2", &[128, 128]),
    ("conv3", &[256, 256, 256]),
    ("conv4", &[512, 512, 512]),
    ("conv5", &[512, 512, 512]),
];

/// Describes `vgg16` or `vgg16-small` for `cfg`, with a classifier when `classes` is set.
pub(crate) fn blueprint(cfg: &NetConfig, classes: Option<i64>) -> Result<Blueprint, ModelError> {
    let small = cfg.arch == Arch::Vgg16Small;
    let mut f = SeqBuilder::new("features");
    // Full size at 224 px:          small at 32 px:
    // conv1 [B, 64, 224, 224]       [B, 64, 32, 32]
    // conv2 [B, 128, 112, 112]      [B, 128, 16, 16]
    // conv3 [B, 256, 56, 56]        [B, 256, 8, 8]
    // conv4 [B, 512, 28, 28]        [B, 512, 4, 4]
    // conv5 [B, 512, 14, 14]        [B, 512, 2, 2]
    for (tap, channels) in BLOCKS {
        for &nominal in channels {
            f.conv_bn_relu(scaled(cfg, nominal, tap)?, 3, 1, 1, cfg.batch_norm);
        }
        f.tap(tap);
        // The small variant keeps conv5 unpooled (the adaptive average pool follows), so
        // that it runs on 16 px inputs such as Jigsaw tiles of small images.
        if !(small && tap == "conv5") {
            f.max_pool(2, 2, 0); // halves H and W
        }
    }
    let pooled = if small { 1 } else { 7 };
    let mut backbone = f.finish();
    backbone.push(Spec::AdaptiveAvgPool { size: pooled }); // [B, 512, 7, 7] | [B, 512, 1, 1]
    backbone.push(Spec::Flatten); // [B, 25088] | [B, 512]

    let head = match classes {
        None => Vec::new(),
        Some(classes) => {
            let hidden = scaled(cfg, if small { 512 } else { 4096 }, "fc6")?;
            let mut c = SeqBuilder::new("classifier");
            c.linear(hidden, WeightInit::Normal(0.01)); // [B, 4096] | [B, 512]
            c.relu();
            c.tap("fc6");
            c.dropout(0.5);
            c.linear(hidden, WeightInit::Normal(0.01)); // [B, 4096] | [B, 512]
            c.relu();
            c.tap("fc7");
            c.dropout(0.5);
            c.linear(classes, WeightInit::Normal(0.01)); // [B, classes]
            c.finish()
        }
    };
    Ok(Blueprint {
        backbone,
        head,
        aliases: &[],
    })
}

#[cfg(test)]
mod tests {
    use super::super::net::testing::{cfg, check_network};
    use super::super::net::Network;
    use super::*;
    use tch::{nn, Device};

    #[test]
    fn vgg16_quarter_width_shapes() {
        let expected: &[(&str, &[i64])] = &[
            ("conv1", &[16, 224, 224]),
            ("conv2", &[32, 112, 112]),
            ("conv3", &[64, 56, 56]),
            ("conv4", &[128, 28, 28]),
            ("conv5", &[128, 14, 14]),
            ("fc6", &[1024]),
            ("fc7", &[1024]),
        ];
        for bn in [false, true] {
            check_network(&cfg(Arch::Vgg16, 0.25, bn, 224), 10, expected, 128 * 49);
        }
    }

    #[test]
    fn vgg16_small_shapes_full_and_half_width() {
        let full: &[(&str, &[i64])] = &[
            ("conv1", &[64, 32, 32]),
            ("conv2", &[128, 16, 16]),
            ("conv3", &[256, 8, 8]),
            ("conv4", &[512, 4, 4]),
            ("conv5", &[512, 2, 2]),
            ("fc6", &[512]),
            ("fc7", &[512]),
        ];
        let half: &[(&str, &[i64])] = &[
            ("conv1", &[32, 32, 32]),
            ("conv2", &[64, 16, 16]),
            ("conv3", &[128, 8, 8]),
            ("conv4", &[256, 4, 4]),
            ("conv5", &[256, 2, 2]),
            ("fc6", &[256]),
            ("fc7", &[256]),
        ];
        for bn in [false, true] {
            check_network(&cfg(Arch::Vgg16Small, 1.0, bn, 32), 10, full, 512);
            check_network(&cfg(Arch::Vgg16Small, 0.5, bn, 32), 10, half, 256);
        }
    }

    #[test]
    fn vgg16_small_at_64_px() {
        let expected: &[(&str, &[i64])] = &[
            ("conv1", &[32, 64, 64]),
            ("conv2", &[64, 32, 32]),
            ("conv3", &[128, 16, 16]),
            ("conv4", &[256, 8, 8]),
            ("conv5", &[256, 4, 4]),
            ("fc6", &[256]),
            ("fc7", &[256]),
        ];
        check_network(&cfg(Arch::Vgg16Small, 0.5, true, 64), 3, expected, 256);
    }

    fn conv_indices(bn: bool) -> Vec<usize> {
        let vs = nn::VarStore::new(Device::Cpu);
        Network::classifier(&vs.root(), &cfg(Arch::Vgg16Small, 0.125, bn, 32), 2).expect("valid config");
        let mut idx: Vec<usize> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.dim() == 4)
            .filter_map(|(name, _)| name.split('.').nth(1)?.parse().ok())
            .collect();
        idx.sort_unstable();
        idx
    }

    #[test]
    fn conv_indices_match_torchvision() {
        assert_eq!(conv_indices(false), [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]);
        assert_eq!(conv_indices(true), [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40]);
    }
}
