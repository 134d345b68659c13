//! `ktlab datasets`: the named datasets with splits, image counts, classes and
//! fingerprints; `--check` decodes every image.
use std::process::ExitCode;

use super::session::Session;
use crate::cli::FingerprintArgs;
use crate::data::{fingerprint_with, open_split, DatasetFormat};
use crate::Error;

pub fn datasets(session: &Session, check: bool, how: FingerprintArgs) -> Result<ExitCode, Error> {
    let datasets = session.datasets_for(None)?;
    let Some(file) = &datasets.file else {
        return Err(Error::Usage(
            "no datasets file: pass --datasets FILE or run where datasets.toml is".into(),
        ));
    };
    println!("datasets from {}", file.display());
    let cache_dir = session.store.fingerprints_dir();
    let cache = how.cache(&cache_dir);
    let mut bad = 0usize;
    for (name, spec) in &datasets.specs {
        let location = match &spec.format {
            DatasetFormat::Synthetic { image_size, seed, .. } => format!("built in, {image_size}x{image_size}, seed {seed}"),
            DatasetFormat::ImageFolder { root } | DatasetFormat::Cifar10Binary { root } => root.display().to_string(),
            DatasetFormat::Subset { of, seed, .. } => format!("drawn from `{}`, seed {seed}", of.name),
        };
        println!("\n{name} ({}): {location}", spec.format.name());
        for split in crate::data::splits_of(spec)? {
            let source = match open_split(spec, &split) {
                Ok(s) => s,
                Err(e) => {
                    println!("  {split}: error: {e}");
                    bad += 1;
                    continue;
                }
            };
            let fp = fingerprint_with(spec, &split, how.mode, cache)?;
            println!(
                "  {split}: {} images, {} classes ({}), fingerprint {}",
                source.len(),
                source.classes().len(),
                abbreviate(source.classes()),
                &fp[..16]
            );
            if check {
                let failures: Vec<String> = {
                    use rayon::prelude::*;
                    (0..source.len())
                        .into_par_iter()
                        .filter_map(|i| source.load(i).err().map(|e| e.to_string()))
                        .collect()
                };
                for f in failures.iter().take(20) {
                    println!("    bad image: {f}");
                }
                if failures.is_empty() {
                    println!("    all {} images decode", source.len());
                }
                bad += failures.len();
            }
        }
    }
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

fn abbreviate(classes: &[String]) -> String {
    if classes.len() <= 10 {
        classes.join(", ")
    } else {
        format!("{}, ... {}", classes[..8].join(", "), classes[classes.len() - 1])
    }
}
