//! Images per second of a training step in ktlab (forward, backward and the SGD update, on
//! random data), to set beside `train_step.py` (PyTorch) at the same architecture, batch
//! size, image size, device, precision and thread count. `scripts/bench_train.py`
//! (`make bench-train`) runs both in turn on the CPU; `scripts/gpu-check.sh` on a GPU.
//!
//! `cargo bench --bench train_step -- [--arch alexnet-small] [--batch 128] [--width 0.5]
//! [--image-size 32] [--device cpu|cuda] [--precision fp32|bf16|fp16] [--threads 2]
//! [--steps 20]`
use std::time::Instant;

use ktlab::models::{Arch, NetConfig, Network};
use ktlab::train::amp::{Autocast, LossScaler, Precision};
use ktlab::train::optim::{Optimizer, OptimizerConfig};
use tch::{nn, Device, Kind, Reduction, Tensor};

fn text<'a>(args: &'a [String], name: &str, default: &'a str) -> &'a str {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |s| s.as_str())
}

fn number(args: &[String], name: &str, default: f64) -> f64 {
    let value = text(args, name, "");
    if value.is_empty() {
        return default;
    }
    value
        .parse()
        .unwrap_or_else(|_| fail(&format!("{name}: expected a number, found {value}")))
}

fn fail(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arch_name = text(&args, "--arch", "alexnet-small");
    let arch = Arch::ALL.into_iter().find(|a| a.name() == arch_name).unwrap_or_else(|| {
        let names: Vec<&str> = Arch::ALL.iter().map(|a| a.name()).collect();
        fail(&format!("--arch: expected one of {}, found {arch_name}", names.join(", ")))
    });
    let precision: Precision = text(&args, "--precision", "fp32")
        .parse()
        .unwrap_or_else(|e: String| fail(&format!("--precision: {e}")));
    let device = match text(&args, "--device", "cpu") {
        "cpu" => Device::Cpu,
        "cuda" => {
            ktlab::device::cuda::load();
            if !tch::Cuda::is_available() {
                fail("--device cuda: CUDA is not available here");
            }
            Device::Cuda(0)
        }
        other => fail(&format!("--device: expected cpu or cuda, found {other}")),
    };
    let batch = number(&args, "--batch", 128.0) as i64;
    let width = number(&args, "--width", 0.5);
    let image = number(&args, "--image-size", ktlab::models::default_image_size(arch) as f64) as i64;
    let threads = number(&args, "--threads", 2.0) as i32;
    let steps = number(&args, "--steps", 20.0) as usize;
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let cfg = NetConfig {
        arch,
        width,
        batch_norm: true,
        in_channels: 3,
        image_size: image,
    };
    let net = Network::classifier(&vs.root(), &cfg, 10).unwrap_or_else(|e| fail(&e.to_string()));
    let params: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
    let count: i64 = params.iter().map(|(_, t)| t.numel() as i64).sum();
    let config = OptimizerConfig::sgd(0.9, 5e-4);
    let mut opt = Optimizer::new(config, params);
    let mut scaler = LossScaler::for_precision(precision);
    let x = Tensor::randn([batch, 3, image, image], (Kind::Float, device));
    let y = Tensor::randint(10, [batch], (Kind::Int64, device));
    let sync = || {
        if let Device::Cuda(n) = device {
            tch::Cuda::synchronize(n as i64);
        }
    };
    let mut step = || {
        let loss = {
            let _region = Autocast::enter(precision, device).unwrap_or_else(|e| fail(&e));
            net.forward(&x, true)
                .cross_entropy_loss::<Tensor>(&y, None, Reduction::Mean, -100, 0.0)
        };
        opt.backward_step_scaled(&loss, 0.01, scaler.as_mut());
    };
    for _ in 0..3 {
        step();
    }
    sync();
    let t = Instant::now();
    for _ in 0..steps {
        step();
    }
    sync();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "ktlab   {arch_name} width {width} {image} px batch {batch} {} {} threads {threads}: {:.1} images/s ({steps} steps in {secs:.2}s, {count} parameters)",
        text(&args, "--device", "cpu"),
        precision.name(),
        (batch as usize * steps) as f64 / secs
    );
}
