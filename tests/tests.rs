//! One integration-test binary (every test binary links libtorch; fewer link faster).
mod common;

mod bad_input;
mod caching;
mod commands;
mod concurrency;
mod config_errors;
mod contrastive;
mod disk_full;
mod failures;
mod fuzz_regressions;
mod integrity;
mod keys;
mod labels;
mod layers;
mod mlp_probe;
mod output;
mod paths;
mod pretext;
mod protocols;
mod results_folder;
mod slurm;
mod soak;
mod stress;
mod tables;
mod tensorboard;
mod training;
