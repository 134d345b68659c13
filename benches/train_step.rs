//! Images per second of an `alexnet-small` or `vgg16-small` training step in ktlab
//! (forward, backward and the SGD update, on random 32 px data), to set beside
//! `train_step.py` (PyTorch) at the same batch size and thread count.
//! `scripts/bench_train.py` (`make bench-train`) runs both in turn.
//!
//! `cargo bench --bench train_step -- [--arch alexnet-small] [--batch 128] [--width 0.5]
//! [--threads 2] [--steps 20]`
use std::time::Instant;

use ktlab::models::{Arch, NetConfig, Network};
use ktlab::train::optim::{Optimizer, OptimizerConfig};
use tch::{nn, Device, Kind, Reduction, Tensor};

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arch_name = args
        .iter()
        .position(|a| a == "--arch")
        .and_then(|i| args.get(i + 1))
        .map_or("alexnet-small", |s| s.as_str());
    let arch = match arch_name {
        "alexnet-small" => Arch::AlexnetSmall,
        "vgg16-small" => Arch::Vgg16Small,
        other => {
            eprintln!("--arch: expected alexnet-small or vgg16-small, found {other}");
            std::process::exit(2);
        }
    };
    let batch = arg("--batch", 128.0) as i64;
    let width = arg("--width", 0.5);
    let threads = arg("--threads", 2.0) as i32;
    let steps = arg("--steps", 20.0) as usize;
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = NetConfig {
        arch,
        width,
        batch_norm: true,
        in_channels: 3,
        image_size: 32,
    };
    let net = Network::classifier(&vs.root(), &cfg, 10).expect("model");
    let params: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
    let count: i64 = params.iter().map(|(_, t)| t.numel() as i64).sum();
    let config = OptimizerConfig::sgd(0.9, 5e-4);
    let mut opt = Optimizer::new(config, params);
    let x = Tensor::randn([batch, 3, 32, 32], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(10, [batch], (Kind::Int64, Device::Cpu));
    let mut step = || {
        let loss = net
            .forward(&x, true)
            .cross_entropy_loss::<Tensor>(&y, None, Reduction::Mean, -100, 0.0);
        opt.backward_step(&loss, 0.01);
    };
    for _ in 0..3 {
        step();
    }
    let t = Instant::now();
    for _ in 0..steps {
        step();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "ktlab   {arch_name} width {width} batch {batch} threads {threads}: {:.1} images/s ({steps} steps in {secs:.2}s, {count} parameters)",
        (batch as usize * steps) as f64 / secs
    );
}
