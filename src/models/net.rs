//! The one interface every architecture is used through: pick an [`Arch`], describe it with a
//! [`NetConfig`], build a [`Network`] (backbone only, or with a classifier head) and read
//! logits, flat backbone features, or named intermediate activations ("taps") for probes.
//!
//! # Probe points
//! Every architecture answers to `conv1`..`conv5` (see [`PROBE_LAYERS`](super::PROBE_LAYERS)):
//!
//! | arch              | canonical tap names (in order)                          | aliases                       |
//! |-------------------|---------------------------------------------------------|-------------------------------|
//! | alexnet(-small)   | conv1 conv2 conv3 conv4 conv5 (+ fc6 fc7 with a head)   | —                             |
//! | vgg16(-small)     | conv1 conv2 conv3 conv4 conv5 (+ fc6 fc7 with a head)   | —                             |
//! | resnet18(-small)  | conv1 layer1 layer2 layer3 layer4                       | conv2..conv5 = layer1..layer4 |
//!
//! Conv taps are post-ReLU and pre-pool; fc taps are post-ReLU, pre-dropout. Shapes are
//! documented in each architecture's module and returned by [`Network::tap_shape`].
//!
//! # Weights
//! Variables are created under the given `nn::Path` with PyTorch `state_dict` names, so a
//! `VarStore` saved to `*.safetensors` loads into the matching torchvision model (full-size
//! archs, width 1.0, 3 input channels). BatchNorm `num_batches_tracked` counters are not
//! stored; PyTorch fills them in when loading a state dict without version metadata.
use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::arch::{Arch, NetConfig};
use super::blueprints::blueprint;
use super::error::ModelError;
use super::layers::{self, Shape, Stack, TapPoint};

/// A built network: backbone (ending in a flat feature vector) plus optional classifier.
#[derive(Debug)]
pub struct Network {
    config: NetConfig,
    classes: Option<i64>,
    stack: Stack,
    /// Number of layers of `stack` that form the backbone.
    backbone_len: usize,
    names: Vec<&'static str>,
    aliases: &'static [(&'static str, &'static str)],
    feature_dim: i64,
}

impl Network {
    /// Backbone only (no classifier).
    pub fn backbone(vs: &nn::Path, cfg: &NetConfig) -> Result<Network, ModelError> {
        Network::build(vs, cfg, None)
    }

    /// Backbone + classifier head with `classes` outputs (AlexNet/VGG: fc6, fc7, fc8;
    /// ResNet: fc after global average pooling).
    pub fn classifier(vs: &nn::Path, cfg: &NetConfig, classes: i64) -> Result<Network, ModelError> {
        if classes < 1 {
            return Err(ModelError::InvalidClasses(classes));
        }
        Network::build(vs, cfg, Some(classes))
    }

    fn build(vs: &nn::Path, cfg: &NetConfig, classes: Option<i64>) -> Result<Network, ModelError> {
        cfg.validate()?;
        let bp = blueprint(cfg, classes)?;
        let input = Shape::Map {
            c: cfg.in_channels,
            h: cfg.image_size,
            w: cfg.image_size,
        };
        let too_small = || ModelError::ImageTooSmall {
            arch: cfg.arch.to_string(),
            min: cfg.arch.min_image_size(),
            got: cfg.image_size,
        };
        let feature_dim = match layers::propagate(&bp.backbone, input).and_then(|s| s.last().copied()) {
            Some(Shape::Flat(d)) => d,
            _ => return Err(too_small()),
        };
        let specs: Vec<_> = bp.backbone.iter().chain(&bp.head).cloned().collect();
        let stack = Stack::build(vs, &specs, input).ok_or_else(too_small)?;
        let backbone_len = layers::layer_count(&bp.backbone);
        let names = stack.taps.iter().map(|t| t.name).collect();
        Ok(Network {
            config: cfg.clone(),
            classes,
            stack,
            backbone_len,
            names,
            aliases: bp.aliases,
            feature_dim,
        })
    }

    /// The configuration this network was built from.
    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// The architecture.
    pub fn arch(&self) -> Arch {
        self.config.arch
    }

    /// Number of classifier outputs, `None` for a backbone-only network.
    pub fn classes(&self) -> Option<i64> {
        self.classes
    }

    /// Canonical probe points in order, e.g. `["conv1", ..., "conv5", "fc6", "fc7"]`.
    pub fn layer_names(&self) -> &[&'static str] {
        &self.names
    }

    /// `(alias, canonical)` tap names also accepted by [`Network::taps`].
    pub fn layer_aliases(&self) -> &[(&'static str, &'static str)] {
        self.aliases
    }

    /// The canonical name for a tap name or alias.
    pub fn resolve_layer(&self, name: &str) -> Result<&'static str, ModelError> {
        self.tap_index(name).map(|i| self.stack.taps[i].name)
    }

    /// Per-sample shape of a tap at the configured image size, e.g. `[96, 55, 55]` or `[4096]`.
    pub fn tap_shape(&self, name: &str) -> Result<Vec<i64>, ModelError> {
        self.tap_index(name).map(|i| self.stack.taps[i].shape.dims())
    }

    /// Length of the flat backbone output ([`Network::forward_features`]).
    pub fn feature_dim(&self) -> i64 {
        self.feature_dim
    }

    /// Logits `[B, classes]`, or the flat backbone features when there is no head.
    ///
    /// `x` is `[B, in_channels, H, W]` on the device of the weights. Any side from
    /// [`Arch::min_image_size`] up runs (the adaptive pooling keeps `feature_dim` fixed);
    /// `train` selects batch statistics for BatchNorm and enables dropout.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        layers::run(&self.stack.layers, x, train)
    }

    /// Backbone output, flattened: `[B, feature_dim]`.
    pub fn forward_features(&self, x: &Tensor, train: bool) -> Tensor {
        layers::run(&self.stack.layers[..self.backbone_len], x, train)
    }

    /// Named intermediate activations (post-ReLU), in the order requested, computed in one
    /// pass that stops after the deepest requested layer. Aliases are accepted; an unknown
    /// name is an error listing the valid ones.
    pub fn taps(&self, x: &Tensor, layers: &[&str], train: bool) -> Result<Vec<Tensor>, ModelError> {
        let wanted = layers.iter().map(|name| self.tap_index(name)).collect::<Result<Vec<_>, _>>()?;
        let Some(stop) = wanted.iter().map(|&i| self.stack.taps[i].after).max() else {
            return Ok(Vec::new());
        };
        let mut captured: Vec<Option<Tensor>> = (0..self.stack.taps.len()).map(|_| None).collect();
        let mut h = x.shallow_clone();
        for n_run in 0..=stop {
            if n_run > 0 {
                h = self.stack.layers[n_run - 1].forward(&h, train);
            }
            for (i, tap) in self.stack.taps.iter().enumerate() {
                if tap.after == n_run && wanted.contains(&i) {
                    captured[i] = Some(h.shallow_clone());
                }
            }
        }
        Ok(wanted
            .iter()
            .map(|&i| {
                captured[i]
                    .as_ref()
                    .map(Tensor::shallow_clone)
                    .expect("every requested tap lies within the executed layers")
            })
            .collect())
    }

    fn tap_index(&self, name: &str) -> Result<usize, ModelError> {
        let canonical = self
            .aliases
            .iter()
            .find(|(alias, _)| *alias == name)
            .map_or(name, |(_, canonical)| canonical);
        self.stack.taps.iter().position(|t: &TapPoint| t.name == canonical).ok_or_else(|| {
            let mut valid: Vec<String> = self.names.iter().map(|n| n.to_string()).collect();
            valid.extend(self.aliases.iter().map(|(alias, canonical)| format!("{alias} (= {canonical})")));
            ModelError::UnknownLayer {
                arch: self.config.arch.to_string(),
                name: name.to_string(),
                valid: valid.join(", "),
            }
        })
    }
}

impl ModuleT for Network {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward(xs, train)
    }
}

/// Shared assertions for the per-architecture tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::super::arch::PROBE_LAYERS;
    use super::*;
    use tch::{Device, Kind};

    /// An RGB config for the architecture tests.
    pub(crate) fn cfg(arch: Arch, width: f64, bn: bool, image_size: i64) -> NetConfig {
        NetConfig {
            arch,
            width,
            batch_norm: bn,
            in_channels: 3,
            image_size,
        }
    }

    /// A zero batch `[n, in_channels, image_size, image_size]` for `cfg`.
    pub(crate) fn zero_batch(cfg: &NetConfig, n: i64) -> Tensor {
        Tensor::zeros([n, cfg.in_channels, cfg.image_size, cfg.image_size], (Kind::Float, Device::Cpu))
    }

    fn assert_finite(t: &Tensor, what: &str) {
        let bad = t.isnan().any().int64_value(&[]) != 0 || t.isinf().any().int64_value(&[]) != 0;
        assert!(!bad, "{what} contains NaN or Inf");
    }

    /// Builds `cfg` with and without a `classes`-way head and checks, in eval and train mode:
    /// logits / feature shapes, every tap's shape against `expected` (per-sample shapes, in
    /// order; fc taps only with a head), finiteness, and that unknown tap names are rejected.
    pub(crate) fn check_network(cfg: &NetConfig, classes: i64, expected: &[(&str, &[i64])], feature_dim: i64) {
        let batch = 2;
        let x = zero_batch(cfg, batch);
        for with_head in [true, false] {
            let vs = nn::VarStore::new(Device::Cpu);
            let net = if with_head {
                Network::classifier(&vs.root(), cfg, classes)
            } else {
                Network::backbone(&vs.root(), cfg)
            }
            .unwrap_or_else(|e| panic!("{cfg:?} should build: {e}"));
            let expected: Vec<(&str, &[i64])> = expected
                .iter()
                .copied()
                .filter(|(name, _)| with_head || !name.starts_with("fc"))
                .collect();
            let names: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
            assert_eq!(net.layer_names(), names.as_slice(), "{cfg:?}");
            assert_eq!(net.feature_dim(), feature_dim, "{cfg:?}");
            for train in [false, true] {
                let out = net.forward(&x, train);
                let want = if with_head { classes } else { feature_dim };
                assert_eq!(out.size(), [batch, want], "{cfg:?} train={train}");
                assert_finite(&out, "forward output");
                let feats = net.forward_features(&x, train);
                assert_eq!(feats.size(), [batch, feature_dim], "{cfg:?}");
                let taps = net.taps(&x, &names, train).expect("known names");
                assert_eq!(taps.len(), expected.len());
                for (tap, (name, shape)) in taps.iter().zip(&expected) {
                    let mut want = vec![batch];
                    want.extend_from_slice(shape);
                    assert_eq!(tap.size(), want, "{cfg:?} tap {name} train={train}");
                    assert_eq!(net.tap_shape(name).expect("known"), shape.to_vec());
                    assert_finite(tap, name);
                }
            }
            // Probe points shared by every architecture resolve, shallowest only as well.
            let shallow = net.taps(&x, &["conv1"], false).expect("conv1 exists");
            assert_eq!(shallow[0].size()[1..], *expected[0].1);
            let all = net.taps(&x, &PROBE_LAYERS, false).expect("conv1..conv5 exist");
            assert_eq!(all.len(), 5);
            match net.taps(&x, &["conv1", "nope"], false) {
                Err(ModelError::UnknownLayer { name, valid, .. }) => {
                    assert_eq!(name, "nope");
                    assert!(valid.contains("conv1"), "{valid}");
                }
                other => panic!("expected UnknownLayer, got {other:?}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn build(cfg: &NetConfig) -> Result<Network, ModelError> {
        let vs = nn::VarStore::new(Device::Cpu);
        Network::backbone(&vs.root(), cfg)
    }

    /// The count from the layer descriptions (memory estimates) is the built network's.
    #[test]
    fn parameter_counts_from_the_layer_descriptions_are_the_built_networks() {
        for arch in Arch::ALL {
            for (width, bn) in [(0.25, true), (0.5, false)] {
                let cfg = testing::cfg(arch, width, bn, arch.min_image_size().max(32));
                let vs = nn::VarStore::new(Device::Cpu);
                Network::backbone(&vs.root(), &cfg).unwrap();
                let built: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
                assert_eq!(cfg.parameter_count(), Some(built as f64), "{arch} width {width} bn {bn}");
            }
        }
    }

    #[test]
    fn invalid_widths_are_rejected() {
        for width in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let cfg = NetConfig {
                width,
                ..NetConfig::new(Arch::AlexnetSmall)
            };
            assert!(matches!(build(&cfg), Err(ModelError::InvalidWidth(_))), "width {width}");
        }
        let cfg = NetConfig {
            width: 0.004,
            ..NetConfig::new(Arch::AlexnetSmall)
        };
        match build(&cfg) {
            // 96 * 0.004 = 0.384 rounds to 0; 256 * 0.004 = 1.02 would survive.
            Err(ModelError::ZeroChannels { layer, min_width, .. }) => {
                assert_eq!(layer, "conv1");
                assert!((min_width - 0.5 / 96.0).abs() < 1e-12);
            }
            other => panic!("expected ZeroChannels, got {other:?}"),
        }
    }

    #[test]
    fn other_invalid_values_are_rejected() {
        let cfg = NetConfig {
            in_channels: 0,
            ..NetConfig::new(Arch::Resnet18Small)
        };
        assert!(matches!(build(&cfg), Err(ModelError::InvalidInChannels(0))));
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = NetConfig::new(Arch::Resnet18Small);
        assert!(matches!(
            Network::classifier(&vs.root(), &cfg, 0),
            Err(ModelError::InvalidClasses(0))
        ));
        assert!(vs.variables().is_empty(), "nothing is allocated for invalid configs");
    }

    #[test]
    fn minimum_image_sizes_are_exact() {
        let expected = [
            (Arch::Alexnet, 63),
            (Arch::AlexnetSmall, 16),
            (Arch::Vgg16, 32),
            (Arch::Vgg16Small, 16),
            (Arch::Resnet18, 32),
            (Arch::Resnet18Small, 8),
        ];
        for (arch, min) in expected {
            assert_eq!(arch.min_image_size(), min, "{arch}");
            let cfg = NetConfig {
                width: 0.05,
                image_size: min,
                ..NetConfig::new(arch)
            };
            let net = build(&cfg).unwrap_or_else(|e| panic!("{arch} at {min} px: {e}"));
            let out = net.forward(&testing::zero_batch(&cfg, 1), false);
            assert_eq!(out.size(), [1, net.feature_dim()]);
            let cfg = NetConfig {
                image_size: min - 1,
                ..cfg
            };
            match build(&cfg) {
                Err(ModelError::ImageTooSmall { min: m, got, arch: a }) => {
                    assert_eq!((m, got), (min, min - 1));
                    assert_eq!(a, arch.name());
                }
                other => panic!("{arch} at {} px: expected ImageTooSmall, got {other:?}", min - 1),
            }
        }
    }

    #[test]
    fn resnet_aliases_resolve_and_are_listed() {
        let cfg = NetConfig {
            width: 0.25,
            ..NetConfig::new(Arch::Resnet18Small)
        };
        let net = build(&cfg).expect("valid");
        assert_eq!(net.resolve_layer("conv3"), Ok("layer2"));
        assert_eq!(net.resolve_layer("layer2"), Ok("layer2"));
        assert_eq!(net.resolve_layer("conv1"), Ok("conv1"));
        match net.resolve_layer("fc7") {
            Err(ModelError::UnknownLayer { valid, .. }) => {
                assert!(valid.contains("conv5 (= layer4)"), "{valid}")
            }
            other => panic!("expected UnknownLayer, got {other:?}"),
        }
        let alexnet = build(&NetConfig::new(Arch::AlexnetSmall)).expect("valid");
        assert!(alexnet.layer_aliases().is_empty());
        assert!(alexnet.resolve_layer("layer1").is_err());
    }

    /// Every registered architecture (so a new one is covered without a new test), at both
    /// ends of the width range, with and without BatchNorm, on random input at its smallest
    /// valid size: finite logits in train and eval mode, and the named probe layers conv1..conv5
    /// with finite values of the shape the blueprint announces.
    #[test]
    fn every_registered_architecture_runs_forward_with_finite_outputs() {
        use super::super::arch::PROBE_LAYERS;
        tch::manual_seed(0);
        for arch in Arch::ALL {
            for width in [0.25, 1.0] {
                for batch_norm in [false, true] {
                    let cfg = NetConfig {
                        width,
                        batch_norm,
                        image_size: arch.min_image_size(),
                        ..NetConfig::new(arch)
                    };
                    let vs = nn::VarStore::new(Device::Cpu);
                    let net = Network::classifier(&vs.root(), &cfg, 7).unwrap_or_else(|e| panic!("{cfg:?}: {e}"));
                    let x = Tensor::randn([2, 3, cfg.image_size, cfg.image_size], (tch::Kind::Float, Device::Cpu));
                    for train in [true, false] {
                        let logits = tch::no_grad(|| net.forward(&x, train));
                        assert_eq!(logits.size(), [2, 7], "{cfg:?}");
                        assert_eq!(logits.isfinite().all().int64_value(&[]), 1, "{cfg:?} train={train}: logits");
                    }
                    let taps = tch::no_grad(|| net.taps(&x, &PROBE_LAYERS, false)).expect("conv1..conv5 are named");
                    for (tap, name) in taps.iter().zip(PROBE_LAYERS) {
                        let mut want = vec![2];
                        want.extend(net.tap_shape(name).expect("named"));
                        assert_eq!(tap.size(), want, "{cfg:?} {name}");
                        assert_eq!(tap.isfinite().all().int64_value(&[]), 1, "{cfg:?} {name}");
                    }
                }
            }
        }
    }

    #[test]
    fn taps_of_nothing_run_nothing() {
        let cfg = NetConfig {
            width: 0.25,
            ..NetConfig::new(Arch::AlexnetSmall)
        };
        let net = build(&cfg).expect("valid");
        let taps = net.taps(&testing::zero_batch(&cfg, 1), &[], false).expect("empty request is fine");
        assert!(taps.is_empty());
    }

    #[test]
    fn taps_equal_a_truncated_forward_and_keep_request_order() {
        tch::manual_seed(0);
        let cfg = NetConfig {
            width: 0.25,
            ..NetConfig::new(Arch::AlexnetSmall)
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Network::classifier(&vs.root(), &cfg, 5).expect("valid");
        let x = Tensor::randn([3, 3, 32, 32], (tch::Kind::Float, Device::Cpu));
        let taps = net.taps(&x, &["fc7", "conv2"], false).expect("known");
        assert_eq!(taps[0].size(), [3, 1024]);
        assert_eq!(taps[1].size(), [3, 64, 8, 8]);
        // fc7 feeds fc8 directly in eval mode: logits = fc8(fc7).
        let w = &vs.variables()["classifier.6.weight"];
        let b = &vs.variables()["classifier.6.bias"];
        let logits = net.forward(&x, false);
        let again = taps[0].linear(w, Some(b));
        assert!(logits.allclose(&again, 1e-5, 1e-6, false));
        // The taps are post-ReLU.
        assert!(taps[1].min().double_value(&[]) >= 0.0);
    }

    /// Gives BatchNorm statistics/affine parameters and biases non-trivial values, so that an
    /// eval-mode comparison exercises every stored tensor.
    fn randomize_vectors(vs: &nn::VarStore) {
        tch::no_grad(|| {
            for (name, mut t) in vs.variables() {
                if t.dim() != 1 {
                    continue;
                }
                if name.ends_with("running_var") || name.ends_with("weight") {
                    let _ = t.uniform_(0.5, 1.5);
                } else {
                    let r = Tensor::randn(t.size(), (t.kind(), t.device())) * 0.1;
                    t.copy_(&r);
                }
            }
        });
    }

    /// Full-size networks (width 1.0, default options) save weights that torchvision's
    /// `vgg16()`/`vgg16_bn()`/`resnet18()` (and the script's AlexNet) load strictly and that
    /// reproduce our logits. Skipped when the project's Python or torchvision is unavailable.
    #[test]
    fn full_size_weights_load_into_torchvision() {
        let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/compare_torchvision.py");
        if !std::path::Path::new(python).exists() {
            crate::skip::skip("full_size_weights_load_into_torchvision", &format!("{python} not found"));
            return;
        }
        let probe = std::process::Command::new(python)
            .args(["-c", "import numpy, torch, torchvision, safetensors"])
            .output();
        match probe {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                crate::skip::skip(
                    "full_size_weights_load_into_torchvision",
                    &format!("torchvision/safetensors not importable: {}", String::from_utf8_lossy(&out.stderr)),
                );
                return;
            }
            Err(e) => {
                crate::skip::skip("full_size_weights_load_into_torchvision", &format!("cannot run {python}: {e}"));
                return;
            }
        }
        tch::manual_seed(42);
        let dir = tempfile::tempdir().expect("tempdir");
        let side = 224;
        let x = Tensor::linspace(0.0, 100.0, 3 * side * side, (tch::Kind::Float, Device::Cpu))
            .sin()
            .reshape([1, 3, side, side]);
        x.write_npy(dir.path().join("input.npy")).expect("write input");
        let models = [
            ("vgg16", Arch::Vgg16, false),
            ("vgg16_bn", Arch::Vgg16, true),
            ("resnet18", Arch::Resnet18, false),
            ("alexnet", Arch::Alexnet, false),
            ("alexnet_bn", Arch::Alexnet, true),
        ];
        for (name, arch, batch_norm) in models {
            let vs = nn::VarStore::new(Device::Cpu);
            let cfg = NetConfig {
                batch_norm,
                ..NetConfig::new(arch)
            };
            let net = Network::classifier(&vs.root(), &cfg, 1000).expect("valid config");
            randomize_vectors(&vs);
            let logits = tch::no_grad(|| net.forward(&x, false));
            assert_eq!(logits.size(), [1, 1000]);
            vs.save(dir.path().join(format!("{name}.safetensors"))).expect("save weights");
            logits
                .write_npy(dir.path().join(format!("{name}.logits.npy")))
                .expect("write logits");
        }
        let out = std::process::Command::new(python)
            .arg(script)
            .arg(dir.path())
            .output()
            .expect("run compare script");
        let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        println!("{report}");
        assert!(out.status.success(), "torchvision comparison failed:\n{report}");
        for (name, _, _) in models {
            assert!(report.contains(&format!("{name}: ok")), "{name} not compared:\n{report}");
        }
    }

    #[test]
    fn weights_round_trip_through_safetensors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.safetensors");
        let cfg = NetConfig {
            width: 0.25,
            batch_norm: true,
            ..NetConfig::new(Arch::AlexnetSmall)
        };
        let x = Tensor::randn([2, 3, 32, 32], (tch::Kind::Float, Device::Cpu));
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Network::classifier(&vs.root(), &cfg, 4).expect("valid");
        let want = net.forward(&x, false);
        vs.save(&path).expect("save");
        let mut vs2 = nn::VarStore::new(Device::Cpu);
        let net2 = Network::classifier(&vs2.root(), &cfg, 4).expect("valid");
        assert!(!net2.forward(&x, false).allclose(&want, 1e-5, 1e-6, false));
        vs2.load(&path).expect("load");
        assert!(net2.forward(&x, false).allclose(&want, 1e-6, 1e-7, false));
    }
}
