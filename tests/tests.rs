//! One integration-test binary (every test binary links libtorch; fewer link faster).
mod common;

mod caching;
mod concurrency;
mod config_errors;
mod failures;
mod pretext;
mod slurm;
mod training;
