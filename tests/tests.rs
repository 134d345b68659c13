//! One integration-test binary (every test binary links libtorch; fewer link faster).
mod common;

mod bad_input;
mod caching;
mod concurrency;
mod config_errors;
mod failures;
mod training;
