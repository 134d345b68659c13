//! The input pipeline of a streamed ImageNet-style split, alone: images per second that
//! `ktlab`'s batch producer delivers from an image folder of JPEGs, each image decoded,
//! cut by a random resized crop (ImageNet's scale and ratio), resampled to the input side,
//! flipped with probability 1/2 and normalised into a float batch. The batches of the first
//! `--warmup` are not timed. `scripts/bench_input.py` runs it beside PyTorch's `DataLoader`
//! over torchvision's `ImageFolder` on the same files.
//!
//! `cargo bench --bench input_pipeline -- <folder> [--split train] [--size 224] [--batch 64]
//! [--batches 20] [--warmup 2] [--threads 2]`
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use ktlab::data::{Fit, ImageFolder, Source};
use ktlab::train::batches::{epoch_batches, Augment, ImageSet, Labeled, ResizedCrop, SampleMaker};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let Some(root) = args.first().filter(|a| !a.starts_with("--")).map(PathBuf::from) else {
        eprintln!(
            "usage: input_pipeline <image folder> [--split train] [--size 224] [--batch 64] [--batches 20] [--warmup 2] [--threads 2]"
        );
        std::process::exit(2);
    };
    let num = |name: &str, default: &str| -> usize {
        arg(&args, name, default)
            .parse()
            .unwrap_or_else(|_| panic!("{name} expects a number"))
    };
    let (size, batch, batches, warmup, threads) = (
        num("--size", "224"),
        num("--batch", "64"),
        num("--batches", "20"),
        num("--warmup", "2"),
        num("--threads", "2"),
    );
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("thread pool");
    let split = arg(&args, "--split", "train");
    let source: Arc<dyn Source> = Arc::new(ImageFolder::open("bench", &root, &split).unwrap_or_else(|e| panic!("{e}")));
    let n = source.len();
    let labels = (0..n).map(|i| source.label(i).unwrap_or(0) as i64).collect();
    let set = ImageSet::open(source, size, Fit::Squash, 0, &|_, _| {}).expect("image set");
    let maker: Arc<dyn SampleMaker> = Arc::new(Labeled {
        set: Arc::new(set),
        labels,
        augment: Augment {
            crop_padding: 0,
            flip: true,
            resized_crop: Some(ResizedCrop::IMAGENET),
        },
    });
    assert!(
        (warmup + batches) * batch <= n,
        "{n} images are fewer than {} batches of {batch}",
        warmup + batches
    );
    let mut rx = epoch_batches(maker, batch, 0, 0);
    for _ in 0..warmup {
        rx.next().expect("a batch").expect("decoded");
    }
    let clock = Instant::now();
    let mut images = 0;
    for _ in 0..batches {
        let b = rx.next().expect("a batch").expect("decoded");
        images += b.inputs.size()[0] as usize;
    }
    let seconds = clock.elapsed().as_secs_f64();
    println!(
        "ktlab: {images} images at {size} px in {seconds:.2} s: {:.1} images/s ({threads} threads, batch {batch})",
        images as f64 / seconds
    );
}
