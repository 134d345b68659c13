//! An upsampling decoder on a backbone layer, for the dense pretext tasks (colourisation,
//! inpainting): the layer's feature map through a 3x3 conv (as many channels as the layer,
//! 16 to 256), then steps of x2 bilinear upsampling and a 3x3 conv halving the channels
//! (down to 16; ReLU after each) up to the output side (a last bilinear resize where the
//! side is not a power-of-two multiple), and a 1x1 conv to the output channels. Its variables are under `decoder.*`, outside the backbone that `features`,
//! the probes and `init` read; `model.json` records its sizes.
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::models::error::ModelError;
use crate::models::{NetConfig, Network};

/// The decoder's sizes, recorded in `model.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecoderHead {
    /// The backbone layer it reads (a tap name or alias).
    pub layer: String,
    /// Channels of its first conv (halved at each upsampling step, down to 16).
    pub channels: i64,
    /// Side of its output map.
    pub side: i64,
    /// Channels of its output (ab bins, ab values, RGB).
    pub out: i64,
}

/// The backbone with a decoder on one of its layers.
pub struct DenseNet {
    pub backbone: Network,
    head: DecoderHead,
    first: nn::Conv2D,
    ups: Vec<nn::Conv2D>,
    last: nn::Conv2D,
}

impl DenseNet {
    /// `root` is the variable store's root; the backbone's variables are named as in a
    /// plain network of `cfg`. `layer` must be one of its taps.
    pub fn new(root: &nn::Path, cfg: &NetConfig, layer: &str, side: i64, out: i64) -> Result<(DenseNet, DecoderHead), ModelError> {
        let backbone = Network::backbone(root, cfg)?;
        let shape = backbone.tap_shape(layer)?; // [C, h, w]
        let (c, h) = (shape[0], shape.get(1).copied().unwrap_or(1));
        let channels = c.clamp(16, 256);
        let p = root / "decoder";
        let conv = |name: &str, i: i64, o: i64, k: i64| {
            nn::conv2d(
                &p / name,
                i,
                o,
                k,
                nn::ConvConfig {
                    padding: k / 2,
                    ..Default::default()
                },
            )
        };
        let first = conv("conv0", c, channels, 3);
        let mut ups = Vec::new();
        let (mut at, mut width) = (h.max(1), channels);
        while at * 2 <= side {
            // Each doubling of the side halves the channels (down to 16), so every step
            // costs about the same and the full-resolution ones stay cheap.
            let next = (width / 2).max(16);
            ups.push(conv(&format!("up{}", ups.len() + 1), width, next, 3));
            (at, width) = (at * 2, next);
        }
        let last = conv("out", width, out, 1);
        let head = DecoderHead {
            layer: layer.to_string(),
            channels,
            side,
            out,
        };
        Ok((
            DenseNet {
                backbone,
                head: head.clone(),
                first,
                ups,
                last,
            },
            head,
        ))
    }

    /// `[B, out, side, side]` from images `[B, 3, S, S]`.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let tap = match self.backbone.taps(x, &[self.head.layer.as_str()], train) {
            Ok(mut t) => t.remove(0),
            // The layer was checked when the network was built.
            Err(e) => panic!("decoder layer: {e}"),
        };
        let mut h = tap.apply(&self.first).relu(); // [B, channels, h, w]
        for conv in &self.ups {
            let s = h.size();
            h = h.upsample_bilinear2d([s[2] * 2, s[3] * 2], false, None, None).apply(conv).relu();
        }
        let side = self.head.side;
        if h.size()[2] != side {
            h = h.upsample_bilinear2d([side, side], false, None, None);
        }
        h.apply(&self.last) // [B, out, side, side]
    }
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind};

    use super::*;
    use crate::models::net::testing;
    use crate::models::Arch;

    #[test]
    fn the_decoder_gives_its_side_and_channels_on_every_architecture_outside_the_backbone() {
        for (arch, layer) in [
            (Arch::AlexnetSmall, "conv5"),
            (Arch::Vgg16Small, "conv4"),
            (Arch::Resnet18Small, "conv5"),
            (Arch::AlexnetSmall, "conv2"),
        ] {
            for (side, out) in [(8, 261), (32, 3), (16, 2)] {
                let cfg = testing::cfg(arch, 0.25, true, 32);
                let vs = nn::VarStore::new(Device::Cpu);
                let (net, head) = DenseNet::new(&vs.root(), &cfg, layer, side, out).unwrap();
                assert_eq!((head.side, head.out), (side, out));
                let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
                let y = net.forward(&x, true);
                assert_eq!(y.size(), [2, out, side, side], "{arch} {layer}");
                assert_eq!(y.isfinite().all().int64_value(&[]), 1);
                let plain = nn::VarStore::new(Device::Cpu);
                Network::backbone(&plain.root(), &cfg).unwrap();
                let ours = vs.variables().into_keys().filter(|k| !k.starts_with("decoder.")).count();
                assert_eq!(ours, plain.variables().len(), "{arch}: the backbone's variables alone");
            }
        }
    }

    /// Full size: AlexNet's 13 x 13 conv5 to Zhang's 56 x 56 (two doublings, then a resize)
    /// and to the whole 224 px image.
    #[test]
    fn the_decoder_reaches_full_size_outputs_from_a_side_that_is_no_power_of_two() {
        let cfg = testing::cfg(Arch::Alexnet, 0.25, true, 224);
        for (side, out, ups) in [(56, 261, 2), (224, 3, 4)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let (net, _) = DenseNet::new(&vs.root(), &cfg, "conv5", side, out).unwrap();
            assert_eq!(net.ups.len(), ups);
            let y = net.forward(&Tensor::zeros([1, 3, 224, 224], (Kind::Float, Device::Cpu)), false);
            assert_eq!(y.size(), [1, out, side, side]);
        }
    }
}
