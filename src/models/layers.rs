//! The building blocks every architecture is assembled from: a declarative layer list
//! ([`Spec`]) that can be shape-checked before any weight is allocated, and its built,
//! runnable form ([`Stack`]) with named tap points.
//!
//! Architectures (`alexnet.rs`, `vgg.rs`, `resnet.rs`) only *describe* themselves as a
//! [`Blueprint`]; shape inference, minimum-input computation, weight creation (with
//! torchvision-compatible variable names) and execution all live here, once.
#[cfg(feature = "torch")]
use tch::nn::{self, Init};
#[cfg(feature = "torch")]
use tch::Tensor;

use super::arch::NetConfig;
use super::error::ModelError;

/// Per-sample activation shape (the batch dimension is left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A feature map `[channels, height, width]`.
    Map { c: i64, h: i64, w: i64 },
    /// A flat feature vector `[dim]`.
    Flat(i64),
}

impl Shape {
    /// The shape as a dimension list, without the batch dimension.
    pub(crate) fn dims(&self) -> Vec<i64> {
        match *self {
            Shape::Map { c, h, w } => vec![c, h, w],
            Shape::Flat(d) => vec![d],
        }
    }

    /// Channels of a map, the length of a vector.
    pub(crate) fn channels(&self) -> i64 {
        match *self {
            Shape::Map { c, .. } => c,
            Shape::Flat(d) => d,
        }
    }

    /// Number of values per sample.
    pub(crate) fn numel(&self) -> i64 {
        self.dims().iter().product()
    }
}

/// How a layer's weights (and bias) are initialised; mirrors what torchvision does per model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum WeightInit {
    /// He normal with fan-out and ReLU gain, zero bias (torchvision VGG/ResNet convs).
    KaimingFanOut,
    /// Normal(0, std), zero bias (torchvision VGG linears).
    Normal(f64),
    /// PyTorch's default for `nn.Linear`/`nn.Conv2d`: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    /// for both weight and bias (torchvision ResNet's `fc`).
    TorchDefault,
}

#[cfg(feature = "torch")]
impl WeightInit {
    fn weight(self) -> Init {
        match self {
            WeightInit::KaimingFanOut => Init::Kaiming {
                dist: nn::init::NormalOrUniform::Normal,
                fan: nn::init::FanInOut::FanOut,
                non_linearity: nn::init::NonLinearity::ReLU,
            },
            WeightInit::Normal(stdev) => Init::Randn { mean: 0.0, stdev },
            // kaiming_uniform(a = sqrt(5)) has gain sqrt(2 / (1 + 5)) = 1/sqrt(3), so its bound
            // sqrt(3) * gain / sqrt(fan_in) is 1/sqrt(fan_in).
            WeightInit::TorchDefault => Init::Kaiming {
                dist: nn::init::NormalOrUniform::Uniform,
                fan: nn::init::FanInOut::FanIn,
                non_linearity: nn::init::NonLinearity::ExplicitGain(1.0 / 3f64.sqrt()),
            },
        }
    }

    fn bias(self, fan_in: i64) -> Init {
        match self {
            WeightInit::KaimingFanOut | WeightInit::Normal(_) => Init::Const(0.0),
            WeightInit::TorchDefault => {
                let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
                Init::Uniform { lo: -bound, up: bound }
            }
        }
    }
}

/// One step of a network description. Paths are dotted variable prefixes
/// (`"features.0"`, `"layer1.0"`), exactly the PyTorch `state_dict` key prefixes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Spec {
    Conv {
        path: String,
        out: i64,
        kernel: i64,
        stride: i64,
        padding: i64,
        bias: bool,
        init: WeightInit,
    },
    BatchNorm {
        path: String,
    },
    Relu,
    MaxPool {
        kernel: i64,
        stride: i64,
        padding: i64,
    },
    /// Adaptive average pooling to `size x size` (torchvision's `avgpool`).
    AdaptiveAvgPool {
        size: i64,
    },
    Flatten,
    Dropout {
        p: f64,
    },
    Linear {
        path: String,
        out: i64,
        init: WeightInit,
    },
    /// ResNet basic block: two 3x3 convs with BN, identity or 1x1-conv shortcut.
    BasicBlock {
        path: String,
        out: i64,
        stride: i64,
    },
    /// A named probe point: the output of the preceding step.
    Tap(&'static str),
}

/// Output side of a convolution/pooling window, `None` when the input is too small.
fn window_out(n: i64, kernel: i64, stride: i64, padding: i64) -> Option<i64> {
    let padded = n + 2 * padding;
    (n >= 1 && padded >= kernel).then(|| (padded - kernel) / stride + 1)
}

impl Spec {
    /// Shape after this step, `None` when the input cannot be processed
    /// (spatial extent too small, or a map fed where a vector is required).
    fn output_shape(&self, input: Shape) -> Option<Shape> {
        match (self, input) {
            (
                Spec::Conv {
                    out,
                    kernel,
                    stride,
                    padding,
                    ..
                },
                Shape::Map { h, w, .. },
            ) => Some(Shape::Map {
                c: *out,
                h: window_out(h, *kernel, *stride, *padding)?,
                w: window_out(w, *kernel, *stride, *padding)?,
            }),
            (Spec::MaxPool { kernel, stride, padding }, Shape::Map { c, h, w }) => Some(Shape::Map {
                c,
                h: window_out(h, *kernel, *stride, *padding)?,
                w: window_out(w, *kernel, *stride, *padding)?,
            }),
            (Spec::BasicBlock { out, stride, .. }, Shape::Map { h, w, .. }) => Some(Shape::Map {
                c: *out,
                h: window_out(h, 3, *stride, 1)?,
                w: window_out(w, 3, *stride, 1)?,
            }),
            (Spec::AdaptiveAvgPool { size }, Shape::Map { c, h, w }) => (h >= 1 && w >= 1).then_some(Shape::Map { c, h: *size, w: *size }),
            (Spec::Flatten, s) => Some(Shape::Flat(s.numel())),
            (Spec::Linear { out, .. }, Shape::Flat(_)) => Some(Shape::Flat(*out)),
            (Spec::BatchNorm { .. }, s @ Shape::Map { .. }) => Some(s),
            (Spec::Relu | Spec::Dropout { .. } | Spec::Tap(_), s) => Some(s),
            _ => None,
        }
    }

    /// Spatial downsampling factor of this step (adaptive pooling does not count).
    fn downsampling(&self) -> i64 {
        match self {
            Spec::Conv { stride, .. } | Spec::MaxPool { stride, .. } | Spec::BasicBlock { stride, .. } => *stride,
            _ => 1,
        }
    }
}

/// Shape after every step of `specs` for a given input, or `None` if some step cannot run.
pub(crate) fn propagate(specs: &[Spec], input: Shape) -> Option<Vec<Shape>> {
    let mut shapes = Vec::with_capacity(specs.len());
    let mut cur = input;
    for spec in specs {
        cur = spec.output_shape(cur)?;
        shapes.push(cur);
    }
    Some(shapes)
}

/// Multiply-accumulates of one sample through `specs` (convolutions and linear layers, a
/// residual block's two convolutions and its shortcut), `None` if some step cannot run: the
/// scale of a network's cost per image that time estimates use.
pub(crate) fn macs(specs: &[Spec], input: Shape) -> Option<f64> {
    let mut total = 0.0;
    for (spec, cur, next) in steps(specs, input)? {
        let c_in = cur.channels();
        let out_numel = next.numel() as f64;
        total += match spec {
            Spec::Conv { kernel, .. } => out_numel * (c_in * kernel * kernel) as f64,
            Spec::Linear { .. } => out_numel * c_in as f64,
            Spec::BasicBlock { out, stride, .. } => {
                let shortcut = if *stride != 1 || c_in != *out {
                    out_numel * c_in as f64
                } else {
                    0.0
                };
                out_numel * (9 * c_in) as f64 + out_numel * (9 * out) as f64 + shortcut
            }
            _ => 0.0,
        };
    }
    Some(total)
}

/// Each step of `specs` with the shape it reads and the shape it writes, `None` if some
/// step cannot run.
fn steps(specs: &[Spec], input: Shape) -> Option<Vec<(&Spec, Shape, Shape)>> {
    let mut out = Vec::with_capacity(specs.len());
    let mut cur = input;
    for spec in specs {
        let next = spec.output_shape(cur)?;
        out.push((spec, cur, next));
        cur = next;
    }
    Some(out)
}

/// Trainable values of `specs` for one sample of shape `input` (convolution and linear
/// weights and biases, BatchNorm's scale and shift, a residual block's two convolutions,
/// BatchNorms and shortcut), `None` if some step cannot run: what memory estimates count
/// for the weights, their gradients and the optimiser's state.
pub(crate) fn parameters(specs: &[Spec], input: Shape) -> Option<f64> {
    let mut total = 0.0;
    for (spec, cur, _) in steps(specs, input)? {
        let c_in = cur.channels();
        total += match spec {
            Spec::Conv { out, kernel, bias, .. } => (c_in * out * kernel * kernel + if *bias { *out } else { 0 }) as f64,
            Spec::BatchNorm { .. } => (2 * c_in) as f64,
            Spec::Linear { out, .. } => (c_in * out + out) as f64,
            Spec::BasicBlock { out, stride, .. } => {
                let shortcut = if *stride != 1 || c_in != *out { c_in * out + 2 * out } else { 0 };
                (c_in * out * 9 + 2 * out + out * out * 9 + 2 * out + shortcut) as f64
            }
            _ => 0.0,
        };
    }
    Some(total)
}

/// Values of the steps' outputs for one sample through `specs`: their sum (what a training
/// step keeps for the backward pass; a residual block counts its two convolutions and two
/// BatchNorms) and the largest step's input and output together (what inference holds at
/// once). `None` if some step cannot run.
pub(crate) fn activations(specs: &[Spec], input: Shape) -> Option<(f64, f64)> {
    let (mut sum, mut peak) = (0.0, 0.0f64);
    for (spec, cur, next) in steps(specs, input)? {
        let out = next.numel() as f64;
        sum += match spec {
            Spec::BasicBlock { .. } => 4.0 * out,
            Spec::Tap(_) => 0.0,
            _ => out,
        };
        peak = peak.max(cur.numel() as f64 + out);
    }
    Some((sum, peak))
}

/// Largest input side searched when looking for an architecture's minimum.
const MAX_SEARCHED_SIDE: i64 = 4096;

/// Smallest square input side the layer list accepts: every layer must produce a non-empty
/// output, and the input must be at least the network's total downsampling factor (so the last
/// spatial stage is at least 1x1 without relying on padding alone).
pub(crate) fn min_image_size(specs: &[Spec], in_channels: i64) -> i64 {
    let total_stride: i64 = specs.iter().map(Spec::downsampling).product();
    let shape_min = (1..=MAX_SEARCHED_SIDE)
        .find(|&n| {
            propagate(
                specs,
                Shape::Map {
                    c: in_channels,
                    h: n,
                    w: n,
                },
            )
            .is_some()
        })
        .unwrap_or(MAX_SEARCHED_SIDE);
    shape_min.max(total_stride)
}

/// Channel count of a layer after applying the width multiplier (rounded half away from zero).
/// Errors rather than silently clamping when the multiplier rounds the layer away entirely.
pub(crate) fn scaled(cfg: &NetConfig, nominal: i64, layer: &str) -> Result<i64, ModelError> {
    let c = (nominal as f64 * cfg.width).round() as i64;
    if c >= 1 {
        Ok(c)
    } else {
        Err(ModelError::ZeroChannels {
            arch: cfg.arch.to_string(),
            layer: layer.to_string(),
            nominal,
            width: cfg.width,
            min_width: 0.5 / nominal as f64,
        })
    }
}

/// Appends layers of a torchvision `nn.Sequential` (`features`, `classifier`), numbering
/// each one — parameter-free ones included — exactly as PyTorch's module indices do.
pub(crate) struct SeqBuilder {
    prefix: &'static str,
    next: usize,
    specs: Vec<Spec>,
}

impl SeqBuilder {
    pub(crate) fn new(prefix: &'static str) -> Self {
        SeqBuilder {
            prefix,
            next: 0,
            specs: Vec::new(),
        }
    }

    fn push(&mut self, spec: Spec) {
        self.specs.push(spec);
        self.next += 1;
    }

    fn path(&self) -> String {
        format!("{}.{}", self.prefix, self.next)
    }

    /// Conv (with bias, as torchvision's AlexNet/VGG), optional BN, then ReLU.
    pub(crate) fn conv_bn_relu(&mut self, out: i64, kernel: i64, stride: i64, padding: i64, bn: bool) {
        let path = self.path();
        self.push(Spec::Conv {
            path,
            out,
            kernel,
            stride,
            padding,
            bias: true,
            init: WeightInit::KaimingFanOut,
        });
        if bn {
            let path = self.path();
            self.push(Spec::BatchNorm { path });
        }
        self.push(Spec::Relu);
    }

    pub(crate) fn max_pool(&mut self, kernel: i64, stride: i64, padding: i64) {
        self.push(Spec::MaxPool { kernel, stride, padding });
    }

    pub(crate) fn dropout(&mut self, p: f64) {
        self.push(Spec::Dropout { p });
    }

    pub(crate) fn linear(&mut self, out: i64, init: WeightInit) {
        let path = self.path();
        self.push(Spec::Linear { path, out, init });
    }

    pub(crate) fn relu(&mut self) {
        self.push(Spec::Relu);
    }

    /// Marks the output of the last layer as a probe point (takes no module index).
    pub(crate) fn tap(&mut self, name: &'static str) {
        self.specs.push(Spec::Tap(name));
    }

    pub(crate) fn finish(self) -> Vec<Spec> {
        self.specs
    }
}

/// An architecture's full description: backbone steps (ending in a flat feature vector),
/// classifier-head steps (empty for a backbone-only network) and tap-name aliases.
#[derive(Debug, Clone)]
pub(crate) struct Blueprint {
    pub(crate) backbone: Vec<Spec>,
    pub(crate) head: Vec<Spec>,
    /// `(alias, canonical)` pairs accepted by `taps` in addition to the canonical names.
    pub(crate) aliases: &'static [(&'static str, &'static str)],
}

#[cfg(feature = "torch")]
/// ResNet basic block (torchvision `BasicBlock`, expansion 1).
#[derive(Debug)]
pub(crate) struct BasicBlock {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    downsample: Option<(nn::Conv2D, nn::BatchNorm)>,
}

#[cfg(feature = "torch")]
impl BasicBlock {
    fn new(p: &nn::Path, c_in: i64, out: i64, stride: i64) -> Self {
        let conv = |name: &str, c_in: i64, k: i64, s: i64, pad: i64| {
            let cfg = nn::ConvConfig {
                stride: s,
                padding: pad,
                bias: false,
                ws_init: WeightInit::KaimingFanOut.weight(),
                ..Default::default()
            };
            nn::conv2d(p / name, c_in, out, k, cfg)
        };
        let downsample = (stride != 1 || c_in != out).then(|| {
            let d = p / "downsample";
            let cfg = nn::ConvConfig {
                stride,
                bias: false,
                ws_init: WeightInit::KaimingFanOut.weight(),
                ..Default::default()
            };
            (nn::conv2d(&d / "0", c_in, out, 1, cfg), batch_norm(&d / "1", out))
        });
        BasicBlock {
            conv1: conv("conv1", c_in, 3, stride, 1),
            bn1: batch_norm(p / "bn1", out),
            conv2: conv("conv2", out, 3, 1, 1),
            bn2: batch_norm(p / "bn2", out),
            downsample,
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        // [B, c_in, H, W] -> [B, out, H/stride, W/stride]
        let y = x
            .apply(&self.conv1)
            .apply_t(&self.bn1, train)
            .relu()
            .apply(&self.conv2)
            .apply_t(&self.bn2, train);
        match &self.downsample {
            Some((conv, bn)) => (y + x.apply(conv).apply_t(bn, train)).relu(),
            None => (y + x).relu(),
        }
    }
}

#[cfg(feature = "torch")]
/// BatchNorm2d initialised as PyTorch does (weight 1, bias 0, eps 1e-5, momentum 0.1).
fn batch_norm(p: nn::Path, c: i64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        ws_init: Init::Const(1.0),
        bs_init: Init::Const(0.0),
        ..Default::default()
    };
    nn::batch_norm2d(p, c, cfg)
}

#[cfg(feature = "torch")]
/// A built, runnable step.
#[derive(Debug)]
pub(crate) enum Layer {
    Conv(nn::Conv2D),
    BatchNorm(nn::BatchNorm),
    Relu,
    MaxPool { kernel: i64, stride: i64, padding: i64 },
    AdaptiveAvgPool(i64),
    Flatten,
    Dropout(f64),
    Linear(nn::Linear),
    Block(Box<BasicBlock>),
}

#[cfg(feature = "torch")]
impl Layer {
    pub(crate) fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        match self {
            Layer::Conv(conv) => x.apply(conv),
            Layer::BatchNorm(bn) => x.apply_t(bn, train),
            Layer::Relu => x.relu(),
            Layer::MaxPool { kernel, stride, padding } => {
                x.max_pool2d([*kernel, *kernel], [*stride, *stride], [*padding, *padding], [1, 1], false)
            }
            Layer::AdaptiveAvgPool(size) => x.adaptive_avg_pool2d([*size, *size]),
            Layer::Flatten => x.flatten(1, -1),
            Layer::Dropout(p) => x.dropout(*p, train),
            Layer::Linear(linear) => x.apply(linear),
            Layer::Block(block) => block.forward(x, train),
        }
    }
}

#[cfg(feature = "torch")]
/// A named probe point of a [`Stack`].
#[derive(Debug, Clone)]
pub(crate) struct TapPoint {
    pub(crate) name: &'static str,
    /// Number of layers that run before the tap is read.
    pub(crate) after: usize,
    /// Per-sample shape at the configured input size.
    pub(crate) shape: Shape,
}

#[cfg(feature = "torch")]
/// A runnable layer sequence with its tap points.
#[derive(Debug)]
pub(crate) struct Stack {
    pub(crate) layers: Vec<Layer>,
    pub(crate) taps: Vec<TapPoint>,
}

#[cfg(feature = "torch")]
/// `vs / "a" / "b"` for the dotted path `"a.b"` (tch forbids dots inside one component).
fn sub_path<'a>(vs: &nn::Path<'a>, dotted: &str) -> nn::Path<'a> {
    dotted.split('.').fold(vs.clone(), |p, part| p / part)
}

#[cfg(feature = "torch")]
impl Stack {
    /// Creates the weights of `specs` under `vs`. `input` is the per-sample input shape;
    /// returns `None` if the specs cannot process it (callers validate first).
    pub(crate) fn build(vs: &nn::Path, specs: &[Spec], input: Shape) -> Option<Stack> {
        let shapes = propagate(specs, input)?;
        let mut layers = Vec::with_capacity(specs.len());
        let mut taps = Vec::new();
        let mut cur = input;
        for (spec, &out_shape) in specs.iter().zip(&shapes) {
            let channels_in = cur.channels();
            let layer = match spec {
                Spec::Conv {
                    path,
                    out,
                    kernel,
                    stride,
                    padding,
                    bias,
                    init,
                } => {
                    let cfg = nn::ConvConfig {
                        stride: *stride,
                        padding: *padding,
                        bias: *bias,
                        ws_init: init.weight(),
                        bs_init: init.bias(channels_in * kernel * kernel),
                        ..Default::default()
                    };
                    Some(Layer::Conv(nn::conv2d(sub_path(vs, path), channels_in, *out, *kernel, cfg)))
                }
                Spec::BatchNorm { path } => Some(Layer::BatchNorm(batch_norm(sub_path(vs, path), channels_in))),
                Spec::Relu => Some(Layer::Relu),
                Spec::MaxPool { kernel, stride, padding } => Some(Layer::MaxPool {
                    kernel: *kernel,
                    stride: *stride,
                    padding: *padding,
                }),
                Spec::AdaptiveAvgPool { size } => Some(Layer::AdaptiveAvgPool(*size)),
                Spec::Flatten => Some(Layer::Flatten),
                Spec::Dropout { p } => Some(Layer::Dropout(*p)),
                Spec::Linear { path, out, init } => {
                    let cfg = nn::LinearConfig {
                        ws_init: init.weight(),
                        bs_init: Some(init.bias(channels_in)),
                        bias: true,
                    };
                    Some(Layer::Linear(nn::linear(sub_path(vs, path), channels_in, *out, cfg)))
                }
                Spec::BasicBlock { path, out, stride } => Some(Layer::Block(Box::new(BasicBlock::new(
                    &sub_path(vs, path),
                    channels_in,
                    *out,
                    *stride,
                )))),
                Spec::Tap(name) => {
                    taps.push(TapPoint {
                        name,
                        after: layers.len(),
                        shape: out_shape,
                    });
                    None
                }
            };
            layers.extend(layer);
            cur = out_shape;
        }
        Some(Stack { layers, taps })
    }
}

#[cfg(feature = "torch")]
/// Number of runnable layers `specs` builds into (tap markers are not layers).
pub(crate) fn layer_count(specs: &[Spec]) -> usize {
    specs.iter().filter(|s| !matches!(s, Spec::Tap(_))).count()
}

#[cfg(feature = "torch")]
/// Runs `layers` in order; the identity for an empty slice.
pub(crate) fn run(layers: &[Layer], x: &Tensor, train: bool) -> Tensor {
    let mut iter = layers.iter();
    match iter.next() {
        None => x.shallow_clone(),
        Some(first) => iter.fold(first.forward(x, train), |h, layer| layer.forward(&h, train)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_arithmetic_matches_pytorch() {
        // AlexNet conv1 (11x11, stride 4, padding 2) at 224 and 227 px.
        assert_eq!(window_out(224, 11, 4, 2), Some(55));
        assert_eq!(window_out(227, 11, 4, 2), Some(56));
        // 3x3 stride-2 unpadded pool.
        assert_eq!(window_out(55, 3, 2, 0), Some(27));
        assert_eq!(window_out(2, 3, 2, 0), None);
        // Padded pool halves with ceiling.
        assert_eq!(window_out(7, 3, 2, 1), Some(4));
        assert_eq!(window_out(0, 1, 1, 0), None);
    }

    #[test]
    fn propagation_reports_too_small_inputs_and_min_size() {
        let specs = vec![
            Spec::MaxPool {
                kernel: 2,
                stride: 2,
                padding: 0,
            },
            Spec::MaxPool {
                kernel: 3,
                stride: 1,
                padding: 0,
            },
        ];
        let map = |n| Shape::Map { c: 1, h: n, w: n };
        assert_eq!(propagate(&specs, map(5)), None);
        assert_eq!(propagate(&specs, map(6)), Some(vec![map(3), map(1)]));
        assert_eq!(min_image_size(&specs, 1), 6);
        // A padded stride-4 conv accepts 1 px, but the downsampling floor still applies.
        let strided = vec![Spec::Conv {
            path: "c".into(),
            out: 2,
            kernel: 3,
            stride: 4,
            padding: 1,
            bias: false,
            init: WeightInit::KaimingFanOut,
        }];
        assert_eq!(min_image_size(&strided, 3), 4);
    }

    #[test]
    fn seq_builder_numbers_like_torch_sequential() {
        let mut s = SeqBuilder::new("features");
        s.conv_bn_relu(4, 3, 1, 1, true); // 0 conv, 1 bn, 2 relu
        s.tap("conv1");
        s.max_pool(2, 2, 0); // 3
        s.conv_bn_relu(4, 3, 1, 1, false); // 4 conv, 5 relu
        let paths: Vec<String> = s
            .finish()
            .iter()
            .filter_map(|spec| match spec {
                Spec::Conv { path, .. } | Spec::BatchNorm { path } => Some(path.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(paths, ["features.0", "features.1", "features.4"]);
    }
}
