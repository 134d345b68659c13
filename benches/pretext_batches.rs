//! Jigsaw++ batch assembly against the training step that consumes it, in one run:
//! samples per second that the producer makes (every tile cut, shifted, grayscaled,
//! replaced and normalised, the samples of a batch in parallel), and samples per second
//! that a context-free network's training step (forward, backward, SGD) takes in.
//! Training overlaps assembly (a producer thread), so assembly must be the faster one.
//!
//! `--task contrastive` measures the same for contrastive views (two random resized crops
//! with flips, colour jitter and grayscale per image, 32 px) against `alexnet-small`'s
//! training step with the projection head and NT-Xent on both views (`--cuda`: the step on
//! the first CUDA device, each batch copied there from the host).
//!
//! `--task colorization` and `--task inpainting` measure the dense tasks: Lab conversion and
//! block-mean ab targets of 32 px images (colourisation; the rebalancing weights from the
//! images' prior), or masked images with their targets (inpainting, centre masks; `--blocks`
//! random blocks), against `alexnet-small`'s training step through the conv5 decoder.
//!
//! `cargo bench --bench pretext_batches -- [--task contrastive [--cuda]] [--task
//! colorization|inpainting [--blocks]] [--batch 64] [--threads 2] [--steps 10]`
use std::sync::Arc;
use std::time::Instant;

use ktlab::data::Synthetic;
use ktlab::models::{Arch, NetConfig};
use ktlab::pretext::cfn::{ContextFree, JigsawHead};
use ktlab::pretext::colorization::{ColorLoss, Colorize};
use ktlab::pretext::contrastive::{ContrastiveNet, NtXent, Views};
use ktlab::pretext::decoder::DenseNet;
use ktlab::pretext::inpainting::{mean_colour, Inpaint, InpaintLoss, MaskConfig, MaskKind, RegionMetric};
use ktlab::pretext::jigsaw::{Jigsaw, JigsawConfig};
use ktlab::pretext::lab::output_side;
use ktlab::pretext::lab::{rebalancing_weights, smoothed_prior};
use ktlab::pretext::permutations::PermutationSet;
use ktlab::pretext::views::ViewConfig;
use ktlab::train::batches::{assemble, epoch_order, ImageSet, SampleMaker};
use ktlab::train::objective::Objective;
use ktlab::train::optim::{Optimizer, OptimizerConfig};
use tch::{nn, Device, Reduction, Tensor};

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let batch = arg("--batch", 64.0) as usize;
    let threads = arg("--threads", 2.0) as usize;
    let steps = arg("--steps", 10.0) as usize;
    tch::set_num_threads(threads as i32);
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().ok();
    if std::env::args().any(|a| a == "contrastive") {
        let device = if std::env::args().any(|a| a == "--cuda") {
            Device::Cuda(0)
        } else {
            Device::Cpu
        };
        contrastive(batch, threads, steps, device);
        return;
    }
    if std::env::args().any(|a| a == "colorization" || a == "inpainting") {
        dense(batch, threads, steps);
        return;
    }
    // The quickstart's setting: synthetic 32 px images shown at 64 px, a 57 px crop,
    // 19 px cells, 16 px tiles, 701 permutations, up to 2 replaced tiles.
    let source = Synthetic::new("shapes", "unlabeled", 32, 0, 2000).expect("synthetic");
    let set = Arc::new(ImageSet::load(&source, 64, &|_, _| {}).expect("images"));
    let perms = PermutationSet::generate(701, 3, 0).expect("permutations");
    let cfg = JigsawConfig {
        crop: 57,
        tile: 16,
        channel_shift: 0,
        grayscale: 0.7,
        max_replaced: 2,
        normalize: true,
        original: None,
    };
    let task = Jigsaw::new(set, &perms, cfg).expect("jigsaw");
    let order = epoch_order(2000, batch, 0, 0);
    // Assembly alone.
    let t = Instant::now();
    let mut made = 0;
    let mut batches = Vec::new();
    for chunk in &order {
        let bt = assemble(&task, chunk, 0, 0).expect("batch");
        made += chunk.len();
        if batches.len() < 2 {
            batches.push(bt);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "assembly   jigsaw++ 9 x 16 px tiles, {threads} threads: {:.0} samples/s ({made} samples in {secs:.2}s)",
        made as f64 / secs
    );
    for (arch, width) in [(Arch::AlexnetSmall, 0.5), (Arch::Vgg16Small, 0.5), (Arch::Vgg16Small, 0.25)] {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let net_cfg = NetConfig {
            arch,
            width,
            batch_norm: true,
            in_channels: 3,
            image_size: 16,
        };
        let net = ContextFree::new(&vs.root(), &net_cfg, &JigsawHead::for_config(&net_cfg, 701)).expect("network");
        let params: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        let mut opt = Optimizer::new(OptimizerConfig::sgd(0.9, 5e-4), params);
        let mut step = |i: usize| {
            let b = &batches[i % batches.len()];
            let loss = net
                .forward(&b.inputs, true)
                .cross_entropy_loss::<Tensor>(&b.targets, None, Reduction::Mean, -100, 0.0);
            opt.backward_step(&loss, 0.01);
        };
        step(0);
        let t = Instant::now();
        for i in 0..steps {
            step(i);
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "training   {arch} width {width} batch {batch}, {threads} threads: {:.0} samples/s ({steps} steps in {secs:.2}s)",
            (batch * steps) as f64 / secs
        );
    }
}

/// Contrastive views of the synthetic 32 px images (SimCLR's strengths for CIFAR-10, the
/// stage's defaults) against `alexnet-small`'s step on them.
fn contrastive(batch: usize, threads: usize, steps: usize, device: Device) {
    let source = Synthetic::new("shapes", "unlabeled", 32, 0, 2000).expect("synthetic");
    let set = Arc::new(ImageSet::load(&source, 32, &|_, _| {}).expect("images"));
    let views = Views {
        set,
        config: ViewConfig {
            crop_min_scale: 0.08,
            flip: true,
            jitter_strength: 0.5,
            jitter_prob: 0.8,
            grayscale_prob: 0.2,
        },
    };
    let order = epoch_order(2000, batch, 0, 0);
    let t = Instant::now();
    let mut made = 0;
    let mut batches = Vec::new();
    for chunk in &order {
        let bt = assemble(&views, chunk, 0, 0).expect("batch");
        made += chunk.len();
        if batches.len() < 2 {
            batches.push(bt);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "assembly   contrastive 2 views of 32 px, {threads} threads: {:.0} samples/s ({made} samples in {secs:.2}s)",
        made as f64 / secs
    );
    let objective = NtXent { temperature: 0.5 };
    for width in [0.5, 1.0] {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(device);
        let net_cfg = NetConfig {
            arch: Arch::AlexnetSmall,
            width,
            batch_norm: true,
            in_channels: 3,
            image_size: 32,
        };
        let (net, _) = ContrastiveNet::new(&vs.root(), &net_cfg, 128).expect("network");
        let params: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        let mut opt = Optimizer::new(OptimizerConfig::sgd(0.9, 5e-4), params);
        let mut step = |i: usize| {
            let b = &batches[i % batches.len()];
            let loss = objective.loss(&net.forward(&b.inputs.to_device(device), true), &b.targets);
            opt.backward_step(&loss, 0.01);
            if device.is_cuda() {
                let _ = loss.double_value(&[]);
            }
        };
        step(0);
        let t = Instant::now();
        for i in 0..steps {
            step(i);
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "training   alexnet-small width {width} contrastive batch {batch} (2 views each) on {device:?}, {threads} threads: {:.0} samples/s ({steps} steps in {secs:.2}s)",
            (batch * steps) as f64 / secs
        );
    }
}

/// Colourisation or inpainting samples of the synthetic 32 px images against
/// `alexnet-small`'s training step through the decoder on conv5.
fn dense(batch: usize, threads: usize, steps: usize) {
    let source = Synthetic::new("shapes", "unlabeled", 32, 0, 2000).expect("synthetic");
    let set = Arc::new(ImageSet::load(&source, 32, &|_, _| {}).expect("images"));
    let colorization = std::env::args().any(|a| a == "colorization");
    let blocks = std::env::args().any(|a| a == "--blocks");
    let (maker, objective, side, out, what): (Box<dyn SampleMaker>, Box<dyn Objective>, i64, i64, String) = if colorization {
        let maker = Colorize { set, flip: true };
        let t = Instant::now();
        let weights = rebalancing_weights(&smoothed_prior(&maker.histogram().expect("histogram"), 5.0), 0.5);
        println!(
            "prior      ab histogram of 2000 images and weights: {:.2}s",
            t.elapsed().as_secs_f64()
        );
        let loss = ColorLoss::Classification { weights };
        let channels = loss.channels();
        (
            Box::new(maker),
            Box::new(loss),
            output_side(32) as i64,
            channels,
            "colorization L -> 8 x 8 ab".into(),
        )
    } else {
        let mask = MaskConfig {
            kind: if blocks { MaskKind::Blocks } else { MaskKind::Center },
            size: if blocks { 8 } else { 16 },
        };
        let fill = mean_colour(&set).expect("mean colour");
        let maker = Inpaint {
            set,
            mask,
            fill,
            flip: true,
        };
        let loss = InpaintLoss {
            outside_weight: 0.0,
            metric: RegionMetric::Psnr,
        };
        let name = if blocks { "inpainting blocks" } else { "inpainting center" };
        (Box::new(maker), Box::new(loss), 32, 3, format!("{name} 32 px"))
    };
    let order = epoch_order(2000, batch, 0, 0);
    let t = Instant::now();
    let mut made = 0;
    let mut batches = Vec::new();
    for chunk in &order {
        let bt = assemble(maker.as_ref(), chunk, 0, 0).expect("batch");
        made += chunk.len();
        if batches.len() < 2 {
            batches.push(bt);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "assembly   {what}, {threads} threads: {:.0} samples/s ({made} samples in {secs:.2}s)",
        made as f64 / secs
    );
    for width in [0.5, 1.0] {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let net_cfg = NetConfig {
            arch: Arch::AlexnetSmall,
            width,
            batch_norm: true,
            in_channels: 3,
            image_size: 32,
        };
        let (net, _) = DenseNet::new(&vs.root(), &net_cfg, "conv5", side, out).expect("network");
        let params: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        let mut opt = Optimizer::new(OptimizerConfig::sgd(0.9, 5e-4), params);
        let mut step = |i: usize| {
            let b = &batches[i % batches.len()];
            let loss = objective.loss(&net.forward(&b.inputs, true), &b.targets);
            opt.backward_step(&loss, 0.01);
        };
        step(0);
        let t = Instant::now();
        for i in 0..steps {
            step(i);
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "training   alexnet-small width {width} + decoder, {what}, batch {batch}, {threads} threads: {:.0} samples/s ({steps} steps in {secs:.2}s)",
            (batch * steps) as f64 / secs
        );
    }
}
