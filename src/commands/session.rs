//! What every command shares: the settings, logging, the store, loading a plan with its
//! options, dataset lookup, variant and stage names, saving records, and finishing a run
//! with one summary and one exit-code rule.
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::{ExecutorKind, ExperimentArgs, GlobalArgs};
use crate::config::{self, did_you_mean, load_datasets_based, CliSettings, Datasets, Override, RawExperiment, Settings};
use crate::exec::{Reporter, RunSummary, Submission};
use crate::plan::{build_plan, DevicePolicy, Plan, PlanEnv};
use crate::store::{EntryState, Record, Records, Store};
use crate::Error;

/// Everything a command needs besides its own arguments.
pub struct Session {
    pub settings: Settings,
    pub store: Store,
    /// Where result tables go (`<results>/<experiment>/`).
    pub results: PathBuf,
    /// The project folder the store and results defaults came from, if one was found.
    pub project: Option<PathBuf>,
    pub reporter: Reporter,
    /// When the command started: a run's summary gives its wall time.
    pub started: std::time::Instant,
}

/// How an experiment is planned.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlanOptions {
    /// How `device` settings resolve (probe this machine, or as declared for a cluster).
    pub devices: DevicePolicy,
    /// Plan even when a dataset cannot be read here; the unreadable ones are listed.
    pub allow_unavailable: bool,
}

impl PlanOptions {
    /// The device policy of the executor a command speaks for.
    pub fn for_executor(executor: ExecutorKind) -> PlanOptions {
        PlanOptions {
            devices: match executor {
                ExecutorKind::Local => DevicePolicy::Probe,
                ExecutorKind::Slurm => DevicePolicy::Declared,
            },
            allow_unavailable: false,
        }
    }
}

/// A keyed plan with the datasets it was planned with.
pub struct LoadedPlan {
    pub plan: Plan,
    pub datasets: Datasets,
    /// `dataset:split: why` for each split that could not be read (with `allow_unavailable`).
    pub unavailable: Vec<String>,
}

impl Session {
    /// Reads the settings (defaults, `KTLAB_*`, flags), finds the store and results
    /// folders (from the project folder of `anchor`, the command's experiment file, or of
    /// the current folder) and starts logging.
    pub fn start(global: &GlobalArgs, anchor: Option<&Path>) -> Result<Session, Error> {
        let settings = Settings::load(&CliSettings {
            store: global.store.clone(),
            results: global.results.clone(),
            datasets: global.datasets.clone(),
            log_format: global.log_format,
        })
        .map_err(Error::Settings)?;
        // The image-reading settings stages read from the environment: refused up front.
        crate::data::decode_budget()?;
        crate::data::decode_cache()?;
        init_logging(&settings, global.verbose, global.quiet);
        let located = settings.locate(anchor);
        Ok(Session {
            store: Store::new(located.store),
            results: located.results,
            project: located.project,
            reporter: Reporter::new(settings.log_format, global.quiet, global.verbose),
            settings,
            started: std::time::Instant::now(),
        })
    }

    /// Says which store a command uses (one line on stderr; nothing when quiet).
    pub fn announce_store(&self) {
        if self.reporter.is_quiet() {
            return;
        }
        let path = absolute(&self.store.root);
        match self.settings.log_format {
            config::LogFormat::Json => eprintln!("{}", serde_json::json!({"event": "store", "path": path})),
            config::LogFormat::Text => eprintln!("store: {}", path.display()),
        }
    }

    /// The datasets file for an experiment: --datasets/KTLAB_DATASETS, else beside the
    /// experiment, else in the project folder, else in the current folder; none found
    /// means no datasets.
    pub fn datasets_for(&self, experiment: Option<&Path>) -> Result<Datasets, Error> {
        if let Some(p) = &self.settings.datasets {
            return Ok(config::load_datasets(p)?);
        }
        let beside = experiment.and_then(Path::parent).map(|d| d.join("datasets.toml"));
        let in_project = self.project.as_ref().map(|d| d.join("datasets.toml"));
        for candidate in beside.into_iter().chain(in_project).chain([PathBuf::from("datasets.toml")]) {
            if candidate.is_file() {
                return Ok(config::load_datasets(&candidate)?);
            }
        }
        Ok(Datasets::default())
    }

    /// Reads, validates and keys an experiment with the datasets found for it.
    pub fn load_plan(&self, exp: &ExperimentArgs, options: PlanOptions) -> Result<LoadedPlan, Error> {
        // The experiment first: its own errors come before those of the datasets file.
        let variants = read_experiment(exp)?;
        let datasets = self.datasets_for(Some(&exp.file))?;
        self.key_plan(exp, variants, datasets, options)
    }

    /// Reads, validates and keys an experiment with the given datasets.
    pub fn plan_with(&self, exp: &ExperimentArgs, datasets: Datasets, options: PlanOptions) -> Result<LoadedPlan, Error> {
        let variants = read_experiment(exp)?;
        self.key_plan(exp, variants, datasets, options)
    }

    fn key_plan(
        &self,
        exp: &ExperimentArgs,
        variants: Vec<RawExperiment>,
        datasets: Datasets,
        options: PlanOptions,
    ) -> Result<LoadedPlan, Error> {
        let cache_dir = self.store.fingerprints_dir();
        let mut env = PlanEnv {
            datasets: &datasets,
            mode: exp.fingerprint.mode,
            cache: exp.fingerprint.cache(&cache_dir),
            fingerprints: HashMap::new(),
            summaries: HashMap::new(),
            allow_unavailable: options.allow_unavailable,
            unavailable: Vec::new(),
            devices: options.devices,
        };
        let plan = build_plan(variants, &mut env)?;
        let unavailable = env.unavailable;
        Ok(LoadedPlan {
            plan,
            datasets,
            unavailable,
        })
    }

    /// The experiment, datasets and `--set` values of a cluster submission, planned as
    /// its jobs see them.
    pub fn submission_plan(&self, sub: &Submission) -> Result<Plan, Error> {
        let exp = ExperimentArgs {
            file: sub.experiment_path(),
            set: sub.info.set.clone(),
            fingerprint: crate::cli::FingerprintArgs {
                mode: sub.info.fingerprint,
                verify_data: false,
            },
        };
        let datasets = match sub.datasets_path() {
            Some(p) => load_datasets_based(&p, sub.info.datasets_base.as_deref())?,
            None => Datasets::default(),
        };
        let options = PlanOptions::for_executor(ExecutorKind::Slurm);
        Ok(self.plan_with(&exp, datasets, options)?.plan)
    }

    /// The store by an absolute path: cluster jobs run in other folders.
    pub fn absolute_store(&self) -> Store {
        Store::new(absolute(&self.store.root))
    }

    /// Remembers what each stage was keyed on, for `plan`'s reasons.
    pub fn save_records(&self, plan: &Plan) {
        let mut records = Records::load(&self.store, &plan.experiment);
        for v in &plan.variants {
            for (stage, &i) in &v.stages {
                let inst = &plan.instances[i];
                if matches!(self.store.state(inst.kind, &inst.key, false), EntryState::Valid(_)) {
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
        if let Err(e) = records.save(&self.store, &plan.experiment) {
            tracing::warn!("cannot save run records: {e}");
        }
    }

    /// The plan's instances the store has no valid entry for.
    pub fn missing_instances<'p>(&self, plan: &'p Plan) -> Vec<&'p crate::plan::StageInstance> {
        plan.instances
            .iter()
            .filter(|i| !matches!(self.store.state(i.kind, &i.key, false), EntryState::Valid(_)))
            .collect()
    }

    /// Refuses a plan whose results folder another experiment file of the same name
    /// wrote (exit 2, naming both).
    pub fn check_results_owner(&self, plan: &Plan) -> Result<(), Error> {
        match crate::report::results_owner_conflict(plan, &self.results) {
            Some(other) => Err(Error::Usage(format!(
                "{} and {} are both named `{}`: their results would overwrite each other in {}; rename one, or pass --results DIR",
                plan.file.display(),
                other.display(),
                plan.experiment,
                self.results.join(&plan.experiment).display()
            ))),
            None => Ok(()),
        }
    }

    /// Rewrites the results folder from the store, as one unit ([`StagedFolder`]):
    /// results.csv, results.md, the copy of the experiment file, the decisions, the tables,
    /// their plots, provenance.json, the training curves and tensorboard.txt; returns what it
    /// wrote, for [`Session::show_tables`] and [`Written::location`]. Only when every instance of the plan is in the store:
    /// otherwise the folder is left as it was (it describes the last complete run, or does
    /// not exist), one line says why (`why`: what would complete it), and `None` is returned.
    ///
    /// [`StagedFolder`]: crate::report::StagedFolder
    pub fn write_tables(&self, plan: &Plan, why: &str) -> Result<Option<Written>, Error> {
        self.check_results_owner(plan)?;
        let missing = self.missing_instances(plan).len();
        if missing > 0 {
            if !self.reporter.is_quiet() {
                println!(
                    "{}",
                    not_rewritten(&self.results.join(&plan.experiment), missing, plan.instances.len(), why)
                );
            }
            return Ok(None);
        }
        let rows = crate::report::collect_rows(plan, &self.store);
        let io = |what: &str| {
            let what = format!("{what} under {}", self.results.join(&plan.experiment).display());
            move |source| Error::Io { what, source }
        };
        let staged = crate::report::StagedFolder::begin(&self.results, &plan.experiment).map_err(io("writing results"))?;
        let new = staged.path().to_path_buf();
        let long_form = crate::report::write_results(plan, &rows, &new).map_err(io("writing results"))?;
        let computed = crate::report::computed_at(plan, &self.store);
        let decided = crate::report::decide(plan, &rows);
        let tables = crate::report::write_tables(plan, &rows, &decided, &new, computed.as_deref()).map_err(io("writing tables"))?;
        crate::report::write_decisions(plan, &decided, &new).map_err(io("writing the decisions"))?;
        let histories = crate::report::collect_histories(plan, &self.store);
        let curves = crate::report::write_training_curves(plan, &histories, &new).map_err(io("writing the training curves"))?;
        let files = crate::report::curve_files(plan, &self.store);
        let epochs = crate::report::write_curve_files(&files, &new).map_err(io("writing the training curves"))?;
        let results_dir = absolute(&self.results.join(&plan.experiment));
        let events = crate::report::write_tensorboard_list(plan, &self.absolute_store(), &new, &results_dir)
            .map_err(io("writing the TensorBoard list"))?;
        let built = crate::report::tables(plan, &rows);
        crate::report::write_html(plan, &built, &decided, &self.store, &new, computed.as_deref()).map_err(io("writing index.html"))?;
        let dir = staged.commit().map_err(io("switching in the new results"))?;
        Ok(Some(Written {
            dir,
            long_form,
            tables,
            decisions: decided,
            training_curves: !curves.is_empty(),
            epochs_files: epochs.len(),
            tensorboard: events.is_some(),
        }))
    }

    /// The tables as a command ends with them (unless quiet): every table the experiment
    /// names (or its default tables); without any, the long-form results when they are
    /// short, else where they are.
    pub fn show_tables(&self, written: &Written) {
        if self.reporter.is_quiet() {
            return;
        }
        for t in &written.tables {
            println!("{}", t.markdown);
        }
        if written.tables.is_empty() {
            let rows = written.long_form.lines().filter(|l| l.starts_with("| ")).count().saturating_sub(1);
            if rows <= SHOWN_RESULT_ROWS {
                println!("{}", written.long_form);
            } else {
                println!("{rows} result rows: see {}\n", written.dir.join("results.md").display());
            }
        }
    }

    /// One line per decision of the experiment (unless quiet): those of the results folder
    /// just written, or, where it was not rewritten, evaluated from what the store holds
    /// (a decision whose values are not all there is "missing").
    pub fn show_decisions(&self, plan: &Plan, written: Option<&Written>) {
        if self.reporter.is_quiet() || plan.decisions.is_empty() {
            return;
        }
        let decided = match written {
            Some(w) => w.decisions.clone(),
            None => crate::report::decide(plan, &crate::report::collect_rows(plan, &self.store)),
        };
        for d in &decided {
            println!("{}", crate::report::decision_line(d));
        }
    }

    /// The end of every run, local or on a cluster: records, the tables, the decisions, the
    /// one summary line (with the wall time), where the results are, each failure, and the
    /// exit code of [`run_exit_code`].
    pub fn finish_run(&self, plan: &Plan, summary: &RunSummary) -> Result<ExitCode, Error> {
        self.save_records(plan);
        let why = match summary.failed.len() {
            0 if summary.skipped.is_empty() => format!("run `ktlab run {}` without --only to complete it", plan.file.display()),
            0 => "an input of a stage failed".to_string(),
            1 => "1 stage failed".to_string(),
            n => format!("{n} stages failed"),
        };
        let written = self.write_tables(plan, &why)?;
        if let Some(w) = &written {
            self.show_tables(w);
        }
        self.show_decisions(plan, written.as_ref());
        if !self.reporter.is_quiet() {
            println!(
                "{} computed, {} cached, {} failed, {} skipped in {}",
                summary.computed,
                summary.cached,
                summary.failed.len(),
                summary.skipped.len(),
                crate::exec::human_duration(self.started.elapsed())
            );
            if let Some(w) = &written {
                println!("{}", w.location());
            }
        }
        if !summary.failed.is_empty() {
            eprintln!("error: {} stage(s) failed:", summary.failed.len());
            for (label, err, _) in &summary.failed {
                eprintln!("  {label}: {err}");
            }
            for label in &summary.skipped {
                eprintln!("  {label}: not run (an input failed)");
            }
        }
        Ok(ExitCode::from(run_exit_code(summary)))
    }
}

/// The long-form results are shown at the end of a run without named tables when they
/// have at most this many rows.
const SHOWN_RESULT_ROWS: usize = 30;

/// What [`Session::write_tables`] wrote into a results folder.
pub struct Written {
    /// The results folder.
    pub dir: PathBuf,
    /// results.md: every value, one row per (variant, stage, layer).
    pub long_form: String,
    pub tables: Vec<crate::report::WrittenTable>,
    /// The experiment's decisions, evaluated (decisions.md and .csv when any).
    pub decisions: Vec<crate::report::Decided>,
    pub training_curves: bool,
    /// The number of `epochs.csv` files under `curves/`.
    pub epochs_files: usize,
    /// Whether `tensorboard.txt` lists the training stages' event folders.
    pub tensorboard: bool,
}

impl Written {
    /// One line: the folder and what is in it (`results in results/quickstart/: results.md
    /// (every value), tables a, b (.md .csv .tex), plots a, training_curves (.svg .png), ...`).
    pub fn location(&self) -> String {
        let mut parts = vec![
            format!("{} (the report in one page)", crate::report::INDEX_HTML),
            "results.md and results.csv (every value)".to_string(),
        ];
        if !self.decisions.is_empty() {
            parts.push(format!("{0}.md and {0}.csv", crate::plan::DECISIONS));
        }
        if !self.tables.is_empty() {
            let names: Vec<&str> = self.tables.iter().map(|t| t.name.as_str()).collect();
            parts.push(format!("tables {} (.md .csv .tex)", names.join(", ")));
        }
        let mut plots: Vec<&str> = self
            .tables
            .iter()
            .filter(|t| t.files.iter().any(|f| f.extension().is_some_and(|e| e == "svg")))
            .map(|t| t.name.as_str())
            .collect();
        if self.training_curves {
            plots.push(crate::plan::TRAINING_CURVES);
        }
        if !plots.is_empty() {
            parts.push(format!("plots {} (.svg .png)", plots.join(", ")));
        }
        if !self.tables.is_empty() || !self.decisions.is_empty() {
            parts.push("provenance.json".into());
        }
        if self.epochs_files > 0 {
            parts.push(format!("{}/ ({} epochs.csv)", crate::report::CURVES_DIR, self.epochs_files));
        }
        if self.tensorboard {
            parts.push("tensorboard.txt (the training stages' TensorBoard folders)".into());
        }
        // Under the current folder, as a path from it (`results/quickstart/`).
        let here = std::env::current_dir().ok();
        let shown = here.as_deref().and_then(|h| self.dir.strip_prefix(h).ok()).unwrap_or(&self.dir);
        format!("results in {}/: {}", shown.display(), parts.join(", "))
    }
}

/// The line that says why a results folder was left as it was.
fn not_rewritten(dir: &Path, missing: usize, total: usize, why: &str) -> String {
    format!(
        "{} not rewritten: {missing} of {total} stage instances are not in the store ({why})",
        dir.display()
    )
}

/// The experiment file with its `--set` values, one raw tree per variant.
fn read_experiment(exp: &ExperimentArgs) -> Result<Vec<RawExperiment>, Error> {
    let overrides = exp.set.iter().map(|s| s.parse::<Override>()).collect::<Result<Vec<_>, _>>()?;
    Ok(config::load_experiment(&exp.file, &overrides)?)
}

/// `p` made absolute against the current folder (unchanged if that fails).
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The exit code of a run: 0 when nothing failed; 2 when every failure is one of bad
/// input (the data or a value the stage cannot use); 1 otherwise.
pub fn run_exit_code(summary: &RunSummary) -> u8 {
    if summary.failed.is_empty() {
        0
    } else if summary.failed.iter().all(|(_, _, input)| *input) {
        2
    } else {
        1
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
    // Colour only for a person at a terminal, never in files, pipes or CI logs.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match settings.log_format {
        config::LogFormat::Json => builder.json().try_init(),
        // A user reads "WARN what happened", not the Rust module that said it; `-vv` shows it.
        config::LogFormat::Text => builder.without_time().with_target(verbose >= 2).try_init(),
    };
}

/// Every name in `names` is a stage of the plan, or a usage error naming `flag`.
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

/// The instance of `stage` in `variant` (default: the first), checked by name.
pub fn instance_of(plan: &Plan, stage: &str, variant: Option<&str>, command: &str) -> Result<(String, usize), Error> {
    let variant = resolve_variant(plan, variant)?;
    check_stage_names(plan, &[stage.to_string()], command)?;
    let idx = plan
        .variant(&variant)
        .and_then(|v| v.stages.get(stage).copied())
        .ok_or_else(|| Error::Usage(format!("no stage `{stage}` in variant `{variant}`")))?;
    Ok((variant, idx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_results_line_names_the_folder_from_here_and_what_is_in_it() {
        let table = |name: &str, plot: bool| crate::report::WrittenTable {
            name: name.into(),
            files: ["csv", "md", "tex"]
                .iter()
                .chain(if plot { &["svg", "png"][..] } else { &[] })
                .map(|e| PathBuf::from(format!("{name}.{e}")))
                .collect(),
            markdown: String::new(),
        };
        let here = std::env::current_dir().unwrap();
        let mut w = Written {
            dir: here.join("results").join("quick"),
            long_form: String::new(),
            tables: vec![table("probe", true), table("nmi", false)],
            decisions: Vec::new(),
            training_curves: true,
            epochs_files: 3,
            tensorboard: true,
        };
        assert_eq!(
            w.location(),
            "results in results/quick/: index.html (the report in one page), results.md and results.csv (every value), tables probe, nmi (.md .csv .tex), \
             plots probe, training_curves (.svg .png), provenance.json, curves/ (3 epochs.csv), \
             tensorboard.txt (the training stages' TensorBoard folders)"
        );
        w.dir = PathBuf::from("/elsewhere/results/quick");
        w.tables.clear();
        w.training_curves = false;
        w.epochs_files = 0;
        w.tensorboard = false;
        assert_eq!(
            w.location(),
            "results in /elsewhere/results/quick/: index.html (the report in one page), results.md and results.csv (every value)"
        );
    }

    #[test]
    fn one_exit_code_rule_for_every_run() {
        let mut s = RunSummary::default();
        assert_eq!(run_exit_code(&s), 0);
        s.failed.push(("a".into(), "bad image".into(), true));
        assert_eq!(run_exit_code(&s), 2);
        s.failed.push(("b".into(), "job failed".into(), false));
        assert_eq!(run_exit_code(&s), 1);
    }
}
