//! The command line (clap). Global options are accepted before or after the subcommand.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::data::{Cache, FingerprintMode};

use crate::config::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "ktlab",
    version,
    about = "Declarative, cached, reproducible knowledge-transfer experiments"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Store folder [env: KTLAB_STORE] [default: .ktlab/store in the experiment's project folder, the nearest one above it holding .ktlab/ or datasets.toml]
    #[arg(long, global = true, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Results folder [env: KTLAB_RESULTS] [default: results in the experiment's project folder]
    #[arg(long, global = true, value_name = "DIR")]
    pub results: Option<PathBuf>,
    /// Datasets file [env: KTLAB_DATASETS] [default: datasets.toml beside the experiment, else in its project folder, else in the current folder]
    #[arg(long, global = true, value_name = "FILE")]
    pub datasets: Option<PathBuf>,
    /// More log output (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log and event format
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
}

/// How `ktlab plan` prints the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ExperimentArgs {
    /// The experiment file
    pub file: PathBuf,
    /// Override any key, e.g. --set stages.clusters.k=8
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    #[command(flatten)]
    pub fingerprint: FingerprintArgs,
}

/// How datasets are identified in keys.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct FingerprintArgs {
    /// Dataset identity in keys: `contents` (SHA-256 of every file, cached by path, size
    /// and modification time: the same keys on every copy of the data) or `metadata`
    /// (size and modification time only: no file is read, keys differ between copies)
    #[arg(long = "fingerprint", value_name = "MODE", default_value = "contents", value_parser = parse_fingerprint_mode)]
    pub mode: FingerprintMode,
    /// Hash every dataset file again instead of trusting the cache of content hashes
    #[arg(long)]
    pub verify_data: bool,
}

impl FingerprintArgs {
    /// The content-hash cache as these options use it.
    pub fn cache(self, dir: &std::path::Path) -> Cache<'_> {
        if self.verify_data {
            Cache::Refresh(dir)
        } else {
            Cache::Use(dir)
        }
    }
}

fn parse_fingerprint_mode(s: &str) -> Result<FingerprintMode, String> {
    FingerprintMode::from_name(s).ok_or_else(|| format!("`{s}` is not a fingerprint mode (contents, metadata)"))
}

/// Where stages run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorKind {
    /// In this process, one after another
    #[default]
    Local,
    /// As Slurm jobs, one per stage instance, chained by dependencies
    Slurm,
}

/// Options of `run` for cluster executors (ignored by the local executor).
#[derive(Debug, Args, Clone, Default)]
pub struct BatchArgs {
    /// Where stages run
    #[arg(long, value_enum, default_value_t)]
    pub executor: ExecutorKind,
    /// With a cluster executor: wait for the jobs, show progress, then write the tables
    #[arg(long)]
    pub wait: bool,
    /// Default Slurm partition (below `[stages.X.resources]`, above `[slurm]`)
    #[arg(long)]
    pub partition: Option<String>,
    /// Default Slurm account
    #[arg(long)]
    pub account: Option<String>,
    /// Default Slurm QOS
    #[arg(long)]
    pub qos: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an experiment: compute what the store lacks, then write its result tables
    Run {
        #[command(flatten)]
        exp: ExperimentArgs,
        /// Recompute this stage even when cached (repeatable)
        #[arg(long, value_name = "STAGE")]
        force: Vec<String>,
        /// Run only this stage and what it needs (repeatable)
        #[arg(long, value_name = "STAGE")]
        only: Vec<String>,
        /// Run even when a stage instance's estimated peak memory exceeds this machine's
        /// (`ktlab plan` shows the estimates)
        #[arg(long)]
        ignore_memory: bool,
        #[command(flatten)]
        batch: BatchArgs,
    },
    /// Show each stage instance: cached, or its cluster job and the job's state
    Status {
        #[command(flatten)]
        exp: ExperimentArgs,
        /// The executor the experiment was run with (decides how `device = "auto"` resolves)
        #[arg(long, value_enum, default_value_t)]
        executor: ExecutorKind,
    },
    /// Write the result tables from the store without computing anything
    Report {
        #[command(flatten)]
        exp: ExperimentArgs,
        /// The executor the experiment was run with (decides how `device = "auto"` resolves)
        #[arg(long, value_enum, default_value_t)]
        executor: ExecutorKind,
    },
    /// Compute one stage instance of a submission (what a cluster job runs)
    #[command(hide = true)]
    ExecStage {
        /// The submission folder (under the store)
        #[arg(long)]
        submission: PathBuf,
        /// The stage instance's key
        #[arg(long)]
        key: String,
        /// Recompute even when the entry exists
        #[arg(long)]
        force: bool,
    },
    /// Print how many CUDA devices libtorch sees here (what the front end asks the engine)
    #[command(hide = true)]
    CudaDevices,
    /// Show every stage instance with its key and whether it is cached or why it will run
    Plan {
        #[command(flatten)]
        exp: ExperimentArgs,
        /// Check a results folder's provenance.json against this plan: the experiment, every
        /// table cell and its instances' keys, and the recorded values where the store holds
        /// the entries (exit 2 naming each mismatch)
        #[arg(long, value_name = "PROVENANCE.json")]
        check_provenance: Option<PathBuf>,
        /// `text` (a table) or `json` (every instance with its key, state, `estimated_seconds`
        /// and `source`, and the totals)
        #[arg(long, value_enum, default_value = "text")]
        format: PlanFormat,
    },
    /// Show everything that went into one stage's key
    Explain {
        #[command(flatten)]
        exp: ExperimentArgs,
        /// Stage name
        #[arg(required_unless_present = "cell")]
        stage: Option<String>,
        /// Variant name (see `ktlab plan`); default: the first
        #[arg(long)]
        variant: Option<String>,
        /// A table cell, `TABLE:ROW:COLUMN` (as results/<experiment>/<table>.md shows
        /// them): the stage instances behind it (one per seed) and their parameters
        #[arg(long, conflicts_with_all = ["stage", "variant"])]
        cell: Option<String>,
    },
    /// Re-execute a cached stage instance in a scratch folder and compare its artefacts
    /// with the stored ones (exit 0 all identical, 1 some differ, 2 not cached)
    Verify {
        #[command(flatten)]
        exp: ExperimentArgs,
        /// Stage name
        stage: String,
        /// Variant name (see `ktlab plan`); default: the first
        #[arg(long)]
        variant: Option<String>,
    },
    /// List the named datasets with splits, image counts, classes and fingerprints
    Datasets {
        /// Also decode every image and report the ones that fail
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        fingerprint: FingerprintArgs,
    },
    /// Write a Jigsaw permutation set in the official `permutations_<N>.bin` layout
    Perms {
        /// Number of permutations
        #[arg(long, default_value_t = 701)]
        count: usize,
        /// Minimum pairwise Hamming distance
        #[arg(long, default_value_t = 3)]
        min_hamming: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output file
        #[arg(long)]
        out: PathBuf,
    },
    /// k-means of any float32/float16 `.npy` matrix, with the `kmeans` stage's implementation
    Kmeans(KmeansArgs),
    /// Remove store entries that no experiment references
    Gc {
        /// Only say what would be removed
        #[arg(long)]
        dry_run: bool,
        /// Remove without asking (on a terminal, gc lists what it will remove and asks)
        #[arg(long, short = 'y')]
        yes: bool,
        /// Also remove the entries that the store's records say experiment NAME used (entries
        /// another experiment used are kept by default); repeatable
        #[arg(long, value_name = "NAME")]
        forget: Vec<String>,
        /// Also remove the entries other experiments used (keep only those of FILES)
        #[arg(long)]
        all_experiments: bool,
        /// Experiment files whose entries to keep [default: experiments/**/*.toml in the project folder]
        files: Vec<PathBuf>,
    },
}

/// Options of `ktlab kmeans`: those of the `kmeans` stage, on a file.
#[derive(Debug, Args, Clone)]
pub struct KmeansArgs {
    /// A float32 or float16 `[n, d]` `.npy` matrix (rows are points)
    pub input: PathBuf,
    /// Number of clusters
    #[arg(long)]
    pub k: usize,
    /// Lloyd iterations (centroid updates)
    #[arg(long, default_value_t = 20)]
    pub iterations: usize,
    /// PCA-whitening to this many dimensions first
    #[arg(long)]
    pub pca: Option<usize>,
    /// L2-normalise rows (after PCA)
    #[arg(long)]
    pub l2_normalize: bool,
    /// Initial centroids: kmeans++ or random
    #[arg(long, default_value = "kmeans++")]
    pub init: String,
    /// Assignment algorithm: lloyd, or bounded (the same result, fewer distances once clusters settle)
    #[arg(long, default_value = "lloyd")]
    pub algorithm: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Threads for libtorch (default: its own choice)
    #[arg(long)]
    pub threads: Option<usize>,
    /// auto | cpu | cuda | cuda:N
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Output folder: centroids.npy, assignments.npy, inertia.csv (and the PCA files)
    #[arg(long)]
    pub out: PathBuf,
}
