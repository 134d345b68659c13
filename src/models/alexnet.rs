//! AlexNet as used in the self-supervision literature (the *target* network of knowledge
//! transfer), in a full-size variant for 224/227 px and a small variant for 32-96 px images.
//!
//! # `alexnet`
//! Caffe-style channel counts (96-256-384-384-256, no LRN, optional BN after every conv as in
//! DeepCluster-style SSL AlexNets), conv1 11x11 stride 4 with padding 2 so that 224 and 227 px
//! inputs both give 6x6 after pool5; max-pools 3x3 stride 2 after conv1, conv2 and conv5;
//! adaptive average pooling to 6x6 (torchvision's `avgpool`); fc6/fc7 with 4096 units, dropout 0.5.
//!
//! Tap shapes at 224 px, width 1.0: conv1 `[96, 55, 55]`, conv2 `[256, 27, 27]`,
//! conv3 `[384, 13, 13]`, conv4 `[384, 13, 13]`, conv5 `[256, 13, 13]`, fc6/fc7 `[4096]`;
//! features `256*6*6 = 9216`.
//!
//! ## Variable names (torchvision `AlexNet` module indices)
//! | layer | without BN     | with BN (`batch_norm = true`)      |
//! |-------|----------------|------------------------------------|
//! | conv1 | `features.0`   | `features.0`, BN `features.1`      |
//! | conv2 | `features.3`   | `features.4`, BN `features.5`      |
//! | conv3 | `features.6`   | `features.8`, BN `features.9`      |
//! | conv4 | `features.8`   | `features.11`, BN `features.12`    |
//! | conv5 | `features.10`  | `features.14`, BN `features.15`    |
//! | fc6   | `classifier.1` | `classifier.1`                     |
//! | fc7   | `classifier.4` | `classifier.4`                     |
//! | fc8   | `classifier.6` | `classifier.6`                     |
//!
//! Equivalent PyTorch (no BN; with BN insert `BatchNorm2d` after every conv, shifting the
//! indices like torchvision's `vgg*_bn`):
//! ```text
//! features = Sequential(Conv2d(3,96,11,4,2), ReLU, MaxPool2d(3,2),
//!                       Conv2d(96,256,5,1,2), ReLU, MaxPool2d(3,2),
//!                       Conv2d(256,384,3,1,1), ReLU, Conv2d(384,384,3,1,1), ReLU,
//!                       Conv2d(384,256,3,1,1), ReLU, MaxPool2d(3,2))
//! avgpool = AdaptiveAvgPool2d(6)
//! classifier = Sequential(Dropout, Linear(9216,4096), ReLU, Dropout, Linear(4096,4096), ReLU,
//!                         Linear(4096,classes))
//! ```
//!
//! # `alexnet-small`
//! The same five convs and three pools for small images: conv1 5x5 stride 2 (padding 2; the
//! role of AlexNet's 11x11 stride 4, halving instead of quartering), conv2 5x5, conv3-5 3x3,
//! size-preserving; pools 3x3 stride 2 padding 1 (halving, rounded up); adaptive average
//! pooling to 2x2; fc6/fc7 with 4096 units. Names as the table above, without-BN/with-BN
//! columns alike. At 32 px this costs about a quarter of a stride-1 conv1 (conv2 runs at 8x8
//! instead of 16x16), which keeps CPU experiments in minutes.
//!
//! Tap shapes at 32 px, width 1.0: conv1 `[96, 16, 16]`, conv2 `[256, 8, 8]`,
//! conv3 `[384, 4, 4]`, conv4 `[384, 4, 4]`, conv5 `[256, 4, 4]`, fc6/fc7 `[4096]`;
//! features `256*2*2 = 1024`.
use super::arch::{Arch, NetConfig};
use super::error::ModelError;
use super::layers::{scaled, Blueprint, SeqBuilder, Spec, WeightInit};

/// Describes `alexnet` or `alexnet-small` for `cfg`, with a classifier when `classes` is set.
pub(crate) fn blueprint(cfg: &NetConfig, classes: Option<i64>) -> Result<Blueprint, ModelError> {
    let small = cfg.arch == Arch::AlexnetSmall;
    let bn = cfg.batch_norm;
    let c1 = scaled(cfg, 96, "conv1")?;
    let c2 = scaled(cfg, 256, "conv2")?;
    let c3 = scaled(cfg, 384, "conv3")?;
    let c4 = scaled(cfg, 384, "conv4")?;
    let c5 = scaled(cfg, 256, "conv5")?;
    // Halving pools: unpadded 3x3/2 as in AlexNet; padded on small images so sizes stay even.
    let pool_pad = if small { 1 } else { 0 };

    let mut f = SeqBuilder::new("features");
    if small {
        f.conv_bn_relu(c1, 5, 2, 2, bn); // [B, 96, 16, 16]
    } else {
        f.conv_bn_relu(c1, 11, 4, 2, bn); // [B, 96, 55, 55]
    }
    f.tap("conv1");
    f.max_pool(3, 2, pool_pad); // [B, 96, 27, 27] | small: [B, 96, 8, 8]
    f.conv_bn_relu(c2, 5, 1, 2, bn); // [B, 256, 27, 27] | [B, 256, 8, 8]
    f.tap("conv2");
    f.max_pool(3, 2, pool_pad); // [B, 256, 13, 13] | [B, 256, 4, 4]
    f.conv_bn_relu(c3, 3, 1, 1, bn); // [B, 384, 13, 13] | [B, 384, 4, 4]
    f.tap("conv3");
    f.conv_bn_relu(c4, 3, 1, 1, bn); // [B, 384, 13, 13] | [B, 384, 4, 4]
    f.tap("conv4");
    f.conv_bn_relu(c5, 3, 1, 1, bn); // [B, 256, 13, 13] | [B, 256, 4, 4]
    f.tap("conv5");
    f.max_pool(3, 2, pool_pad); // [B, 256, 6, 6] | [B, 256, 2, 2]

    let pooled = if small { 2 } else { 6 };
    let mut backbone = f.finish();
    backbone.push(Spec::AdaptiveAvgPool { size: pooled }); // [B, 256, 6, 6] | [B, 256, 2, 2]
    backbone.push(Spec::Flatten); // [B, 9216] | [B, 1024]

    let head = match classes {
        None => Vec::new(),
        Some(classes) => {
            let hidden = scaled(cfg, 4096, "fc6")?;
            let mut c = SeqBuilder::new("classifier");
            c.dropout(0.5);
            c.linear(hidden, WeightInit::TorchDefault); // [B, 4096]
            c.relu();
            c.tap("fc6");
            c.dropout(0.5);
            c.linear(hidden, WeightInit::TorchDefault); // [B, 4096]
            c.relu();
            c.tap("fc7");
            c.linear(classes, WeightInit::TorchDefault); // [B, classes]
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
    use super::super::net::testing::{cfg, check_network, zero_batch};
    use super::super::net::Network;
    use super::*;
    use tch::{nn, Device};

    #[test]
    fn alexnet_quarter_width_shapes() {
        // Channels 96/4 = 24, 256/4 = 64, 384/4 = 96; fc 4096/4 = 1024.
        let expected: &[(&str, &[i64])] = &[
            ("conv1", &[24, 55, 55]),
            ("conv2", &[64, 27, 27]),
            ("conv3", &[96, 13, 13]),
            ("conv4", &[96, 13, 13]),
            ("conv5", &[64, 13, 13]),
            ("fc6", &[1024]),
            ("fc7", &[1024]),
        ];
        for bn in [false, true] {
            check_network(&cfg(Arch::Alexnet, 0.25, bn, 224), 10, expected, 64 * 36);
        }
    }

    #[test]
    fn alexnet_227_px_gives_the_same_pool5() {
        let expected: &[(&str, &[i64])] = &[
            ("conv1", &[24, 56, 56]),
            ("conv2", &[64, 27, 27]),
            ("conv3", &[96, 13, 13]),
            ("conv4", &[96, 13, 13]),
            ("conv5", &[64, 13, 13]),
            ("fc6", &[1024]),
            ("fc7", &[1024]),
        ];
        check_network(&cfg(Arch::Alexnet, 0.25, false, 227), 3, expected, 64 * 36);
    }

    #[test]
    fn alexnet_small_shapes_full_and_half_width() {
        let full: &[(&str, &[i64])] = &[
            ("conv1", &[96, 16, 16]),
            ("conv2", &[256, 8, 8]),
            ("conv3", &[384, 4, 4]),
            ("conv4", &[384, 4, 4]),
            ("conv5", &[256, 4, 4]),
            ("fc6", &[4096]),
            ("fc7", &[4096]),
        ];
        let half: &[(&str, &[i64])] = &[
            ("conv1", &[48, 16, 16]),
            ("conv2", &[128, 8, 8]),
            ("conv3", &[192, 4, 4]),
            ("conv4", &[192, 4, 4]),
            ("conv5", &[128, 4, 4]),
            ("fc6", &[2048]),
            ("fc7", &[2048]),
        ];
        for bn in [false, true] {
            check_network(&cfg(Arch::AlexnetSmall, 1.0, bn, 32), 10, full, 1024);
            check_network(&cfg(Arch::AlexnetSmall, 0.5, bn, 32), 10, half, 128 * 4);
        }
    }

    #[test]
    fn alexnet_small_at_96_px_pools_to_the_same_features() {
        let expected: &[(&str, &[i64])] = &[
            ("conv1", &[48, 48, 48]),
            ("conv2", &[128, 24, 24]),
            ("conv3", &[192, 12, 12]),
            ("conv4", &[192, 12, 12]),
            ("conv5", &[128, 12, 12]),
            ("fc6", &[2048]),
            ("fc7", &[2048]),
        ];
        check_network(&cfg(Arch::AlexnetSmall, 0.5, true, 96), 5, expected, 128 * 4);
    }

    #[test]
    fn grayscale_input_changes_only_conv1() {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut c = cfg(Arch::AlexnetSmall, 0.5, false, 32);
        c.in_channels = 1;
        let net = Network::backbone(&vs.root(), &c).expect("valid config");
        let w = vs.variables();
        assert_eq!(w["features.0.weight"].size(), [48, 1, 5, 5]);
        let out = net.forward(&zero_batch(&c, 2), false);
        assert_eq!(out.size(), [2, 128 * 4]);
    }

    fn names(bn: bool) -> Vec<String> {
        let vs = nn::VarStore::new(Device::Cpu);
        let c = cfg(Arch::AlexnetSmall, 0.25, bn, 32);
        Network::classifier(&vs.root(), &c, 7).expect("valid config");
        let mut names: Vec<String> = vs.variables().into_keys().collect();
        names.sort();
        names
    }

    #[test]
    fn variable_names_follow_the_documented_mapping() {
        let weights = |v: Vec<String>| -> Vec<String> { v.into_iter().filter(|n| n.ends_with(".weight")).collect() };
        assert_eq!(
            weights(names(false)),
            [
                "classifier.1.weight",
                "classifier.4.weight",
                "classifier.6.weight",
                "features.0.weight",
                "features.10.weight",
                "features.3.weight",
                "features.6.weight",
                "features.8.weight",
            ]
        );
        assert_eq!(
            weights(names(true)),
            [
                "classifier.1.weight",
                "classifier.4.weight",
                "classifier.6.weight",
                "features.0.weight",
                "features.1.weight",
                "features.11.weight",
                "features.12.weight",
                "features.14.weight",
                "features.15.weight",
                "features.4.weight",
                "features.5.weight",
                "features.8.weight",
                "features.9.weight",
            ]
        );
        assert!(names(true).contains(&"features.15.running_var".to_string()));
    }
}
