//! The commands behind the command line; everything here is callable without a process.
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::{Cli, Command, ExecutorKind, ExperimentArgs};
use crate::config::{self, did_you_mean, CliSettings, Datasets, Override, Settings};
use crate::data::{fingerprint, open_split, DatasetFormat, FingerprintMode};
use crate::exec::{LocalExecutor, Reporter, Selection};
use crate::plan::{build_plan, render_explain, render_plan, state_of, InstanceState, Plan, PlanEnv};
use crate::store::{Key, Record, Records, Store};
use crate::Error;

/// Everything a command needs besides its own arguments.
pub struct Session {
    pub settings: Settings,
    pub store: Store,
    pub reporter: Reporter,
}

pub fn run(cli: Cli) -> Result<ExitCode, Error> {
    let g = &cli.global;
    let settings = Settings::load(&CliSettings {
        store: g.store.clone(),
        results: g.results.clone(),
        datasets: g.datasets.clone(),
        log_format: g.log_format,
    })
    .map_err(|e| Error::Usage(format!("settings: {e}")))?;
    init_logging(&settings, g.verbose, g.quiet);
    let session = Session {
        store: Store::new(&settings.store),
        reporter: Reporter::new(settings.log_format, g.quiet),
        settings,
    };
    match cli.command {
        Command::Run { exp, force, only, batch } => match batch.executor {
            ExecutorKind::Local => cmd_run(&session, &exp, &Selection { force, only }),
            ExecutorKind::Slurm => crate::run_batch::cmd_run_batch(&session, &exp, &Selection { force, only }, &batch),
        },
        Command::Status { exp, executor } => crate::run_batch::cmd_status(&session, &exp, executor),
        Command::Report { exp, executor } => crate::run_batch::cmd_report(&session, &exp, executor),
        Command::ExecStage { submission, key, force } => crate::run_batch::cmd_exec_stage(&session, &submission, &key, force),
        Command::Plan { exp } => cmd_plan(&session, &exp),
        Command::Explain { exp, stage, variant } => cmd_explain(&session, &exp, &stage, variant.as_deref()),
        Command::Verify { exp, stage, variant } => crate::run_verify::cmd_verify(&session, &exp, &stage, variant.as_deref()),
        Command::Datasets { check, verify_data } => cmd_datasets(&session, check, verify_data),
        Command::Gc { dry_run, files } => cmd_gc(&session, dry_run, &files),
        Command::Perms {
            count,
            min_hamming,
            seed,
            out,
        } => cmd_perms(count, min_hamming, seed, &out),
    }
}

fn init_logging(settings: &Settings, verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KTLAB_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match settings.log_format {
        config::LogFormat::Json => builder.json().try_init(),
        config::LogFormat::Text => builder.without_time().try_init(),
    };
}

/// The datasets file for an experiment: --datasets/KTLAB_DATASETS, else beside the
/// experiment, else in the current folder; none found means no datasets.
pub fn datasets_for(settings: &Settings, experiment: Option<&Path>) -> Result<Datasets, Error> {
    if let Some(p) = &settings.datasets {
        return Ok(config::load_datasets(p)?);
    }
    let beside = experiment.and_then(Path::parent).map(|d| d.join("datasets.toml"));
    for candidate in beside.into_iter().chain([PathBuf::from("datasets.toml")]) {
        if candidate.is_file() {
            return Ok(config::load_datasets(&candidate)?);
        }
    }
    Ok(Datasets::default())
}

/// Reads, validates and keys an experiment.
pub fn load_plan(session: &Session, exp: &ExperimentArgs) -> Result<Plan, Error> {
    load_plan_env(session, exp, false).map(|(plan, _)| plan)
}

/// [`load_plan`], optionally tolerating datasets that cannot be read here (then listed).
fn load_plan_env(session: &Session, exp: &ExperimentArgs, allow_unavailable: bool) -> Result<(Plan, Vec<String>), Error> {
    let overrides = exp.set.iter().map(|s| s.parse::<Override>()).collect::<Result<Vec<_>, _>>()?;
    let variants = config::load_experiment(&exp.file, &overrides)?;
    let datasets = datasets_for(&session.settings, Some(&exp.file))?;
    let cache_dir = session.store.root.join("fingerprints");
    let mut env = PlanEnv {
        datasets: &datasets,
        verify_data: exp.verify_data,
        cache_dir: &cache_dir,
        fingerprints: HashMap::new(),
        allow_unavailable,
        unavailable: Vec::new(),
        devices: Default::default(),
    };
    let plan = build_plan(variants, &mut env)?;
    Ok((plan, env.unavailable))
}

pub fn check_stage_names(plan: &Plan, names: &[String], flag: &str) -> Result<(), Error> {
    let known: Vec<&str> = plan.variants.iter().flat_map(|v| v.stages.keys().map(String::as_str)).collect();
    for n in names {
        if !known.contains(&n.as_str()) {
            let hint = did_you_mean(n, known.iter().copied())
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            return Err(Error::Usage(format!(
                "{flag} {n}: no stage named `{n}` in {}{hint}",
                plan.file.display()
            )));
        }
    }
    Ok(())
}

pub fn cmd_run(session: &Session, exp: &ExperimentArgs, sel: &Selection) -> Result<ExitCode, Error> {
    let plan = load_plan(session, exp)?;
    check_stage_names(&plan, &sel.force, "--force")?;
    check_stage_names(&plan, &sel.only, "--only")?;
    // Pinned before the store is looked at: a concurrent gc leaves these entries alone.
    let _pins = session.store.pin(plan.instances.iter().map(|i| i.key))?;
    let executor = LocalExecutor {
        store: &session.store,
        reporter: &session.reporter,
    };
    let summary = executor.run(&plan, sel);
    save_records(session, &plan);
    let rows = crate::report::collect_rows(&plan, &session.store);
    let (dir, md) = crate::report::write_results(&plan, &rows, &session.settings.results)
        .map_err(|e| Error::Other(format!("writing results under {}: {e}", session.settings.results.display())))?;
    if !session.reporter.is_quiet() {
        println!("{md}");
        println!("results: {}", dir.join("results.csv").display());
        println!(
            "{} computed, {} cached, {} failed, {} skipped",
            summary.computed,
            summary.cached,
            summary.failed.len(),
            summary.skipped.len()
        );
    }
    if summary.failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("error: {} stage(s) failed:", summary.failed.len());
    for (label, err, _) in &summary.failed {
        eprintln!("  {label}: {err}");
    }
    for label in &summary.skipped {
        eprintln!("  {label}: not run (an input failed)");
    }
    let input_only = summary.failed.iter().all(|(_, _, input)| *input);
    Ok(ExitCode::from(if input_only { 2 } else { 1 }))
}

/// Remembers what each stage was keyed on, for `plan`'s reasons.
pub(crate) fn save_records(session: &Session, plan: &Plan) {
    let mut records = Records::load(&session.store.root, &plan.experiment);
    for v in &plan.variants {
        for (stage, &i) in &v.stages {
            let inst = &plan.instances[i];
            if matches!(session.store.state(inst.kind, &inst.key, false), crate::store::EntryState::Valid(_)) {
                records.stages.entry(v.name.clone()).or_default().insert(
                    stage.clone(),
                    Record {
                        key: inst.key.hex(),
                        key_input: inst.key_input.clone(),
                    },
                );
            }
        }
    }
    if let Err(e) = records.save(&session.store.root, &plan.experiment) {
        tracing::warn!("cannot save run records: {e}");
    }
}

pub fn cmd_plan(session: &Session, exp: &ExperimentArgs) -> Result<ExitCode, Error> {
    let (plan, unavailable) = load_plan_env(session, exp, true)?;
    let records = Records::load(&session.store.root, &plan.experiment);
    let states: Vec<InstanceState> = plan
        .instances
        .iter()
        .map(|i| state_of(&plan, i, &session.store, &records))
        .collect();
    print!("{}", render_plan(&plan, &states));
    if !unavailable.is_empty() {
        println!("\nnot available on this machine (the stages reading them cannot run here):");
        for u in &unavailable {
            println!("  {u}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn cmd_explain(session: &Session, exp: &ExperimentArgs, stage: &str, variant: Option<&str>) -> Result<ExitCode, Error> {
    let plan = load_plan(session, exp)?;
    let variant = resolve_variant(&plan, variant)?;
    check_stage_names(&plan, &[stage.to_string()], "explain")?;
    let text = render_explain(&plan, &variant, stage).ok_or_else(|| Error::Usage(format!("no stage `{stage}` in variant `{variant}`")))?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// The variant named (with a "did you mean"), or the first.
pub fn resolve_variant(plan: &Plan, variant: Option<&str>) -> Result<String, Error> {
    Ok(match variant {
        Some(v) => plan.variant(v).map(|v| v.name.clone()).ok_or_else(|| {
            let hint = did_you_mean(v, plan.variants.iter().map(|x| x.name.as_str()))
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            Error::Usage(format!(
                "no variant `{v}`; variants: {}{hint}",
                plan.variants.iter().map(|x| x.name.as_str()).collect::<Vec<_>>().join(", ")
            ))
        })?,
        None => plan.variants[0].name.clone(),
    })
}

pub fn cmd_datasets(session: &Session, check: bool, verify_data: bool) -> Result<ExitCode, Error> {
    let datasets = datasets_for(&session.settings, None)?;
    let Some(file) = &datasets.file else {
        return Err(Error::Usage(
            "no datasets file: pass --datasets FILE or run where datasets.toml is".into(),
        ));
    };
    println!("datasets from {}", file.display());
    let mode = if verify_data {
        FingerprintMode::Contents
    } else {
        FingerprintMode::Metadata
    };
    let cache = session.store.root.join("fingerprints");
    let mut bad = 0usize;
    for (name, spec) in &datasets.specs {
        let location = match &spec.format {
            DatasetFormat::Synthetic { image_size, seed, .. } => format!("built in, {image_size}x{image_size}, seed {seed}"),
            DatasetFormat::ImageFolder { root } | DatasetFormat::Cifar10Binary { root } => root.display().to_string(),
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
            let fp = fingerprint(spec, &split, mode, Some(&cache))?;
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

pub fn cmd_gc(session: &Session, dry_run: bool, files: &[PathBuf]) -> Result<ExitCode, Error> {
    let files: Vec<PathBuf> = if files.is_empty() {
        walkdir::WalkDir::new("experiments")
            .sort_by_file_name()
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "toml") && e.file_name() != "datasets.toml")
            .map(|e| e.into_path())
            .collect()
    } else {
        files.to_vec()
    };
    let mut keep = HashSet::new();
    for f in &files {
        let (plan, unavailable) = load_plan_env(
            session,
            &ExperimentArgs {
                file: f.clone(),
                ..Default::default()
            },
            true,
        )?;
        keep.extend(plan.instances.iter().map(|i| i.key));
        if !unavailable.is_empty() {
            // Its keys cannot be computed without the data: keep what it last ran with.
            let records = Records::load(&session.store.root, &plan.experiment);
            let recorded: Vec<Key> = records
                .stages
                .values()
                .flat_map(|stages| stages.values())
                .filter_map(|r| Key::parse(&r.key))
                .collect();
            eprintln!(
                "note: {} reads data not available here ({}); keeping the {} entries it last ran with",
                f.display(),
                unavailable.join("; "),
                recorded.len()
            );
            keep.extend(recorded);
        }
    }
    let report = crate::store::gc(&session.store, &crate::stages::StageKind::names(), &keep, dry_run)?;
    let verb = if dry_run { "would remove" } else { "removed" };
    println!(
        "{verb} {} entries ({} bytes freed{}), kept {} referenced by {} experiment file(s){}",
        report.removed,
        report.bytes,
        if dry_run { " if run" } else { "" },
        report.kept,
        files.len(),
        if report.busy > 0 {
            format!(", skipped {} in use", report.busy)
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `ktlab perms`: a max-min-Hamming permutation set, written as `permutations_<N>.bin`.
pub fn cmd_perms(count: usize, min_hamming: usize, seed: u64, out: &Path) -> Result<ExitCode, Error> {
    use crate::pretext::permutations::PermutationSet;
    let set = PermutationSet::generate(count, min_hamming, seed).map_err(|e| Error::Usage(e.to_string()))?;
    set.write_bin(out).map_err(|e| Error::Other(e.to_string()))?;
    println!(
        "{} permutations, minimum Hamming distance {}, written to {}",
        set.len(),
        set.min_hamming(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
