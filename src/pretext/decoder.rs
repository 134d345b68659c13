//! An upsampling decoder on a backbone layer, for the dense pretext tasks (colourisation,
//! inpainting): the layer's feature map through a 3x3 conv (as many channels as the layer,
//! 16 to 256), then steps of x2 bilinear upsampling and a 3x3 conv halving the channels
//! (down to 16; ReLU after each) up to the output side (a last bilinear resize where the
//! side is not a power-of-two multiple), and a 1x1 conv to the output channels. Its variables are under `decoder.*`, outside the backbone that `features`,
//! the probes and `init` read; `model.json` records its sizes. The sizes ([`convs`]) need
//! no libtorch: plan estimates count the decoder's multiply-accumulates from them.
use serde::{Deserialize, Serialize};
#[cfg(feature = "torch")]
use tch::{nn, Tensor};

#[cfg(feature = "torch")]
use crate::models::error::ModelError;
use crate::models::NetConfig;
#[cfg(feature = "torch")]
use crate::models::Network;

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

/// One convolution of the decoder: its input and output channels, kernel side, and the
/// side of the map it runs on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecoderConv {
    pub inputs: i64,
    pub outputs: i64,
    pub kernel: i64,
    pub side: i64,
}

/// The decoder's convolutions, in order, on a layer of `c` channels at side `h`, up to an
/// output of `out` channels at `side`: the first 3x3 conv (as many channels as the layer,
/// 16 to 256), one 3x3 conv per doubling of the side (halving the channels, down to 16;
/// each doubling halves them, so every step costs about the same and the full-resolution
/// ones stay cheap), and the 1x1 conv to `out` at `side`.
pub fn convs(c: i64, h: i64, side: i64, out: i64) -> Vec<DecoderConv> {
    let channels = c.clamp(16, 256);
    let mut list = vec![DecoderConv {
        inputs: c,
        outputs: channels,
        kernel: 3,
        side: h.max(1),
    }];
    let (mut at, mut width) = (h.max(1), channels);
    while at * 2 <= side {
        let next = (width / 2).max(16);
        at *= 2;
        list.push(DecoderConv {
            inputs: width,
            outputs: next,
            kernel: 3,
            side: at,
        });
        width = next;
    }
    list.push(DecoderConv {
        inputs: width,
        outputs: out,
        kernel: 1,
        side,
    });
    list
}

/// Multiply-accumulates of one image through the decoder on `cfg`'s `layer` (a tap name
/// or alias), up to `out` channels at `side`; `None` when the layer does not exist or the
/// network does not build.
pub fn macs(cfg: &NetConfig, layer: &str, side: i64, out: i64) -> Option<f64> {
    let shape = cfg.tap_dims(layer)?;
    let (c, h) = (shape[0], shape.get(1).copied().unwrap_or(1));
    Some(
        convs(c, h, side, out)
            .iter()
            .map(|v| (v.side * v.side * v.inputs * v.outputs * v.kernel * v.kernel) as f64)
            .sum(),
    )
}

/// The backbone with a decoder on one of its layers.
#[cfg(feature = "torch")]
pub struct DenseNet {
    pub backbone: Network,
    head: DecoderHead,
    first: nn::Conv2D,
    ups: Vec<nn::Conv2D>,
    last: nn::Conv2D,
}

#[cfg(feature = "torch")]
impl DenseNet {
    /// `root` is the variable store's root; the backbone's variables are named as in a
    /// plain network of `cfg`. `layer` must be one of its taps.
    pub fn new(root: &nn::Path, cfg: &NetConfig, layer: &str, side: i64, out: i64) -> Result<(DenseNet, DecoderHead), ModelError> {
        let backbone = Network::backbone(root, cfg)?;
        let shape = backbone.tap_shape(layer)?; // [C, h, w]
        let (c, h) = (shape[0], shape.get(1).copied().unwrap_or(1));
        let plan = convs(c, h, side, out);
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
        let first = conv("conv0", plan[0].inputs, plan[0].outputs, 3);
        let steps = &plan[1..plan.len() - 1];
        let ups = steps
            .iter()
            .enumerate()
            .map(|(i, v)| conv(&format!("up{}", i + 1), v.inputs, v.outputs, 3))
            .collect();
        let end = plan[plan.len() - 1];
        let last = conv("out", end.inputs, end.outputs, 1);
        let head = DecoderHead {
            layer: layer.to_string(),
            channels: plan[0].outputs,
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
    #[cfg(feature = "torch")]
    use tch::{Device, Kind};

    use super::*;
    #[cfg(feature = "torch")]
    use crate::models::net::testing;
    use crate::models::Arch;

    /// Counted by hand: AlexNet's conv5 (256 x 13 x 13 at 224 px) to Zhang's 56 x 56 ab
    /// bins: 3x3 256->256 at 13, 256->128 at 26, 128->64 at 52, then 1x1 64->261 at 56.
    #[test]
    fn the_decoders_multiply_accumulates_are_its_convolutions_at_their_sides() {
        let cfg = NetConfig::new(Arch::Alexnet);
        assert_eq!(cfg.tap_dims("conv5"), Some(vec![256, 13, 13]));
        let want = 13 * 13 * 256 * 256 * 9 + 26 * 26 * 256 * 128 * 9 + 52 * 52 * 128 * 64 * 9 + 56 * 56 * 64 * 261;
        assert_eq!(macs(&cfg, "conv5", 56, 261), Some(want as f64));
        assert_eq!(macs(&cfg, "conv9", 56, 261), None);
        let sides: Vec<i64> = convs(256, 13, 224, 3).iter().map(|c| c.side).collect();
        assert_eq!(sides, [13, 26, 52, 104, 208, 224]);
    }

    #[cfg(feature = "torch")]
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
    #[cfg(feature = "torch")]
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
